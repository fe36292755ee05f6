"""Generate dashboards/klipper.json: `python dashboards/build.py > dashboards/klipper.json`.

The dashboard is plain data; this script only keeps ids, grid positions and the repeated
datasource/instance boilerplate consistent. tests/test_dashboard.py checks that the
committed JSON is what this script renders, then runs every query against a real Prometheus.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
I = 'instance=~"$instance"'  # every selector is limited to the chosen printer(s)


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
           fmt: str = "time_series") -> Dict[str, Any]:
    t: Dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref,
                         "legendFormat": legend or "__auto", "range": not instant,
                         "instant": instant, "format": fmt}
    return t


class Layout:
    def __init__(self) -> None:
        self.panels: List[Dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_h = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self.next_id,
                            "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.next_id += 1
        self.y += 1

    def newline(self) -> None:
        self.x = 0
        self.y += self.row_h
        self.row_h = 0

    def add(self, kind: str, title: str, targets: List[Dict[str, Any]], w: int, h: int,
            description: str = "", unit: Optional[str] = None,
            options: Optional[Dict[str, Any]] = None,
            defaults: Optional[Dict[str, Any]] = None) -> None:
        if self.x + w > 24:
            self.newline()
        refs = "ABCDEFGH"
        for n, t in enumerate(targets):
            t["refId"] = refs[n]
        fdefaults: Dict[str, Any] = {}
        if unit:
            fdefaults["unit"] = unit
        fdefaults.update(defaults or {})
        panel = {
            "id": self.next_id, "type": kind, "title": title, "description": description,
            "datasource": DS, "gridPos": {"h": h, "w": w, "x": self.x, "y": self.y},
            "targets": targets,
            "fieldConfig": {"defaults": fdefaults, "overrides": []},
            "options": options or {},
        }
        self.panels.append(panel)
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)


def stat_options(text_mode: str = "auto", color_mode: str = "value") -> Dict[str, Any]:
    return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "textMode": text_mode, "colorMode": color_mode, "graphMode": "none",
            "justifyMode": "auto", "orientation": "auto"}


def ts_options() -> Dict[str, Any]:
    return {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "none"}}


def build() -> Dict[str, Any]:
    L = Layout()

    # ------------------------------------------------------------------ status
    L.row("Printer status")
    L.add("stat", "Klippy state", [target(
        f"max by (instance, state) (klipper_klippy_state_info{{{I}}})", "{{state}}",
        instant=True)], 4, 4,
        "Klippy's state as Moonraker sees it: ready, startup, error, shutdown or disconnected.",
        options=stat_options("name", "background"),
        defaults={"color": {"mode": "fixed", "fixedColor": "green"}})
    L.add("stat", "Why (Klippy state message)", [target(
        f"max by (instance, message) (klipper_klippy_state_message_info{{{I}}})",
        "{{message}}", instant=True)], 8, 4,
        "Klippy's state message: the shutdown or error reason when it is not ready.",
        options=stat_options("name", "none"))
    L.add("stat", "Print state", [target(
        f"max by (instance, state) (klipper_print_state_info{{{I}}})", "{{state}}",
        instant=True)], 4, 4,
        "print_stats.state: standby, printing, paused, complete, cancelled, error.",
        options=stat_options("name", "background"),
        defaults={"color": {"mode": "fixed", "fixedColor": "blue"}})
    L.add("gauge", "Progress", [target(
        f"klipper_print_gcode_progress{{{I}}}", "{{instance}}", instant=True)], 4, 4,
        "display_status.progress (M73 or file position).", unit="percentunit",
        defaults={"min": 0, "max": 1})
    L.add("stat", "Layer", [
        target(f"klipper_print_current_layer{{{I}}}", "current", instant=True),
        target(f"klipper_print_total_layers{{{I}}}", "total", instant=True)], 4, 4,
        "SET_PRINT_STATS_INFO current and total layer (absent when the slicer does not "
        "report layers).", options=stat_options("value_and_name"))
    L.add("stat", "Time left (slicer estimate)", [target(
        f"klipper_current_job_remaining_seconds{{{I}}}", "{{instance}}", instant=True)], 4, 4,
        "Slicer estimate minus printing time so far; absent when the file has no estimate.",
        unit="s", options=stat_options())
    L.add("stat", "Time left (from progress)", [target(
        f"klipper_print_print_duration{{{I}}} * (1 - klipper_print_gcode_progress{{{I}}})"
        f" / (klipper_print_gcode_progress{{{I}}} > 0)", "{{instance}}", instant=True)], 4, 4,
        "Printing time so far scaled by the remaining progress; works without slicer "
        "metadata and with prometheus-klipper-exporter names.", unit="s",
        options=stat_options())
    L.add("stat", "Print duration", [
        target(f"klipper_print_print_duration{{{I}}}", "printing", instant=True),
        target(f"klipper_print_total_duration{{{I}}}", "total", instant=True)], 4, 4,
        "Time spent printing (pauses excluded) and since the print started.", unit="s",
        options=stat_options("value_and_name"))
    L.add("stat", "Filament used (this print)", [target(
        f"klipper_print_filament_used{{{I}}} / 1000", "{{instance}}", instant=True)], 4, 4,
        "print_stats.filament_used, in metres.", unit="lengthm", options=stat_options())
    L.add("stat", "Current file", [target(
        f"max by (instance, filename) (klipper_current_job_info{{{I}}})", "{{filename}}",
        instant=True)], 8, 4, "The job in progress (printing or paused).",
        options=stat_options("name", "none"))
    L.add("timeseries", "Print progress", [target(
        f"klipper_print_gcode_progress{{{I}}}", "{{instance}}")], 12, 7,
        unit="percentunit", options=ts_options(), defaults={"min": 0, "max": 1})
    L.add("state-timeline", "Klippy and print state", [
        target(f"max by (instance, state) (klipper_klippy_state_info{{{I}}})",
               "klippy {{state}}"),
        target(f"max by (instance, state) (klipper_print_state_info{{{I}}})",
               "print {{state}}")], 12, 7, options={"showValue": "never"})

    # ------------------------------------------------------------ temperatures
    L.row("Temperatures")
    L.add("timeseries", "Extruders: temperature vs target", [
        target(f"klipper_extruder_temperature{{{I}}}", "{{extruder}}"),
        target(f"klipper_extruder_target{{{I}}}", "{{extruder}} target")], 12, 8,
        "Every extruder by its `extruder` label.", unit="celsius", options=ts_options())
    L.add("timeseries", "Bed: temperature vs target", [
        target(f"klipper_heater_bed_temperature{{{I}}}", "bed"),
        target(f"klipper_heater_bed_target{{{I}}}", "bed target")], 12, 8,
        unit="celsius", options=ts_options())
    L.add("timeseries", "Generic heaters: temperature vs target", [
        target(f"klipper_generic_heater_temperature{{{I}}}", "{{heater}}"),
        target(f"klipper_generic_heater_target{{{I}}}", "{{heater}} target")], 12, 8,
        "[heater_generic] sections (chamber heaters and the like).", unit="celsius",
        options=ts_options())
    L.add("timeseries", "Heater power", [
        target(f"klipper_extruder_power{{{I}}}", "{{extruder}}"),
        target(f"klipper_heater_bed_power{{{I}}}", "bed"),
        target(f"klipper_generic_heater_power{{{I}}}", "{{heater}}")], 12, 8,
        "Heater PWM duty cycle.", unit="percentunit", options=ts_options(),
        defaults={"min": 0, "max": 1})
    L.add("timeseries", "Temperature sensors", [
        target(f"klipper_temperature_sensor_temperature{{{I}}}", "{{sensor}}"),
        target(f"klipper_temperature_fan_temperature{{{I}}}", "{{fan}} (temperature fan)")],
        12, 8, "[temperature_sensor] by `sensor`, and the sensors of temperature fans.",
        unit="celsius", options=ts_options())
    L.add("timeseries", "Fans", [
        target(f"klipper_fan_speed{{{I}}}", "part cooling"),
        target(f"klipper_heater_fan_speed{{{I}}}", "{{fan}}"),
        target(f"klipper_controller_fan_speed{{{I}}}", "{{fan}}"),
        target(f"klipper_generic_fan_speed{{{I}}}", "{{fan}}"),
        target(f"klipper_temperature_fan_speed{{{I}}}", "{{fan}}")], 12, 8,
        "Fan speed as a fraction of full speed.", unit="percentunit", options=ts_options(),
        defaults={"min": 0, "max": 1})

    # -------------------------------------------------------------------- MCUs
    L.row("MCUs")
    L.add("timeseries", "MCU load", [
        target(f"klipper_mcu_load_ratio{{{I}}}", "{{mcu}} load"),
        target(f"klipper_mcu_awake_ratio{{{I}}}", "{{mcu}} awake")], 8, 8,
        "Load as Klipper's graphstats computes it, and the fraction of time awake.",
        unit="percentunit", options=ts_options(), defaults={"min": 0})
    L.add("timeseries", "MCU retransmits", [target(
        f"rate(klipper_mcu_retransmit_bytes{{{I}}}[$__rate_interval])", "{{mcu}}")], 8, 8,
        "Bytes retransmitted to each MCU per second: sustained retransmits mean a bad "
        "USB/CAN/serial link.", unit="Bps", options=ts_options())
    L.add("table", "MCUs", [target(
        f"max by (instance, mcu, mcu_type, version) (klipper_mcu_info{{{I}}})", "",
        instant=True, fmt="table")], 8, 8, "Firmware version and type of every MCU.",
        options={"showHeader": True})

    # ------------------------------------------------------------ host
    L.row("Host and Moonraker")
    L.add("timeseries", "CPU", [
        target(f"klipper_system_cpu{{{I}}}", "host"),
        target(f"klipper_moonraker_cpu_usage{{{I}}}", "moonraker")], 8, 8,
        "Host CPU over all cores and Moonraker's CPU (percent of one core).",
        unit="percent", options=ts_options())
    L.add("timeseries", "Memory", [
        target(f"klipper_system_memory_used{{{I}}}", "host used"),
        target(f"klipper_system_memory_total{{{I}}}", "host total"),
        target(f"klipper_moonraker_memory_kb{{{I}}}", "moonraker RSS")], 8, 8,
        unit="deckbytes", options=ts_options())
    L.add("gauge", "Disk used (gcodes file system)", [target(
        f"1 - klipper_disk_usage_available{{{I}}} / klipper_disk_usage_total{{{I}}}",
        "{{instance}}", instant=True)], 4, 8, unit="percentunit",
        defaults={"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "orange", "value": 0.8},
            {"color": "red", "value": 0.9}]}})
    L.add("stat", "Disk free", [target(
        f"klipper_disk_usage_available{{{I}}}", "{{instance}}", instant=True)], 4, 8,
        unit="bytes", options=stat_options())

    # ------------------------------------------------------------------ jobs
    L.row("Jobs, filament, power, Spoolman")
    L.add("timeseries", "Job outcomes per day", [target(
        f"sum by (status) (rate(klipper_history_jobs_total{{{I}}}[$__rate_interval])) * 86400",
        "{{status}}")], 8, 8,
        "Finished jobs by outcome, as a rate per day (completed, cancelled, error, ...).",
        options=ts_options())
    L.add("stat", "Jobs in the last 24 h", [target(
        f"sum by (status) (increase(klipper_history_jobs_total{{{I}}}[1d]))", "{{status}}",
        instant=True)], 8, 8, options=stat_options("value_and_name"),
        defaults={"decimals": 0})
    L.add("stat", "History totals", [
        target(f"klipper_total_jobs{{{I}}}", "jobs", instant=True),
        target(f"klipper_total_print_time{{{I}}} / 3600", "print hours", instant=True),
        target(f"klipper_total_filament_used{{{I}}} / 1000", "filament m", instant=True)],
        8, 8, "Moonraker's history totals (since the last totals reset).",
        options=stat_options("value_and_name"))
    L.add("timeseries", "Filament used", [
        target(f"klipper_print_filament_used{{{I}}} / 1000", "current print"),
        target(f"klipper_total_filament_used{{{I}}} / 1000", "all jobs")], 8, 8,
        unit="lengthm", options=ts_options())
    L.add("state-timeline", "Power devices", [target(
        f"klipper_power_device_status{{{I}}}", "{{device}}")], 8, 8,
        "Moonraker [power] devices: 1 on, 0 off.", options={"showValue": "never"},
        defaults={"mappings": [{"type": "value", "options": {
            "0": {"text": "off", "color": "red"}, "1": {"text": "on", "color": "green"}}}]})
    L.add("bargauge", "Spoolman: remaining weight", [target(
        f"klipper_spoolman_remaining_weight{{{I}}} * on (instance, spool_id) "
        f"group_left (filament_name, material, vendor) "
        f"max by (instance, spool_id, filament_name, material, vendor) "
        f"(klipper_spoolman_spool_info{{{I}}})",
        "#{{spool_id}} {{vendor}} {{filament_name}} ({{material}})", instant=True)], 8, 8,
        "Grams left on every spool Spoolman knows the weight of.", unit="massg",
        options={"orientation": "horizontal", "displayMode": "gradient",
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}})

    # ------------------------------------------------------------ exporter
    L.row("Exporter health")
    L.add("state-timeline", "Collector success", [target(
        f"klipper_exporter_collector_success{{{I}}}", "{{collector}}")], 12, 8,
        "1 when the collector produced its families in the scrape; 0 means see Moonraker's log.",
        options={"showValue": "never"},
        defaults={"mappings": [{"type": "value", "options": {
            "0": {"text": "failed", "color": "red"}, "1": {"text": "ok", "color": "green"}}}]})
    L.add("timeseries", "Collector duration", [target(
        f"klipper_exporter_collector_duration_seconds{{{I}}}", "{{collector}}")], 12, 8,
        unit="s", options=ts_options())
    L.add("state-timeline", "Sidecar sources up", [target(
        f"klipper_exporter_source_up{{{I}}}", "{{exporter_name}}")], 12, 8,
        "Exporters merged by the sidecar ([prometheus exporter NAME]): 1 when the last "
        "scrape of the source succeeded.", options={"showValue": "never"},
        defaults={"mappings": [{"type": "value", "options": {
            "0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}}}]})
    L.add("timeseries", "Scrape", [
        target(f"up{{{I}}}", "up"),
        target(f"scrape_duration_seconds{{{I}}}", "scrape duration (s)")], 12, 8,
        "Prometheus' own view of the target.", options=ts_options())

    return {
        "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus",
                      "description": "The Prometheus that scrapes /server/metrics",
                      "type": "datasource", "pluginId": "prometheus",
                      "pluginName": "Prometheus"}],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": "9.0.0"},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
            {"type": "panel", "id": "stat", "name": "Stat", "version": ""},
            {"type": "panel", "id": "gauge", "name": "Gauge", "version": ""},
            {"type": "panel", "id": "bargauge", "name": "Bar gauge", "version": ""},
            {"type": "panel", "id": "table", "name": "Table", "version": ""},
            {"type": "panel", "id": "state-timeline", "name": "State timeline", "version": ""},
        ],
        "annotations": {"list": [{
            "builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
            "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
            "name": "Annotations & Alerts", "type": "dashboard"}]},
        "description": "Klipper printers through Moonraker's /server/metrics "
                       "(moonraker-prometheus); also works with prometheus-klipper-exporter "
                       "names where they exist.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": L.panels,
        "refresh": "30s",
        "schemaVersion": 37,
        "style": "dark",
        "tags": ["klipper", "moonraker", "3d-printer"],
        "templating": {"list": [{
            "name": "instance", "label": "Printer", "type": "query", "datasource": DS,
            "definition": "label_values(klipper_klippy_connected, instance)",
            "query": {"query": "label_values(klipper_klippy_connected, instance)",
                      "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": "", "sort": 1, "multi": True, "includeAll": True,
            "current": {}, "options": [], "hide": 0}]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": "Klipper (Moonraker)",
        "uid": "moonraker-prometheus-klipper",
        "version": 1,
        "weekStart": "",
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
