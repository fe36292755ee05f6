"""What every source returns, and how it fails (a reason that becomes a metric label)."""
from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence

from ..spec import SourceSpec

Params = Mapping[str, Sequence[str]]


class FetchError(Exception):
    """A failed fetch; `reason` is a short label value (timeout, connect, http_status, ...)."""

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


class Source:
    """Base: one configured backend. `fetch` raises FetchError; never returns partial junk."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.name = spec.name

    async def fetch(self, params: Optional[Params] = None) -> Fetched:
        raise NotImplementedError

    async def close(self) -> None:
        """Releases clients, stops tasks, kills children."""
