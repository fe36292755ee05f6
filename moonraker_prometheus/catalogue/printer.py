"""Families read from Klipper printer objects (the `printer` module).

Names and label keys of prometheus-klipper-exporter are kept (`compat=True`) so existing
dashboards work; new families follow Prometheus naming (base units, `_total` only for
counters, `_info` for info families) under `klipper_`. The declarations live in the
`printer_*` modules by topic; this module joins them in output order.
"""
from __future__ import annotations

from typing import Tuple

from . import printer_hardware, printer_job, printer_motion, printer_thermal
from .build import family_metrics
from .spec import ObjectBinding

BINDINGS: Tuple[ObjectBinding, ...] = (
    (printer_job.KLIPPY_STATE,)
    + printer_thermal.BINDINGS
    + printer_hardware.BINDINGS
    + printer_motion.BINDINGS
    + printer_job.BINDINGS
)

METRICS = family_metrics(BINDINGS)
