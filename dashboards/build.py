"""Generate the Grafana dashboards:

    python dashboards/build.py klipper > dashboards/klipper.json   # one or a few printers
    python dashboards/build.py farm > dashboards/farm.json         # the farm overview

A dashboard is plain data; this script only keeps ids, grid positions, the datasource
variable and the printer-name join consistent. tests/test_dashboard.py and tests/test_farm.py
check that the committed JSON is what this script renders, then run every query against a
real Prometheus. (grafanalib, the usual Python library for this, has had no release since
January 2024; the helpers here are a few dozen lines of plain data, so they stay.)
"""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional

# The data source is a dashboard variable, so file provisioning needs no import step.
DS = {"type": "prometheus", "uid": "${datasource}"}
I = 'instance=~"$instance"'  # every selector is limited to the chosen printer(s)
# Every printer dashboard query is joined with the printer's name (klipper_printer_info,
# the [prometheus] printer_name option), so legends and tables say which printer; a target
# without one (prometheus-klipper-exporter, an older component) is named by its address.


def printer_names(printer_info: str, unnamed: str) -> str:
    """(instance, printer) pairs: names from `printer_info`, addresses for the targets of
    `unnamed` that have none."""
    return (f"max by (instance, printer) ({printer_info}) or on (instance) "
            f'label_replace(max by (instance) ({unnamed}), "printer", "$1", "instance", "(.*)")')


NAME_JOIN = ("* on (instance) group_left (printer) ("
             + printer_names(f"klipper_printer_info{{{I}}}", f"up{{{I}}}") + " * 0 + 1)")
# Farm queries join the recording rule that names every target (prometheus/rules.yml).
FARM_NAME = 'instance:klipper_printer:info{printer=~"$printer"}'


def target(expr: str, legend: str = "", ref: str = "A", instant: bool = False,
           fmt: str = "time_series", named: bool = True) -> Dict[str, Any]:
    """One query. `named`: join the printer's name and start the legend with it."""
    if named:
        expr = f"({expr}) {NAME_JOIN}"
        legend = "{{printer}}" + (f" {legend}" if legend else "")
    t: Dict[str, Any] = {"datasource": DS, "expr": expr, "refId": ref,
                         "legendFormat": legend or "__auto", "range": not instant,
                         "instant": instant, "format": fmt}
    return t


def farm_target(expr: str, legend: str = "", instant: bool = False,
                fmt: str = "time_series") -> Dict[str, Any]:
    """A farm query (already carrying `printer`, or a farm total)."""
    return target(expr, legend, instant=instant, fmt=fmt, named=False)


