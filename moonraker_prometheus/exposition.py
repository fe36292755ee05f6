"""Prometheus text exposition format 0.0.4, written by hand for speed.

prometheus_client's registry walks every sample through generic objects; a scrape of a
rich printer renders hundreds of samples on Moonraker's event loop, so this module keeps
the hot path to string joins with headers and escaped label values computed once.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Sequence, Tuple

from .catalogue.spec import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
_escaped_cache: Dict[str, str] = {}


def escape_label_value(value: str) -> str:
    """Escape a label value; any UTF-8 text is kept, never deleted or merged."""
    cached = _escaped_cache.get(value)
    if cached is None:
        cached = value.translate(_LABEL_ESCAPES)
        if len(_escaped_cache) < 10000:
            _escaped_cache[value] = cached
    return cached


def format_labels(keys: Sequence[str], values: Sequence[str]) -> str:
    """Render `{k="v",...}`, or an empty string when there are no labels."""
    if not keys:
        return ""
    pairs = ",".join(
        f'{k}="{escape_label_value(str(v))}"' for k, v in zip(keys, values)
    )
    return "{" + pairs + "}"


def format_value(value: float) -> str:
    """Format a sample value as Go's strconv does for the cases parsers care about."""
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def header(metric: Metric) -> str:
    """HELP and TYPE lines of a family (info families are typed gauge, value 1)."""
    help_text = metric.help.translate(_HELP_ESCAPES)
    return (
        f"# HELP {metric.name} {help_text}\n"
        f"# TYPE {metric.name} {metric.exposition_type}\n"
    )


class Family:
    """Samples of one declared metric, collected during one render."""

    __slots__ = ("metric", "lines")

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.lines: List[str] = []

    def add(self, value: float, *label_values: str) -> None:
        labels = format_labels(self.metric.labels, label_values)
        self.lines.append(f"{self.metric.name}{labels} {format_value(value)}\n")

    def add_rendered(self, labels: str, value: float) -> None:
        """Add a sample whose label block `{...}` the caller rendered (and cached)."""
        self.lines.append(f"{self.metric.name}{labels} {format_value(value)}\n")

    def render(self) -> str:
        if not self.lines:
            return ""
        return header(self.metric) + "".join(self.lines)


def render_families(families: Iterable[Family]) -> str:
    return "".join(f.render() for f in families)


LabelValues = Tuple[str, ...]
