"""Source kinds: HTTP (TCP or Unix socket), files (globs), commands (on scrape or periodic).

`KINDS` is the table of kinds: a kind's name (moonraker.conf `type`) -> its Source class,
which declares its options and checks them (see spec.py). Both configuration front ends
(moonraker_config.py, config.py) read it, so a new kind is one class and one row here.
"""
from __future__ import annotations

from typing import Dict, Type

from ..spec import SourceSpec, SpecError
from .base import Fetched, FetchError, Source
from .exec import OnScrapeExec, PeriodicExec
from .file import FileSource
from .http import HttpSource, UnixSource

__all__ = ["KINDS", "Fetched", "FetchError", "Source", "build_source", "new_spec"]

KINDS: Dict[str, Type[Source]] = {
    "http": HttpSource,
    "unix": UnixSource,
    "file": FileSource,
    "exec": OnScrapeExec,
    "exec_periodic": PeriodicExec,
}


def new_spec(name: str, kind: str) -> SourceSpec:
    """A SourceSpec of `kind` with its options' defaults (SpecError for an unknown kind)."""
    source = KINDS.get(kind)
    if source is None:
        raise SpecError("type", "must be one of %s, got %r" % ("|".join(KINDS), kind))
    return SourceSpec(name, kind, source)


def build_source(spec: SourceSpec) -> Source:
    """The Source of a validated spec."""
    return spec.source(spec)
