"""Source kinds: HTTP (TCP or Unix socket), files (globs), commands (on scrape or periodic)."""
from __future__ import annotations

from ..spec import SourceSpec
from .base import Fetched, FetchError, Source
from .exec import OnScrapeExec, PeriodicExec
from .file import FileSource
from .http import HttpSource

__all__ = ["Fetched", "FetchError", "Source", "build_source"]


def build_source(spec: SourceSpec) -> Source:
    """A Source for a validated spec."""
    kinds = {"http": HttpSource, "unix": HttpSource, "file": FileSource,
             "exec": OnScrapeExec, "exec_periodic": PeriodicExec}
    return kinds[spec.kind](spec)
