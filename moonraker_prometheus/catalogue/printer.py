"""Families read from Klipper printer objects (the `printer` module).

Names and label keys of prometheus-klipper-exporter are kept (`compat=True`) so existing
dashboards work; new families follow Prometheus naming (base units, `_total` only for
counters, `_info` for info families) under `klipper_`. The declarations live in the
`printer_*` modules by topic; this module joins them in output order.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

from . import printer_hardware, printer_job, printer_motion, printer_thermal
from .spec import Metric, ObjectBinding

BINDINGS: Tuple[ObjectBinding, ...] = (
    printer_job.BINDINGS[:1]  # webhooks first: Klippy's own state
    + printer_thermal.BINDINGS
    + printer_hardware.BINDINGS
    + printer_motion.BINDINGS
    + printer_job.BINDINGS[1:]
)


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


METRICS = family_metrics(BINDINGS)
