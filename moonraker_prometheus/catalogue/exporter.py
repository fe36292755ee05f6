"""Self-monitoring families: every scrape reports how each collector did."""
from __future__ import annotations

from .build import gauge, info
from .units import SECONDS

COLLECTOR_SUCCESS = gauge(
    "klipper_exporter_collector_success",
    "1 when the collector produced its families in this scrape, 0 when it failed (see the log).",
    labels=("collector",), source="component")
COLLECTOR_DURATION = gauge(
    "klipper_exporter_collector_duration_seconds",
    "Time the collector took in this scrape.",
    labels=("collector",), unit=SECONDS, source="component")
BUILD_INFO = info(
    "klipper_exporter_build_info",
    "moonraker-prometheus version serving these metrics.",
    labels=("version",), source="component")

METRICS = (BUILD_INFO, COLLECTOR_SUCCESS, COLLECTOR_DURATION)
