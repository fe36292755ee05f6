"""dashboards/klipper.json against a real Prometheus that scraped the component.

Grafana cannot be installed here, so each panel query is run the way Grafana would run it:
real Klippy (live, simulated MCUs) holds a paused print, real Moonraker serves /server/metrics with a
[power] device and Spoolman (the local stand-in), a real `prometheus` (Debian's 2.42) scrapes
it every second, and every target `expr` of the dashboard goes to /api/v1/query. Every query
must be valid PromQL; every panel must return data, except the ones listed in
EXPECTED_EMPTY with the reason the simulated printer cannot produce it.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Tuple

import pytest

from simulator import Klippy, Moonraker, free_port, terminate, wait_for
from simulator.procs import spawn
from simulator.spoolman_standin import SpoolmanStandin
from tests.test_alerts import names_in, require_tool, unknown_names

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARD = os.path.join(REPO, "dashboards", "klipper.json")
FARM_DASHBOARD = os.path.join(REPO, "dashboards", "farm.json")

# (panel title, refId) -> why the simulated printer leaves it empty. Verified: the test
# fails when one of these returns data (then it belongs in the checked panels).
EXPECTED_EMPTY: Dict[Tuple[str, str], str] = {
    # pause_print.gcode is hand-written: no slicer metadata Moonraker understands, so no
    # estimated_time and no slicer-based remaining time.
    ("Time left (slicer estimate)", "A"): "no slicer estimate in the simulated G-code file",
    # simulator/printer.cfg has no [heater_generic]
    ("Generic heaters: temperature vs target", "A"): "no [heater_generic] in the simulator",
    ("Generic heaters: temperature vs target", "B"): "no [heater_generic] in the simulator",
    ("Heater power", "C"): "no [heater_generic] in the simulator",
    # no [prometheus exporter NAME] sources configured here (the sidecar has its own tests)
    ("Sidecar sources up", "A"): "no sidecar sources configured",
}

MOONRAKER_CONF = """
[power relay]
type: klipper_device
object_name: output_pin power_relay
"""


def load_dashboard(path: str = DASHBOARD) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def panel_targets(dashboard: Dict[str, Any]) -> List[Tuple[str, str, str]]:
    out = []
    for panel in dashboard["panels"]:
        for p in [panel] + panel.get("panels", []):
            for t in p.get("targets", []):
                out.append((p["title"], t["refId"], t["expr"]))
    return out


def substitute(expr: str, instance: str, printer: str = ".*") -> str:
    expr = expr.replace("${instance}", instance).replace("$instance", instance)
    expr = expr.replace("${printer}", printer).replace("$printer", printer)
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    expr = expr.replace("$__interval", "15s").replace("$__range", "1h")
    assert not re.search(r"\$(?!\d)", expr), expr  # only label_replace's "$1" is left
    return expr


# --------------------------------------------------------------------- static checks
@pytest.mark.parametrize("name", ["klipper", "farm"])
def test_dashboard_json_is_what_build_renders(name):
    sys.path.insert(0, os.path.join(REPO, "dashboards"))
    try:
        import build  # dashboards/build.py
    finally:
        sys.path.pop(0)
    with open(os.path.join(REPO, "dashboards", f"{name}.json"), encoding="utf-8") as f:
        assert f.read() == build.render(name), \
            (f"dashboards/{name}.json is stale: "
             f"python dashboards/build.py {name} > dashboards/{name}.json")


@pytest.mark.parametrize("path", [DASHBOARD, FARM_DASHBOARD], ids=["klipper", "farm"])
def test_dashboard_datasource_is_a_variable_and_printers_are_chosen_by_name(path):
    d = load_dashboard(path)
    assert "__inputs" not in d  # file provisioning needs no import-time input
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert "printer)" in variables["printer"]["query"]["query"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", p["title"]


def test_dashboard_shape():
    d = load_dashboard()
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert "klipper_printer_info" in variables["printer"]["query"]["query"]
    assert variables["instance"]["hide"] == 2  # follows the printer choice
    assert "$printer" in variables["instance"]["query"]["query"]
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        for t in p["targets"]:
            # every query is limited to the chosen printer(s) and names the printer
            assert 'instance=~"$instance"' in t["expr"], (p["title"], t["expr"])
            assert "group_left (printer)" in t["expr"], (p["title"], t["expr"])
            if t["format"] != "table":
                assert t["legendFormat"].startswith("{{printer}}"), (p["title"], t)
    for key in EXPECTED_EMPTY:
        assert key in {(t, r) for t, r, _ in panel_targets(d)}, key


def test_dashboard_metric_names_exist_in_catalogue():
    used = set()
    for path in (DASHBOARD, FARM_DASHBOARD):
        d = load_dashboard(path)
        for _, _, expr in panel_targets(d):
            used |= names_in(expr)
        used |= names_in(json.dumps(d["templating"]))
    assert len(used) > 40
    assert unknown_names(used) == set()


def test_farm_dashboard_uses_only_recorded_rules_that_exist():
    from tests.test_alerts import recording_rules
    d = load_dashboard(FARM_DASHBOARD)
    text = json.dumps([expr for *_, expr in panel_targets(d)] + [d["templating"]])
    used = set(re.findall(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+", text))
    assert len(used) >= 6
    assert used - set(recording_rules()) == set()


# ------------------------------------------------------------- against Prometheus
def variable_values(prom: "Prom", variable: Dict[str, Any], printer: str = "") -> List[str]:
    """A query_result() variable as Grafana evaluates it: the query, then the regex."""
    q = variable["query"]["query"]
    assert q.startswith("query_result(") and q.endswith(")"), q
    expr = q[len("query_result("):-1].replace("$printer", printer)
    result = prom.get("/api/v1/query", query=expr)["data"]["result"]
    pattern = re.compile(variable["regex"].strip("/"))
    lines = ["{" + ",".join(f'{k}="{v}"' for k, v in sorted(s["metric"].items())) + "}"
             for s in result]
    return sorted({m.group(1) for line in lines for m in [pattern.search(line)] if m})


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


class Prom:
    def __init__(self, base: str) -> None:
        self.base = base

    def get(self, path: str, **params: str) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            return http_json(url)
        except urllib.error.HTTPError as e:  # 400 on bad PromQL: return the error body
            return json.loads(e.read())


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    prometheus = require_tool("prometheus")
    spoolman = SpoolmanStandin().start()
    klippy = Klippy("klipper")
    moonraker = None
    prom_proc = None
    try:
        klippy.start()
        klippy.wait_ready()
        moonraker = Moonraker(klippy, prometheus="require_auth: False",
                              extra_config=MOONRAKER_CONF +
                              f"\n[spoolman]\nserver: {spoolman.url}\nsync_rate: 1\n")
        moonraker.start()
        moonraker.wait_klippy_ready()
        instance = f"127.0.0.1:{moonraker.port}"

        tmp = tmp_path_factory.mktemp("prometheus")
        port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: klipper\n    metrics_path: /server/metrics\n"
            "    scrape_interval: 1s\n    scrape_timeout: 1s\n"
            f"    static_configs:\n      - targets: ['{instance}']\n"
            # a target without klipper_printer_info (as prometheus-klipper-exporter data)
            "  - job_name: unnamed\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        prom_proc = spawn([prometheus, f"--config.file={config}",
                           f"--storage.tsdb.path={tmp / 'data'}",
                           f"--web.listen-address=127.0.0.1:{port}",
                           "--storage.tsdb.retention.time=1h", "--log.level=warn"],
                          "prometheus", str(tmp / "prometheus.log"), cwd=str(tmp))
        prom = Prom(f"http://127.0.0.1:{port}")

        # Every component must have handled klippy_ready before the print starts, or
        # history never sees the job (see tests/test_moonraker_collectors.py settle()).
        wait_for(lambda: 'klipper_power_device_status{device="relay"}' in
                 moonraker.metrics(params={"modules": "printer,power"}).text,
                 20, 0.1, "power device in the metrics")
        time.sleep(1.0)
        r = moonraker.post("/server/spoolman/spool_id", body={"spool_id": 1})
        assert r.status == 200, r.text
        r = moonraker.post("/printer/print/start", params={"filename": "pause_print.gcode"})
        assert r.status == 200, r.text
        klippy.wait_status("print_stats", "state", "paused", timeout=20)
        for script in ("M104 T1 S200", "M140 S60", "SET_FAN_SPEED FAN=exhaust_fan SPEED=0.5"):
            r = moonraker.post("/printer/gcode/script", params={"script": script})
            assert r.status == 200, r.text
        wait_for(lambda: "klipper_current_job_info{" in moonraker.metrics().text and
                 "klipper_spoolman_remaining_weight{" in moonraker.metrics().text,
                 20, 0.2, "current job and spool weights in the metrics")

        def target_up():
            if prom_proc.poll() is not None:
                pytest.fail("prometheus exited: " + (tmp / "prometheus.log").read_text())
            try:
                targets = prom.get("/api/v1/targets")["data"]["activeTargets"]
            except OSError:
                return None
            return targets if targets and targets[0]["health"] == "up" else None
        wait_for(target_up, 30, 0.25, "prometheus target up")
        # enough samples for rate() over 1m and increase() to have two points
        def stored():
            result = prom.get("/api/v1/query", query=(
                f'count_over_time(klipper_klippy_connected{{instance="{instance}"}}[1m])'
            ))["data"]["result"]
            return bool(result) and float(result[0]["value"][1]) >= 3
        wait_for(stored, 20, 0.5, "three scrapes stored")
        yield prom, instance
    finally:
        terminate(prom_proc)
        if moonraker is not None:
            moonraker.cleanup()
        klippy.cleanup()
        spoolman.stop()


def test_every_panel_query_runs_against_prometheus(stack):
    prom, instance = stack
    d = load_dashboard()
    results: Dict[Tuple[str, str], Any] = {}
    errors = []
    for title, ref, expr in panel_targets(d):
        q = substitute(expr, instance)
        fmt = prom.get("/api/v1/format_query", query=q)
        if fmt.get("status") != "success":
            errors.append(f"{title}/{ref}: format_query: {fmt.get('error')}: {q}")
            continue
        r = prom.get("/api/v1/query", query=q)
        if r.get("status") != "success":
            errors.append(f"{title}/{ref}: {r.get('error')}: {q}")
            continue
        results[(title, ref)] = r["data"]["result"]
    assert not errors, "\n".join(errors)

    empty = sorted(k for k, v in results.items() if not v and k not in EXPECTED_EMPTY)
    assert not empty, "panels without data: %s" % empty
    now_full = sorted(k for k in EXPECTED_EMPTY if results.get(k))
    assert not now_full, "listed as expected empty but has data: %s" % now_full
    # the variable query Grafana runs for $instance
    # the variables as Grafana computes them: printer names, then the instances they select
    variables = {v["name"]: v for v in d["templating"]["list"]}
    printers = variable_values(prom, variables["printer"])
    names = {s["metric"]["printer"] for s in prom.get(
        "/api/v1/query", query="klipper_printer_info")["data"]["result"]}
    assert printers == sorted(names) and len(printers) == 1
    assert variable_values(prom, variables["instance"], printer=printers[0]) == [instance]
    assert variable_values(prom, variables["instance"], printer=".*") == [instance]
    # spot checks that the data is the simulated printer's
    by = {k: v for k, v in results.items()}
    assert {s["metric"]["state"] for s in by[("Print state", "A")]} == {"paused"}
    assert {s["metric"]["state"] for s in by[("Klippy state", "A")]} == {"ready"}
    targets = {s["metric"]["extruder"]: float(s["value"][1])
               for s in by[("Extruders: temperature vs target", "B")]}
    assert targets["extruder1"] == 200.0
    assert {s["metric"]["filename"] for s in by[("Current file", "A")]} == {"pause_print.gcode"}


def test_a_target_without_a_name_is_shown_under_its_address(stack):
    """Data without klipper_printer_info (prometheus-klipper-exporter, an older component)
    still shows, its legend naming the target's address."""
    prom, _ = stack
    unnamed = prom.base.replace("http://", "")
    d = load_dashboard()
    expr = {(t, r): e for t, r, e in panel_targets(d)}[("Scrape", "A")]
    result = prom.get("/api/v1/query", query=substitute(expr, unnamed))["data"]["result"]
    assert [s["metric"]["printer"] for s in result] == [unnamed]
