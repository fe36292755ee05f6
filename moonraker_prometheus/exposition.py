"""Prometheus text exposition format 0.0.4: the package's one writer of it.

The bottom layer: it imports nothing of the package, so the component (collectors,
catalogue) and the standalone sidecar both build on it. It owns the content type, the
name and label-name rules, escaping, value formatting, HELP/TYPE headers and sample
lines. A family is declared as data (`Declaration`; the catalogue's `Metric` is one), and
its samples are written through `Family` during one render; every HELP/TYPE header comes
from `header()` (a declared family) or `header_lines()` (a family read from another
exporter's text, as the sidecar merges them).

prometheus_client's registry walks every sample through generic objects; a scrape of a
rich printer renders hundreds of samples on Moonraker's event loop, so the hot path is a
dictionary lookup and one string join per sample: each family's sample prefixes
(`name{k="v",...}`, escaped) are computed once per distinct label values and kept on its
declaration.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Regular expressions (as text, to be embedded in larger ones) of a metric name and a label
# name; label names starting with `__` are reserved to Prometheus.
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_METRIC_NAME = re.compile(METRIC_NAME)
_LABEL_NAME = re.compile(LABEL_NAME)


def is_metric_name(name: str) -> bool:
    """True if `name` is a valid metric name."""
    return _METRIC_NAME.fullmatch(name) is not None


def is_label_name(name: str) -> bool:
    """True if `name` is a valid label name that is not reserved (`__` prefix)."""
    return _LABEL_NAME.fullmatch(name) is not None and not name.startswith("__")


@dataclass(frozen=True)
class Declaration:
    """One family as declared: name, exposition type (one of TYPES), HELP text and label
    keys. ValueError when a name, label key or type is invalid."""

    name: str
    type: str
    help: str
    labels: Tuple[str, ...] = ()
    # Sample prefixes written so far, `name{k="v",...}` per tuple of label values (see
    # Family.add): label values repeat from one scrape to the next (collectors, interfaces,
    # sensors), so each prefix is escaped and joined once.
    prefixes: Dict[Tuple[str, ...], str] = field(
        default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.exposition_type not in TYPES:
            raise ValueError(f"{self.name}: unknown type {self.type!r}")
        if not is_metric_name(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        for label in self.labels:
            if not is_label_name(label):
                raise ValueError(f"{self.name}: invalid label name {label!r}")

    @property
    def exposition_type(self) -> str:
        """The type written on the TYPE line."""
        return self.type


_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})
_escaped_cache: Dict[str, str] = {}
_CACHE_MAX = 20000


def escape_help(text: str) -> str:
    """Escape HELP text (backslash and line feed)."""
    return text.translate(_HELP_ESCAPES)


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


def header_lines(name: str, mtype: str, help_text: Optional[str]) -> str:
    """`# HELP name text` (omitted when help_text is None) and `# TYPE name type` lines."""
    type_line = f"# TYPE {name} {mtype}\n"
    if help_text is None:
        return type_line
    return f"# HELP {name} {escape_help(help_text)}\n" + type_line


# Rendered HELP/TYPE lines per metric name (with the declaration they were rendered for, so a
# different declaration under the same name is never served a stale header).
_header_cache: Dict[str, Tuple[Declaration, str]] = {}
# Sample prefixes kept in all declarations together (bounded: label values can come from
# anywhere, e.g. Klipper section names).
_prefix_count = 0


def header(metric: Declaration) -> str:
    """HELP and TYPE lines of a declared family (info families are typed gauge, value 1)."""
    cached = _header_cache.get(metric.name)
    if cached is not None and cached[0] is metric:
        return cached[1]
    text = header_lines(metric.name, metric.exposition_type, metric.help)
    if len(_header_cache) < _CACHE_MAX:
        _header_cache[metric.name] = (metric, text)
    return text


def _new_prefix(metric: Declaration, label_values: Tuple[str, ...]) -> str:
    """`name{k="v",...}` rendered and, while the cache has room, kept (ValueError: see
    format_labels)."""
    global _prefix_count
    prefix = metric.name + format_labels(metric.labels, label_values)
    if _prefix_count < _CACHE_MAX:
        try:
            metric.prefixes[label_values] = prefix
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

    __slots__ = ("metric", "lines", "prefixes")

    def __init__(self, metric: Declaration) -> None:
        self.metric = metric
        self.lines: List[str] = []
        self.prefixes = metric.prefixes

    def add(self, value: float, *label_values: str) -> None:
        # The prefix lookup and the common case of format_value() are written inline: this
        # runs once per sample of every scrape (bench/bench_scrape.py).
        try:
            prefix = self.prefixes.get(label_values)
        except TypeError:  # an unhashable label value
            prefix = None
        if prefix is None:
            prefix = _new_prefix(self.metric, label_values)
        v = float(value)
        if v - v == 0.0:  # finite (inf - inf and NaN - NaN are NaN)
            self.lines.append(f"{prefix} {v!r}\n")
        else:
            self.lines.append(f"{prefix} {format_value(v)}\n")

    def render_samples(self) -> str:
        return "".join(self.lines)

    def render(self) -> str:
        if not self.lines:
            return ""
        return header(self.metric) + "".join(self.lines)


def render_families(families: Iterable[Family]) -> str:
    """The families in the text format, in the given order (empty families omitted)."""
    return "".join(f.render() for f in families)
