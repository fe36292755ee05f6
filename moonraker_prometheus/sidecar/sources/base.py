"""What every source returns, and how it fails (a reason that becomes a metric label)."""
from __future__ import annotations

import abc
import asyncio
import logging
from typing import Dict, List, Mapping, Optional, Sequence

from ..spec import Option, SourceSpec

Params = Mapping[str, Sequence[str]]


def consume_outcome(future: "asyncio.Future") -> None:
    """Done callback: retrieves the outcome of a future whose waiters may all have gone.

    Shared runs are shielded from impatient scrapers; if every scraper gave up, nobody would
    retrieve the exception and asyncio would log it as "never retrieved".
    """
    if not future.cancelled():
        future.exception()


class CauseLog:
    """Logs a condition once per distinct cause, not once per scrape, and its end once.

    `note(topic, cause)`: a non-empty cause different from the last one of that topic is
    logged as a warning; an empty cause after a logged one logs `recovered` (if given).
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.last: Dict[str, str] = {}

    def note(self, topic: str, cause: str, recovered: str = "", exc_info: bool = False) -> None:
        if cause == self.last.get(topic, ""):
            return
        if cause:
            self.last[topic] = cause
            self.logger.warning("%s: %s", topic, cause, exc_info=exc_info)
        else:
            del self.last[topic]
            if recovered:
                self.logger.warning("%s: %s", topic, recovered)


class FetchError(Exception):
    """A failed fetch; `reason` is one of `reasons.FETCH_REASONS` (a label value of
    klipper_exporter_source_errors_total), `detail` what the log says besides."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__("%s: %s" % (reason, detail) if detail else reason)
        self.reason = reason


class Fetched:
    """Raw bodies (one per file for globs), plus facts the health metrics report.

    `files`: mtime of each file read; `file_errors`: reason for each matching file that
    could not be read (the bodies hold the others).
    """

    __slots__ = ("bodies", "files", "cache_age", "errors", "file_errors")

    def __init__(self, bodies: List[bytes], files: Optional[Dict[str, float]] = None,
                 cache_age: Optional[float] = None, errors: Sequence[str] = (),
                 file_errors: Optional[Dict[str, str]] = None) -> None:
        self.bodies = bodies
        self.files = files or {}
        self.file_errors = file_errors or {}
        self.cache_age = cache_age
        self.errors = list(errors)  # reasons of failures that still left data to serve


class Source(abc.ABC):
    """Base: one configured backend. `fetch` raises FetchError; never returns partial junk.

    A kind's class declares the options it takes besides spec.COMMON (`options`) and checks
    their values in `check(spec)` (raising SpecError naming the option); sources.KINDS maps
    the kind's name to it. It must define `fetch()`; it may override `start()` (background
    work begun before the first scrape) and `close()`.
    """

    options: Sequence[Option] = ()
    # The kind's names in reverse_exporter's YAML `exporters` (none: not written there).
    yaml_kinds: Sequence[str] = ()

    @staticmethod
    def check(spec: SourceSpec) -> None:
        """Checks this kind's options in `spec` (SpecError); the common ones are checked."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.name = spec.name

    @abc.abstractmethod
    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        """Bodies of one scrape, or FetchError with one of `reasons.FETCH_REASONS`.

        `params`: the scrape's URL parameters (only HTTP sources with forward_url_params use
        them). `timeout` (seconds) is what is left of the scrape's budget: a source may end
        sooner than its own `timeout` option to answer within it."""

    def start(self) -> None:
        """Begins background work on the running loop (a periodic source's runs) before the
        first scrape; Merger.start() calls it. Nothing for a source that works only when
        fetched."""

    async def close(self) -> None:
        """Releases clients, stops tasks, kills children."""
