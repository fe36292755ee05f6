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


_INF = math.inf


def format_value(value: float) -> str:
    """Format a sample value as Go's strconv does for the cases parsers care about."""
    if value != value:
        return "NaN"
    if value == _INF:
        return "+Inf"
    if value == -_INF:
        return "-Inf"
    return repr(float(value))


# Rendered HELP/TYPE lines per metric name (with the Metric they were rendered for, so a
# different declaration under the same name is never served a stale header).
_header_cache: Dict[str, Tuple[Metric, str]] = {}
# Rendered `name{k="v",...}` per metric name, then label values (with the Metric they were
# rendered for): label values repeat from one scrape to the next (collectors, interfaces,
# sensors), so each sample prefix is escaped and joined once.
_prefix_cache: Dict[str, Tuple[Metric, Dict[Tuple[str, ...], str]]] = {}
_PREFIX_CACHE_MAX = 20000
_prefix_count = 0


def header(metric: Metric) -> str:
    """HELP and TYPE lines of a family (info families are typed gauge, value 1)."""
    cached = _header_cache.get(metric.name)
    if cached is not None and cached[0] is metric:
        return cached[1]
    help_text = metric.help.translate(_HELP_ESCAPES)
    text = (
        f"# HELP {metric.name} {help_text}\n"
        f"# TYPE {metric.name} {metric.exposition_type}\n"
    )
    if len(_header_cache) < _PREFIX_CACHE_MAX:
        _header_cache[metric.name] = (metric, text)
    return text


def sample_prefix(metric: Metric, label_values: Tuple[str, ...]) -> str:
    """`name{k="v",...}` for these label values, cached."""
    global _prefix_count
    entry = _prefix_cache.get(metric.name)
    if entry is None or entry[0] is not metric:
        entry = _prefix_cache[metric.name] = (metric, {})
    try:
        prefix = entry[1].get(label_values)
    except TypeError:  # unhashable label value: render without the cache
        return metric.name + format_labels(metric.labels, label_values)
    if prefix is None:
        prefix = metric.name + format_labels(metric.labels, label_values)
        if _prefix_count < _PREFIX_CACHE_MAX:
            _prefix_count += 1
            entry[1][label_values] = prefix
    return prefix


class Family:
    """Samples of one declared metric, collected during one render."""

    __slots__ = ("metric", "lines")

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.lines: List[str] = []

    def add(self, value: float, *label_values: str) -> None:
        # The cache hit of sample_prefix() and the common case of format_value() are
        # inlined: calling both per sample raised the /server/metrics / /server/info
        # latency ratio from 1.47-1.48 to 1.50-1.51 in bench/bench_scrape.py.
        metric = self.metric
        entry = _prefix_cache.get(metric.name)
        prefix = None
        if entry is not None and entry[0] is metric:
            try:
                prefix = entry[1].get(label_values)
            except TypeError:
                pass
        if prefix is None:
            prefix = sample_prefix(metric, label_values)
        v = float(value)
        if v != v or v == _INF or v == -_INF:
            self.lines.append(f"{prefix} {format_value(v)}\n")
        else:
            self.lines.append(f"{prefix} {v!r}\n")

    def render(self) -> str:
        if not self.lines:
            return ""
        return header(self.metric) + "".join(self.lines)


def render_families(families: Iterable[Family]) -> str:
    return "".join(f.render() for f in families)

