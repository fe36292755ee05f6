"""Small constructors that keep the declaration tables readable."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from .readers import Reader, number
from .spec import COUNTER, GAUGE, INFO, Field, Metric, ObjectBinding, ObjectKind


def gauge(name: str, help: str, labels: Tuple[str, ...] = (), unit: str = "",
          source: str = "", compat: bool = False) -> Metric:
    return Metric(name, GAUGE, help, labels, unit, source, compat)


def counter(name: str, help: str, labels: Tuple[str, ...] = (), unit: str = "",
            source: str = "", compat: bool = False) -> Metric:
    return Metric(name, COUNTER, help, labels, unit, source, compat)


def info(name: str, help: str, labels: Tuple[str, ...] = (), source: str = "",
         compat: bool = False) -> Metric:
    return Metric(name, INFO, help, labels, "", source, compat)


class F:
    """One family fed by a field of a printer object kind, before `bind` gives it the
    kind's instance label (first) and its `source` text.

    `path` is the status field (dotted for a nested one, e.g. "last_stats.freq"); `read`
    (a reader of catalogue.readers, default `number`) gets that field's value. `name`,
    `help`, `type`, `unit` and `labels` (the reader's extra label keys, in the order it
    yields their values) declare the family; `compat=True` marks a name and label keys
    kept from prometheus-klipper-exporter (the one way to mark one; docs/metrics.md shows
    it).

    With an empty `path`, `read` gets the object's whole status (a dict). `requires`
    names the top-level fields it reads: Moonraker's subscription asks Klippy for them,
    the family's source lists them, and the reader runs again when one of them changes.
    Without `requires` the subscription asks for all of the object's fields, so give it
    for any reader of several fields (e.g. ("mcu_version", "mcu_build_versions",
    "mcu_constants")).

    `context` adds fields of other objects as (object, field) pairs: the reader's status
    also holds each of them under an "object.field" key, and the reader runs again when
    one changes (gcode_move's position needs ("toolhead", "homed_axes") because Klipper
    reports 0 for an axis it has not homed). Use it with an empty `path`.
    """

    def __init__(self, path: str, name: str, help: str, *, type: str = GAUGE,
                 unit: str = "", labels: Tuple[str, ...] = (), read: Reader = number,
                 compat: bool = False, requires: Tuple[str, ...] = (),
                 context: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.path, self.name, self.help, self.type = path, name, help, type
        self.unit, self.labels, self.read, self.compat = unit, labels, read, compat
        self.requires, self.context = requires, context


def bind(kind: ObjectKind, *fields: F, doc: str = "") -> ObjectBinding:
    """Bind fields to a kind: each family gets the kind's instance label first."""
    instance = (kind.label,) if kind.label else ()
    built = []
    for f in fields:
        if f.path:
            source = f"{kind.name}.{f.path}"
        elif f.requires:
            source = f"{kind.name}.{{{','.join(f.requires)}}}"
        else:
            source = kind.name
        if f.context:
            source += "".join(f" + {obj}.{fld}" for obj, fld in f.context)
        metric = Metric(f.name, f.type, f.help, instance + f.labels, f.unit, source, f.compat)
        built.append(Field(metric, f.path, f.read, f.requires, f.context))
    return ObjectBinding(kind, tuple(built), doc)


def family_metrics(bindings: Sequence[ObjectBinding]) -> Tuple[Metric, ...]:
    """One Metric per family name, in declaration order.

    A family fed by several object kinds (e.g. output_pin and pwm_tool) is declared
    identically by each; its `source` lists every kind.
    """
    merged: Dict[str, Metric] = {}
    sources: Dict[str, List[str]] = {}
    for binding in bindings:
        for metric in binding.metrics():
            merged.setdefault(metric.name, metric)
            srcs = sources.setdefault(metric.name, [])
            if metric.source not in srcs:
                srcs.append(metric.source)
    out = []
    for name, metric in merged.items():
        m = metric
        if len(sources[name]) > 1:
            m = Metric(m.name, m.type, m.help, m.labels, m.unit, ", ".join(sources[name]),
                       m.compat)
        out.append(m)
    return tuple(out)


__all__ = ["gauge", "counter", "info", "F", "bind", "family_metrics", "ObjectKind",
           "COUNTER", "GAUGE", "INFO"]
