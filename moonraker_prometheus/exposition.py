"""Prometheus text exposition format 0.0.4: the component's one writer of it.

Every collector writes its samples through `Family` (the printer collector too, for the
entries it re-renders), and every HELP/TYPE header comes from `header()`.

prometheus_client's registry walks every sample through generic objects; a scrape of a
rich printer renders hundreds of samples on Moonraker's event loop, so the hot path is a
dictionary lookup and one string join per sample: each family's sample prefixes
(`name{k="v",...}`, escaped) are computed once per distinct label values and kept here.
"""
from __future__ import annotations

import math
from typing import Dict, Iterable, List, Sequence, Tuple

from .catalogue.spec import Metric

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
_escaped_cache: Dict[str, str] = {}
_CACHE_MAX = 20000


def escape_label_value(value: str) -> str:
    """Escape a label value; any UTF-8 text is kept, never deleted or merged."""
    cached = _escaped_cache.get(value)
    if cached is None:
        cached = value.translate(_LABEL_ESCAPES)
        if len(_escaped_cache) < _CACHE_MAX:
            _escaped_cache[value] = cached
    return cached


def format_labels(keys: Sequence[str], values: Sequence[str]) -> str:
    """`{k="v",...}`, or an empty string when there are no labels.

    Raises ValueError when the number of values is not the number of keys (a reader or
    collector that yields the wrong label values must fail loudly, not lose a label).
    """
    if len(keys) != len(values):
        raise ValueError(f"{len(values)} label values {tuple(values)!r} "
                         f"for {len(keys)} label keys {tuple(keys)!r}")
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
# Sample prefixes per metric name: (the label keys they were rendered for, {label values:
# `name{k="v",...}`}). Label values repeat from one scrape to the next (collectors,
# interfaces, sensors), so each prefix is escaped and joined once.
_prefix_cache: Dict[str, Tuple[Tuple[str, ...], Dict[Tuple[str, ...], str]]] = {}
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
    if len(_header_cache) < _CACHE_MAX:
        _header_cache[metric.name] = (metric, text)
    return text


def _new_prefix(metric: Metric, label_values: Tuple[str, ...]) -> str:
    """`name{k="v",...}` rendered and, while the cache has room, kept (ValueError: see
    format_labels)."""
    global _prefix_count
    prefix = metric.name + format_labels(metric.labels, label_values)
    entry = _prefix_cache.get(metric.name)
    if entry is None or entry[0] != metric.labels:
        entry = _prefix_cache[metric.name] = (metric.labels, {})
    if _prefix_count < _CACHE_MAX:
        try:
            entry[1][label_values] = prefix
            _prefix_count += 1
        except TypeError:  # an unhashable label value: rendered, not kept
            pass
    return prefix


class Family:
    """The samples of one declared family written during one render.

    `add(value, *label_values)` takes one value per label key of the declaration, in
    order (ValueError otherwise); `render()` gives the HELP/TYPE header and the samples
    (nothing at all when there is no sample), `render_samples()` the samples alone.
    """

    __slots__ = ("metric", "lines")

    def __init__(self, metric: Metric) -> None:
        self.metric = metric
        self.lines: List[str] = []

    def add(self, value: float, *label_values: str) -> None:
        # The prefix lookup and the common case of format_value() are written inline:
        # calling helpers per sample cost ~2% of the /server/metrics latency
        # (bench/bench_scrape.py).
        metric = self.metric
        entry = _prefix_cache.get(metric.name)
        prefix = None
        if entry is not None and entry[0] == metric.labels:
            try:
                prefix = entry[1].get(label_values)
            except TypeError:
                pass
        if prefix is None:
            prefix = _new_prefix(metric, label_values)
        v = float(value)
        if v != v or v == _INF or v == -_INF:
            self.lines.append(f"{prefix} {format_value(v)}\n")
        else:
            self.lines.append(f"{prefix} {v!r}\n")

    def render_samples(self) -> str:
        return "".join(self.lines)

    def render(self) -> str:
        if not self.lines:
            return ""
        return header(self.metric) + "".join(self.lines)


def render_families(families: Iterable[Family]) -> str:
    """The families in the text format, in the given order (empty families omitted)."""
    return "".join(f.render() for f in families)
