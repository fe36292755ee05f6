"""Small constructors that keep the declaration tables readable."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from .spec import COUNTER, GAUGE, INFO, Field, Metric, ObjectBinding, ObjectKind, Reader, number


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
    """A field of a printer object kind, before the kind's instance label is known."""

    def __init__(self, path: str, name: str, help: str, *, type: str = GAUGE,
                 unit: str = "", labels: Tuple[str, ...] = (), read: Reader = number,
                 compat: bool = False, requires: Tuple[str, ...] = (),
                 context: Tuple[Tuple[str, str], ...] = ()) -> None:
        self.path, self.name, self.help, self.type = path, name, help, type
        self.unit, self.labels, self.read, self.compat = unit, labels, read, compat
        self.requires, self.context = requires, context


def compat(path: str, name: str, help: str, **kw: Any) -> F:
    """A field whose name and label keys are prometheus-klipper-exporter's (`compat=True`)."""
    return F(path, name, help, compat=True, **kw)


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


__all__ = ["gauge", "counter", "info", "F", "compat", "bind", "family_metrics", "ObjectKind",
           "COUNTER", "GAUGE", "INFO"]
