"""Per-source health as metrics, so a dead backend is visible instead of silently missing.

The families are declared as data (`exposition.Declaration`) and written with
`exposition.Family`, like every family of the component. State lives on the event loop
thread (updated after each run); `render()` writes text that is merged like any other body.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence

from ..exposition import Declaration, Family, render_families

_SOURCE = ("exporter_name",)


def _gauge(name: str, help_text: str, labels: Sequence[str] = ()) -> Declaration:
    return Declaration("klipper_exporter_source_" + name, "gauge", help_text,
                       _SOURCE + tuple(labels))


UP = _gauge("up", "1 if the last scrape of this source succeeded, else 0.")
SCRAPE_DURATION = _gauge("scrape_duration_seconds", "Time the last scrape of this source took.")
SAMPLES = _gauge("samples", "Samples this source contributed to the last scrape.")
LAST_SUCCESS = _gauge("last_success_timestamp_seconds",
                      "Unix time of the last successful scrape of this source.")
ERRORS = Declaration("klipper_exporter_source_errors_total", "counter",
                     "Failed scrapes of this source, by reason.", _SOURCE + ("reason",))
FILE_MTIME = _gauge("file_mtime_seconds", "Modification time of each file read by this source.",
                    ("file",))
FILE_ERROR = _gauge("file_error", "1 for each file matching this source that could not be "
                    "read at the last scrape.", ("file", "reason"))
CACHE_AGE = _gauge("cache_age_seconds",
                   "Age of the cached output served by a periodic exec source.")
MERGE_DROPPED = Declaration("klipper_exporter_merge_dropped_total", "counter",
                            "Lines dropped while merging, by source and reason.",
                            _SOURCE + ("reason",))
# Output order.
FAMILIES: Sequence[Declaration] = (UP, SCRAPE_DURATION, SAMPLES, LAST_SUCCESS, ERRORS,
                                   FILE_MTIME, FILE_ERROR, CACHE_AGE, MERGE_DROPPED)


class SourceHealth:
    __slots__ = ("up", "duration", "samples", "last_success", "errors", "dropped", "files",
                 "file_errors", "cache_age")

    def __init__(self) -> None:
        self.up = 0
        self.duration = 0.0
        self.samples = 0
        self.last_success: Optional[float] = None
        self.errors: Dict[str, int] = {}
        self.dropped: Dict[str, int] = {}
        self.files: Dict[str, float] = {}
        self.file_errors: Dict[str, str] = {}  # path -> reason
        self.cache_age: Optional[float] = None


def _count(counts: Dict[str, int], reason: str, n: int = 1) -> None:
    counts[reason] = counts.get(reason, 0) + n


class Health:
    def __init__(self, names: Sequence[str]) -> None:
        self.sources: Dict[str, SourceHealth] = {n: SourceHealth() for n in names}

    def error(self, name: str, reason: str) -> None:
        _count(self.sources[name].errors, reason)

    def dropped(self, name: str, reasons: Dict[str, int]) -> None:
        for reason, n in reasons.items():
            _count(self.sources[name].dropped, reason, n)

    def render(self) -> str:
        """The health families of every source, sources in name order. Durations are
        rounded to the microsecond, times and ages to the millisecond."""
        f = {d: Family(d) for d in FAMILIES}
        for name in sorted(self.sources):
            h = self.sources[name]
            f[UP].add(h.up, name)
            f[SCRAPE_DURATION].add(round(h.duration, 6), name)
            f[SAMPLES].add(h.samples, name)
            if h.last_success is not None:
                f[LAST_SUCCESS].add(round(h.last_success, 3), name)
            for reason in sorted(h.errors):
                f[ERRORS].add(h.errors[reason], name, reason)
            for path in sorted(h.files):
                f[FILE_MTIME].add(round(h.files[path], 3), name, path)
            for path in sorted(h.file_errors):
                f[FILE_ERROR].add(1, name, path, h.file_errors[path])
            if h.cache_age is not None:
                f[CACHE_AGE].add(round(h.cache_age, 3), name)
            for reason in sorted(h.dropped):
                f[MERGE_DROPPED].add(h.dropped[reason], name, reason)
        return render_families(f.values())
