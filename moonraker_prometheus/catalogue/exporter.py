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

PRINTER_INFO = info(
    "klipper_printer_info",
    "Who this printer is: its name (the [prometheus] printer_name option, default the host "
    "name), the host name and the Klipper, Moonraker and moonraker-prometheus versions. "
    "Dashboards and farm rules join on it to name printers; a version Moonraker does not "
    "know yet (Klippy never connected) is an empty label.",
    labels=("printer", "host", "klipper_version", "moonraker_version", "component_version"),
    source='option printer_name, server.get_host_info()["hostname"], '
           "klippy_connection.klippy_info.software_version, app_args.software_version")

METRICS = (BUILD_INFO, PRINTER_INFO, COLLECTOR_SUCCESS, COLLECTOR_DURATION)