def named(expr: str) -> str:
    """`expr` (keeping instance and job) labelled with the printer's name, for the chosen
    printers only."""
    return f"({expr}) * on (instance, job) group_left (printer) {FARM_NAME}"


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
        refs = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
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
        f"klipper_print_gcode_progress{{{I}}}", "", instant=True)], 4, 4,
        "display_status.progress (M73 or file position).", unit="percentunit",
        defaults={"min": 0, "max": 1})
    L.add("stat", "Layer", [
        target(f"klipper_print_current_layer{{{I}}}", "current", instant=True),
        target(f"klipper_print_total_layers{{{I}}}", "total", instant=True)], 4, 4,
        "SET_PRINT_STATS_INFO current and total layer (absent when the slicer does not "
        "report layers).", options=stat_options("value_and_name"))
    L.add("stat", "Time left (slicer estimate)", [target(
        f"klipper_current_job_remaining_seconds{{{I}}}", "", instant=True)], 4, 4,
        "Slicer estimate minus printing time so far; absent when the file has no estimate.",
        unit="s", options=stat_options())
    L.add("stat", "Time left (from progress)", [target(
        f"klipper_print_print_duration{{{I}}} * (1 - klipper_print_gcode_progress{{{I}}})"
        f" / (klipper_print_gcode_progress{{{I}}} > 0)", "", instant=True)], 4, 4,
        "Printing time so far scaled by the remaining progress; works without slicer "
        "metadata and with prometheus-klipper-exporter names.", unit="s",
        options=stat_options())
    L.add("stat", "Print duration", [
        target(f"klipper_print_print_duration{{{I}}}", "printing", instant=True),
        target(f"klipper_print_total_duration{{{I}}}", "total", instant=True)], 4, 4,
        "Time spent printing (pauses excluded) and since the print started.", unit="s",
        options=stat_options("value_and_name"))
    L.add("stat", "Filament used (this print)", [target(
        f"klipper_print_filament_used{{{I}}} / 1000", "", instant=True)], 4, 4,
        "print_stats.filament_used, in metres.", unit="lengthm", options=stat_options())
    L.add("stat", "Current file", [target(
        f"max by (instance, filename) (klipper_current_job_info{{{I}}})", "{{filename}}",
        instant=True)], 8, 4, "The job in progress (printing or paused).",
        options=stat_options("name", "none"))
    L.add("timeseries", "Print progress", [target(
        f"klipper_print_gcode_progress{{{I}}}")], 12, 7,
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
        "Heater PWM duty cycle. The *FarFromTarget alerts stay quiet while it is 0 and "
        "the temperature falls toward a lowered target.", unit="percentunit",
        options=ts_options(),
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
        "", instant=True)], 4, 8, unit="percentunit",
        defaults={"min": 0, "max": 1, "thresholds": {"mode": "absolute", "steps": [
            {"color": "green", "value": None}, {"color": "orange", "value": 0.8},
            {"color": "red", "value": 0.9}]}})
    L.add("stat", "Disk free", [target(
        f"klipper_disk_usage_available{{{I}}}", "", instant=True)], 4, 8,
        unit="bytes", options=stat_options())

    # ------------------------------------------------------------------ jobs
    L.row("Jobs, filament, power, Spoolman")
    L.add("timeseries", "Job outcomes per day", [target(
        f"sum by (instance, status) (rate(klipper_history_jobs_total{{{I}}}[$__rate_interval]))"
        " * 86400",
        "{{status}}")], 8, 8,
        "Finished jobs by outcome, as a rate per day (completed, cancelled, error, ...).",
        options=ts_options())
    L.add("stat", "Jobs in the last 24 h", [target(
        f"sum by (instance, status) (increase(klipper_history_jobs_total{{{I}}}[1d]))",
        "{{status}}",
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

    return dashboard(
        "Klipper (Moonraker)", "moonraker-prometheus-klipper",
        "Klipper printers through Moonraker's /server/metrics (moonraker-prometheus); also "
        "works with prometheus-klipper-exporter names where they exist.",
        L.panels, [datasource_variable(), PRINTER_VARIABLE, INSTANCE_VARIABLE])


def datasource_variable() -> Dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource",
            "query": "prometheus", "regex": "", "refresh": 1, "hide": 0,
            "multi": False, "includeAll": False, "current": {}, "options": []}


def query_variable(name: str, label: str, query: str, hide: int = 0,
                   regex: str = "") -> Dict[str, Any]:
    return {"name": name, "label": label, "type": "query", "datasource": DS,
            "definition": query,
            "query": {"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"},
            "refresh": 2, "regex": regex, "sort": 1, "multi": True, "includeAll": True,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
            "options": [], "hide": hide}


# Printers are chosen by name (or address, for a target without a name); the hidden
# `instance` variable follows the choice, so queries also work for targets the operator did
# not label.
PRINTER_VARIABLE = query_variable(
    "printer", "Printer",
    "query_result(" + printer_names("klipper_printer_info", "klipper_klippy_connected") + ")",
    regex='/printer="([^"]+)"/')
INSTANCE_VARIABLE = query_variable(
    "instance", "Instance",
    "query_result(" + printer_names('klipper_printer_info{printer=~"$printer"}',
                                    'klipper_klippy_connected{instance=~"$printer"}') + ")",
    regex='/instance="([^"]+)"/', hide=2)
FARM_PRINTER_VARIABLE = query_variable("printer", "Printer",
                                       "label_values(instance:klipper_printer:info, printer)")


def dashboard(title: str, uid: str, description: str, panels: List[Dict[str, Any]],
              variables: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {
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
        "description": description,
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": panels,
        "refresh": "30s",
        "schemaVersion": 37,
        "style": "dark",
        "tags": ["klipper", "moonraker", "3d-printer"],
        "templating": {"list": variables},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "",
        "title": title,
        "uid": uid,
        "version": 1,
        "weekStart": "",
    }


def state_count(state: str) -> Dict[str, Any]:
    return farm_target(f'sum(job_state:klipper_printers:count{{state="{state}"}}) or vector(0)',
                       state, instant=True)


STATE_COLOURS = {"printing": "green", "idle": "blue", "paused": "orange", "error": "red",
                 "offline": "purple", "off": "text"}


def build_farm() -> Dict[str, Any]:
    """The farm overview: farm totals, one table row per printer, per-printer trends.

    Uses the recording rules of prometheus/rules.yml (instance:klipper_printer:info,
    instance:klipper_printer_state:info, job_state:klipper_printers:count, ...)."""
    L = Layout()
    state = 'instance:klipper_printer_state:info{printer=~"$printer"}'

    # ------------------------------------------------------------------ totals
    L.row("Farm")
    for s_name, colour in STATE_COLOURS.items():
        L.add("stat", s_name.capitalize(), [state_count(s_name)], 3, 4,
              f"Printers {s_name} now (job_state:klipper_printers:count; off: switched off "
              f"on purpose, offline: not answering).",
              options=stat_options("value", "background"),
              defaults={"color": {"mode": "fixed", "fixedColor": colour}, "decimals": 0})
    L.add("gauge", "Utilisation", [farm_target(
        "job:klipper_printers_printing:ratio", "", instant=True)], 6, 4,
        "Printers printing over printers not switched off.", unit="percentunit",
        defaults={"min": 0, "max": 1})
    L.add("timeseries", "Printers by state", [farm_target(
        "job_state:klipper_printers:count", "{{state}}")], 12, 8,
        "How many printers were in each state over time.", options=ts_options(),
        defaults={"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 40},
                  "decimals": 0})
    L.add("timeseries", "Utilisation over time", [farm_target(
        "job:klipper_printers_printing:ratio", "utilisation")], 12, 8,
        unit="percentunit", options=ts_options(), defaults={"min": 0, "max": 1})
    L.add("stat", "Jobs in the last day", [farm_target(
        'job_status:klipper_history_jobs:increase1d{status=~"completed|cancelled|error|'
        'klippy_shutdown|klippy_disconnect|interrupted|server_exit"}', "{{status}}",
        instant=True)], 8, 6,
        "Finished jobs by outcome over the last day, all printers (deleted history entries "
        "never count as jobs).", options=stat_options("value_and_name"),
        defaults={"decimals": 0})
    L.add("stat", "Filament in the last day", [farm_target(
        "job:klipper_filament_used_mm:increase1d / 1000", "all printers", instant=True)],
        4, 6, "Filament used by finished jobs over the last day (history totals).",
        unit="lengthm", options=stat_options())

    # ---------------------------------------------------------------- printers
    L.row("Printers")
    table = [
        farm_target(f"max by (printer, state) ({state})", instant=True, fmt="table"),
        farm_target("max by (printer, filename) ("
                    + named("klipper_current_job_info") + ")", instant=True, fmt="table"),
        farm_target("max by (printer) (" + named("klipper_print_gcode_progress") + ")",
                    instant=True, fmt="table"),
        farm_target("max by (printer) (" + named(
            "klipper_print_print_duration * (1 - klipper_print_gcode_progress)"
            " / (klipper_print_gcode_progress > 0)") + ")", instant=True, fmt="table"),
        farm_target("max by (printer) (" + named(
            'klipper_extruder_temperature{extruder="extruder"}') + ")",
            instant=True, fmt="table"),
        farm_target("max by (printer) (" + named(
            'klipper_extruder_target{extruder="extruder"}') + ")", instant=True, fmt="table"),
        farm_target("max by (printer) (" + named("klipper_heater_bed_temperature") + ")",
                    instant=True, fmt="table"),
        farm_target("max by (printer) (" + named("klipper_heater_bed_target") + ")",
                    instant=True, fmt="table"),
        farm_target("max by (printer, message) (" + named(
            "klipper_klippy_state_message_info unless on (instance, job) "
            'klipper_klippy_state_info{state="ready"}') + ")", instant=True, fmt="table"),
    ]
    columns = ["state", "file", "progress", "time left", "nozzle °C", "nozzle target",
               "bed °C", "bed target", "last error"]
    rename = {"filename": "file", "message": "last error"}
    for ref, column in zip("CDEFGH", columns[2:8]):
        rename[f"Value #{ref}"] = column
    L.add("table", "Printers", table, 24, 10,
          "One row per printer: state, current file, progress, time left (from progress), "
          "nozzle and bed temperature against target, and why Klippy is not ready (its state "
          "message).",
          options={"showHeader": True, "sortBy": [{"displayName": "printer", "desc": False}]},
          defaults={"custom": {"align": "auto"}})
    L.panels[-1]["transformations"] = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": True, "Value #A": True, "Value #B": True,
                              "Value #I": True},
            "renameByName": rename}}]
    L.panels[-1]["fieldConfig"]["overrides"] = [
        {"matcher": {"id": "byName", "options": "progress"},
         "properties": [{"id": "unit", "value": "percentunit"},
                        {"id": "custom.displayMode", "value": "gradient-gauge"},
                        {"id": "min", "value": 0}, {"id": "max", "value": 1}]},
        {"matcher": {"id": "byName", "options": "time left"},
         "properties": [{"id": "unit", "value": "s"}]},
    ] + [{"matcher": {"id": "byName", "options": c},
          "properties": [{"id": "unit", "value": "celsius"}]}
         for c in ("nozzle °C", "nozzle target", "bed °C", "bed target")]

    L.add("state-timeline", "State of each printer", [farm_target(
        f"max by (printer, state) ({state})", "{{printer}} {{state}}")], 24, 8,
        "instance:klipper_printer_state:info over time.", options={"showValue": "never"})
    L.add("bargauge", "Progress", [farm_target(
        named("klipper_print_gcode_progress"), "{{printer}}", instant=True)], 8, 8,
        unit="percentunit", defaults={"min": 0, "max": 1},
        options={"orientation": "horizontal", "displayMode": "gradient",
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}})
    L.add("timeseries", "Nozzle temperatures", [
        farm_target(named("klipper_extruder_temperature"), "{{printer}} {{extruder}}"),
        farm_target(named("klipper_extruder_target"), "{{printer}} {{extruder}} target")],
        8, 8, unit="celsius", options=ts_options())
    L.add("timeseries", "Bed temperatures", [
        farm_target(named("klipper_heater_bed_temperature"), "{{printer}}"),
        farm_target(named("klipper_heater_bed_target"), "{{printer}} target")],
        8, 8, unit="celsius", options=ts_options())

    # -------------------------------------------------------------------- jobs
    L.row("Jobs and filament per printer")
    L.add("bargauge", "Jobs per printer in the last day", [farm_target(
        'instance_status:klipper_history_jobs:increase1d{printer=~"$printer",'
        'status=~"completed|cancelled|error"}', "{{printer}} {{status}}", instant=True)],
        12, 8, "Completed, cancelled and failed jobs per printer over the last day.",
        options={"orientation": "horizontal", "displayMode": "basic",
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        defaults={"decimals": 0})
    L.add("bargauge", "Filament per printer in the last day", [farm_target(
        'instance:klipper_filament_used_mm:increase1d{printer=~"$printer"} / 1000',
        "{{printer}}", instant=True)], 12, 8, unit="lengthm",
        options={"orientation": "horizontal", "displayMode": "basic",
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}})
    L.add("timeseries", "Failed or cancelled jobs (last 15 minutes)", [farm_target(
        'instance_status:klipper_history_failed_jobs:recent15m{printer=~"$printer"} > 0',
        "{{printer}} {{status}}")], 24, 6,
        "What the KlipperPrintFailed alert sees: jobs that ended badly in the last 15 "
        "minutes, per printer and outcome.", options=ts_options(), defaults={"decimals": 0})

    return dashboard(
        "Klipper farm", "moonraker-prometheus-farm",
        "A farm of Klipper printers at a glance (moonraker-prometheus): needs the recording "
        "rules of prometheus/rules.yml.", L.panels,
        [datasource_variable(), FARM_PRINTER_VARIABLE])


DASHBOARDS = {"klipper": build, "farm": build_farm}


def render(name: str = "klipper") -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in DASHBOARDS:
        sys.exit(f"usage: python dashboards/build.py {{{'|'.join(DASHBOARDS)}}} > FILE.json")
    sys.stdout.write(render(sys.argv[1]))
