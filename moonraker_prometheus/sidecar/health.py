"""Per-source health as metrics, so a dead backend is visible instead of silently missing.

State lives on the event loop thread (updated after each run); `render()` writes text that is
merged like any other body.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from .expfmt import escape_help, escape_label_value

P = "klipper_exporter_source_"
FAMILIES: Sequence[Tuple[str, str, str]] = (
    (P + "up", "gauge", "1 if the last scrape of this source succeeded, else 0."),
    (P + "scrape_duration_seconds", "gauge", "Time the last scrape of this source took."),
    (P + "samples", "gauge", "Samples this source contributed to the last scrape."),
    (P + "last_success_timestamp_seconds", "gauge",
     "Unix time of the last successful scrape of this source."),
    (P + "errors_total", "counter", "Failed scrapes of this source, by reason."),
    (P + "file_mtime_seconds", "gauge", "Modification time of each file read by this source."),
    (P + "file_error", "gauge",
     "1 for each file matching this source that could not be read at the last scrape."),
    (P + "cache_age_seconds", "gauge",
     "Age of the cached output served by a periodic exec source."),
    ("klipper_exporter_merge_dropped_total", "counter",
     "Lines dropped while merging, by source and reason."),
)


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
        rows: Dict[str, List[str]] = {f[0]: [] for f in FAMILIES}
        for name in sorted(self.sources):
            h = self.sources[name]
            src = 'exporter_name="%s"' % escape_label_value(name)
            rows[P + "up"].append("{%s} %d" % (src, h.up))
            rows[P + "scrape_duration_seconds"].append("{%s} %.6f" % (src, h.duration))
            rows[P + "samples"].append("{%s} %d" % (src, h.samples))
            if h.last_success is not None:
                rows[P + "last_success_timestamp_seconds"].append(
                    "{%s} %.3f" % (src, h.last_success))
            for reason in sorted(h.errors):
                rows[P + "errors_total"].append('{%s,reason="%s"} %d'
                                                % (src, escape_label_value(reason),
                                                   h.errors[reason]))
            for path in sorted(h.files):
                rows[P + "file_mtime_seconds"].append(
                    '{%s,file="%s"} %.3f' % (src, escape_label_value(path), h.files[path]))
            for path in sorted(h.file_errors):
                rows[P + "file_error"].append('{%s,file="%s",reason="%s"} 1' % (
                    src, escape_label_value(path), escape_label_value(h.file_errors[path])))
            if h.cache_age is not None:
                rows[P + "cache_age_seconds"].append("{%s} %.3f" % (src, h.cache_age))
            for reason in sorted(h.dropped):
                rows["klipper_exporter_merge_dropped_total"].append(
                    '{%s,reason="%s"} %d' % (src, escape_label_value(reason), h.dropped[reason]))
        out: List[str] = []
        for fname, ftype, fhelp in FAMILIES:
            if not rows[fname]:
                continue
            out.append("# HELP %s %s" % (fname, escape_help(fhelp)))
            out.append("# TYPE %s %s" % (fname, ftype))
            out.extend(fname + row for row in rows[fname])
        out.append("")
        return "\n".join(out)
