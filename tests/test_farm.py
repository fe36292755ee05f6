"""A farm, live: five real simulated printers, the discovery tool, a real Prometheus with
prometheus/rules.yml and alerts.yml, the farm dashboard's queries, and agent mode.

The printers (each a real Klippy in live, on simulated MCU firmware + real Moonraker with the component):
  alpha    idle, announces itself over zeroconf ([zeroconf] component)
  bravo    a print paused (pause_print.gcode) and left paused
  charlie  a print started and cancelled: a failed print in Moonraker's history; then a
           corrupted link to its MCU (simulated firmware fault): retransmits rise
  delta    switched off on purpose: power device "printer" off, then Klippy shut down (M112)
  echo     stops answering: its Moonraker is stopped

Prometheus finds them through the file_sd file the discovery tool wrote from a host list,
scrapes every second and evaluates the rules every second, with every alert's `for:`
shortened to 3 s and the day totals evaluated every second too
(simulator/farm.rules_with_short_for).

The same printers are also read through ONE central exporter (moonraker_prometheus.remote):
a second Prometheus, with the same rules, scrapes its /probe with docs/remote.md's farm job,
from the file `discovery --probe-job` wrote (the exporter's --targets-file too), each printer
named as in Mainsail's settings. The state, alert, dashboard and recording rule checks run
against both Prometheus servers (the `shape` fixture).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from simulator.farm import (POWER_DEVICE_CONF, PROMETHEUS_DIR, PrinterSpec, PrometheusServer,
                        by_label, rules_with_short_for, scrape_config, start_printers,
                        stop_printers)
from simulator import free_port, wait_for
from tests.test_alerts import recording_rules, require_tool
from tests.test_remote import Remote

NAMES = ("alpha", "bravo", "charlie", "delta", "echo")


def discover(*args: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "moonraker_prometheus.discovery", *args],
                          capture_output=True, text=True, timeout=60, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(PROMETHEUS_DIR)})


def read_targets(path: str):
    with open(path, encoding="utf-8") as f:
        return {g["targets"][0]: g["labels"] for g in json.load(f)}


REMOTE_DOC = os.path.join(os.path.dirname(PROMETHEUS_DIR), "docs", "remote.md")


def probe_job(file_sd: str, exporter: str) -> str:
    """docs/remote.md's farm job ("Farms"), with the test's file_sd file, exporter address
    and 1 s intervals."""
    import re
    import textwrap
    import yaml
    with open(REMOTE_DOC, encoding="utf-8") as f:
        section = f.read().split("## Farms", 1)[1]
    job = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))[
        "scrape_configs"][0]
    assert job["relabel_configs"][-1]["target_label"] == "__address__"
    job["relabel_configs"][-1]["replacement"] = exporter
    job.update(scrape_interval="1s", scrape_timeout="1s", file_sd_configs=[{"files": [file_sd]}])
    return textwrap.indent(yaml.safe_dump([job], sort_keys=False), "  ")


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    require_tool("prometheus")
    tmp = tmp_path_factory.mktemp("farm")
    specs = [PrinterSpec("alpha", extra_config="[zeroconf]\nmdns_hostname: alpha-mp\n"),
             PrinterSpec("bravo"), PrinterSpec("charlie"),
             PrinterSpec("delta", extra_config=POWER_DEVICE_CONF), PrinterSpec("echo")]
    printers = start_printers(specs)
    prom = probe_prom = remote = None
    try:
        p = {pr.name: pr for pr in printers}
        closed_port = free_port()
        hosts = tmp / "printers.txt"
        hosts.write_text("# the farm\n" + "".join(f"{pr.target}\n" for pr in printers)
                         + f"127.0.0.1:{closed_port}   # nothing listens here\n")
        file_sd = str(tmp / "klipper.json")
        # a generous timeout: the suite's parallel legs load the machine (each answer takes
        # milliseconds when it is quiet)
        first = discover("--hosts-file", str(hosts), "--host", "not a host",
                         "--timeout", "10", "-o", file_sd, cwd=str(tmp))
        assert first.returncode == 0, first.stderr
        with open(file_sd, encoding="utf-8") as f:
            written = {t["labels"].get("printer") for t in json.load(f)}
        assert written == set(NAMES), "discovery wrote %s\n%s" % (sorted(written), first.stderr)

        rules = [rules_with_short_for(os.path.join(PROMETHEUS_DIR, name), str(tmp / name))
                 for name in ("rules.yml", "alerts.yml")]
        prom = PrometheusServer(str(tmp / "prometheus"), scrape_config(file_sd=[file_sd]),
                                rule_files=rules)
        prom.start()
        prom.wait_query('count_over_time(up{job="klipper"}[1m]) >= 3',
                        lambda r: len(r) == len(NAMES), 40, "3 scrapes of every printer")

        # the same printers through one central exporter: named in Mainsail's settings (in
        # Moonraker's database; the probe job does not read the component's name)
        for pr in printers:
            r = pr.moonraker.post("/server/database/item", body={
                "namespace": "mainsail", "key": "general.printername", "value": pr.name})
            assert r.status == 200, r.text
        probe_sd = str(tmp / "klipper-probe.json")
        probe_run = discover("--probe-job", "--hosts-file", str(hosts), "--timeout", "10",
                             "-o", probe_sd, cwd=str(tmp))
        assert probe_run.returncode == 0, probe_run.stderr
        assert {t: labels["printer"] for t, labels in read_targets(probe_sd).items()} == {
            pr.target: pr.name for pr in printers}, probe_run.stderr
        remote = Remote(str(tmp), "--targets-file", probe_sd)
        probe_prom = PrometheusServer(str(tmp / "probe-prometheus"),
                                      probe_job(probe_sd, f"127.0.0.1:{remote.port}"),
                                      rule_files=rules)
        probe_prom.start()
        probe_prom.wait_query('count_over_time(probe_success{job="klipper"}[1m]) >= 3',
                              lambda r: len(r) == len(NAMES), 40, "3 probes of every printer")

        # bravo: paused; charlie: started and cancelled (after Prometheus has seen its
        # counts, so the failure is an increase); delta: switched off, then Klippy stops
        # for lack of its MCU (here: M112); echo: Moonraker gone.
        for name in ("bravo", "charlie"):
            r = p[name].moonraker.post("/printer/print/start",
                                       params={"filename": "pause_print.gcode"})
            assert r.status == 200, r.text
        for name in ("bravo", "charlie"):
            p[name].klippy.wait_status("print_stats", "state", "paused", timeout=20)
        r = p["charlie"].moonraker.post("/printer/print/cancel")
        assert r.status == 200, r.text
        p["charlie"].klippy.mcu("mcu").control(op="fault", fault="corrupt", rate=0.1)
        r = p["delta"].moonraker.post("/machine/device_power/device",
                                      params={"device": "printer", "action": "off"})
        assert r.status == 200, r.text
        wait_for(lambda: 'klipper_power_device_status{device="printer"} 0' in
                 p["delta"].moonraker.metrics().text, 10, 0.2, "delta's power device off")
        prom.wait_query('klipper_power_device_status{printer="delta"} == 0', bool, 10)
        r = p["delta"].moonraker.post("/printer/emergency_stop")
        assert r.status == 200, r.text
        p["echo"].moonraker.stop()
        yield {"printers": p, "prom": prom, "file_sd": file_sd, "hosts": str(hosts),
               "first": first, "closed_port": closed_port, "tmp": tmp,
               "probe_sd": probe_sd, "remote": remote,
               "shapes": {"server_metrics": prom, "probe": probe_prom}}
    finally:
        for server in (prom, probe_prom, remote):
            if server is not None:
                server.stop()
        stop_printers(printers)


@pytest.fixture(params=["server_metrics", "probe"])
def shape(request, farm):
    """The farm's Prometheus of each deployment shape: one scraping each printer's
    /server/metrics, one scraping the central exporter's /probe (the probe job)."""
    return farm["shapes"][request.param]


# ---------------------------------------------------------------------- discovery
def test_discovery_writes_each_verified_printer_with_its_name(farm):
    targets = read_targets(farm["file_sd"])
    assert {t: labels["printer"] for t, labels in targets.items()} == {
        pr.target: pr.name for pr in farm["printers"].values()}


def test_discovery_reports_bad_hosts_and_never_writes_them(farm):
    report = farm["first"].stderr
    closed = f"127.0.0.1:{farm['closed_port']}"
    assert f"BAD     {closed}: unreachable" in report
    assert "BAD     not a host: not a host[:port]" in report
    assert closed not in read_targets(farm["file_sd"])
    # a web server that is not Moonraker (Prometheus answers 404 on /server/metrics)
    out = str(farm["tmp"] / "other.json")
    r = discover("--host", farm["prom"].base, "-o", out, cwd=str(farm["tmp"]))
    assert r.returncode == 1, r.stderr
    assert "HTTP 404 from /server/metrics: not a Moonraker" in r.stderr
    assert not os.path.exists(out)


def test_discovery_keeps_a_known_printer_that_stopped_answering(farm):
    """echo is down now: it stays a target (its up==0 alert must fire); the others are
    verified again; --drop-unreachable drops it; the file is replaced, never edited."""
    p = farm["printers"]
    copy = str(farm["tmp"] / "again.json")
    with open(farm["file_sd"], encoding="utf-8") as f:
        original = f.read()
    with open(copy, "w", encoding="utf-8") as f:
        f.write(original)
    r = discover("--hosts-file", farm["hosts"], "--timeout", "3", "-o", copy,
                 cwd=str(farm["tmp"]))
    assert r.returncode == 0, r.stderr
    assert f"kept    {p['echo'].target}: unreachable" in r.stderr
    for name in ("alpha", "bravo", "charlie", "delta"):
        assert f"ok      {p[name].target} printer='{name}'" in r.stderr
    assert read_targets(copy) == read_targets(farm["file_sd"])

    inode = os.stat(copy).st_ino
    r = discover("--hosts-file", farm["hosts"], "--timeout", "3", "--drop-unreachable",
                 "-o", copy, cwd=str(farm["tmp"]))
    assert r.returncode == 0, r.stderr
    assert set(read_targets(copy)) == {p[n].target for n in ("alpha", "bravo", "charlie",
                                                             "delta")}
    assert os.stat(copy).st_ino != inode, "the file must be replaced by a rename"
    assert not [n for n in os.listdir(farm["tmp"]) if n.startswith(".discovery-")]


def test_discovery_finds_printers_by_zeroconf(farm):
    """alpha's Moonraker announces _moonraker._tcp over mDNS ([zeroconf]); the tool finds
    and verifies it (other Moonrakers on this machine may announce too)."""
    out = str(farm["tmp"] / "zeroconf.json")
    r = discover("--zeroconf", "--browse-seconds", "3", "-o", out, cwd=str(farm["tmp"]))
    assert r.returncode == 0, r.stderr
    alpha = farm["printers"]["alpha"]
    labels = read_targets(out).get(alpha.target)
    assert labels == {"printer": "alpha", "__scheme__": "http",
                      "__metrics_path__": "/server/metrics",
                      "__meta_moonraker_instance_id": instance_id(alpha)}, r.stderr


def instance_id(printer) -> str:
    """The uuid a printer's Moonraker keeps in its database (and announces over zeroconf)."""
    r = printer.moonraker.get("/server/database/item",
                              params={"namespace": "moonraker", "key": "instance_id"})
    assert r.status == 200, r.text
    return r.json()["result"]["value"]


def test_discovery_labels_each_printer_with_its_moonraker_instance(farm):
    """Every printer of the host list is identified by the Moonraker that answered: five
    instances, five targets, each with the scheme and metrics path Prometheus scrapes (echo
    no longer answers: its id is the one it gave the first run)."""
    targets = read_targets(farm["file_sd"])
    ids = {t: labels["__meta_moonraker_instance_id"] for t, labels in targets.items()}
    assert len(set(ids.values())) == len(NAMES)
    for pr in farm["printers"].values():
        if pr.moonraker.running():
            assert ids[pr.target] == instance_id(pr)
        assert (targets[pr.target]["__scheme__"], targets[pr.target]["__metrics_path__"]) \
            == ("http", "/server/metrics")


# ------------------------------------------------------------------ names and rules
def test_printer_name_defaults_to_the_host_name_and_an_empty_one_warns():
    import socket
    from simulator import Moonraker
    with Moonraker(None, prometheus="require_auth: False\nprinter_name:   ") as moonraker:
        warnings = "\n".join(moonraker.server_info()["warnings"])
        assert "option 'printer_name' is empty" in warnings
        body = moonraker.metrics(params={"modules": "klippy"}).text
    host = socket.gethostname()
    # Klippy never connected: its version is unknown, an empty label
    assert (f'klipper_printer_info{{printer="{host}",host="{host}",klipper_version="",'
            in body), body


def test_every_printer_exports_its_name_and_versions(farm):
    result = farm["prom"].query("klipper_printer_info")
    named = by_label(result, "exported_printer")  # the target label `printer` wins
    assert set(named) >= {"alpha", "bravo", "charlie", "delta"}
    for name, labels in named.items():
        assert labels["printer"] == name  # discovery labelled the target with the same name
        assert labels["host"] and labels["moonraker_version"] and labels["component_version"]
    assert named["alpha"]["klipper_version"]


def test_recorded_state_of_each_printer(shape):
    want = {"alpha": "idle", "bravo": "paused", "charlie": "idle", "delta": "off",
            "echo": "offline"}
    prom = shape
    result = prom.wait_query(
        "instance:klipper_printer_state:info",
        lambda r: {s["metric"]["printer"]: s["metric"]["state"] for s in r} == want, 30)
    assert len(result) == len(want)
    # the count is another group's rule: it may follow the states one evaluation later
    prom.wait_query("job_state:klipper_printers:count", lambda r: {
        s["metric"]["state"]: float(s["value"][1]) for s in r} == {
        "idle": 2, "paused": 1, "off": 1, "offline": 1}, 10)


def test_farm_alerts(shape):
    """bravo paused too long, charlie's cancelled print and flaky MCU link, echo stopped
    answering; nothing for delta (off on purpose) and nothing about alpha."""
    prom = shape
    expected = {("KlipperPrintPausedTooLong", "bravo"), ("KlipperPrintFailed", "charlie"),
                ("KlipperMcuLinkErrors", "charlie"), ("KlipperTargetDown", "echo")}

    def firing(result):
        return {(s["metric"]["alertname"], s["metric"].get("printer")) for s in result}
    result = prom.wait_query('ALERTS{alertstate="firing"}',
                             lambda r: expected <= firing(r), 40)
    got = firing(prom.query('ALERTS{alertstate=~"firing|pending"}'))
    # On a loaded machine Klippy can retransmit to alpha's simulated MCU (an acknowledgement
    # late): its link-error alert is then true, not a false alarm (a CI run saw it once).
    retransmitted = {s["metric"]["printer"] for s in prom.query(
        "max by (instance, job) (increase(klipper_mcu_retransmit_bytes[5m]) > 0"
        " or increase(klipper_mcu_invalid_bytes[5m]) > 0)"
        " * on (instance, job) group_left (printer) instance:klipper_printer:info")}
    assert "charlie" in retransmitted, retransmitted  # its link is made flaky on purpose
    true_alarms = {("KlipperMcuLinkErrors", p) for p in retransmitted}
    assert not {a for a in got if a[1] in ("alpha", "delta")} - true_alarms, got
    failed = [s["metric"] for s in result if s["metric"]["alertname"] == "KlipperPrintFailed"]
    assert [m["status"] for m in failed] == ["cancelled"]


# ------------------------------------------------------------------ farm dashboard
# Which printers each farm panel shows here: the ones whose Klippy is ready (alpha, bravo,
# charlie) have temperatures and progress; only bravo has a job in progress; delta (Klippy
# shut down) has Klippy's message; every printer has a state.
READY = {"alpha", "bravo", "charlie"}
PER_PRINTER = {
    ("Printers", "A"): set(NAMES), ("State of each printer", "A"): set(NAMES),
    ("Printers", "B"): {"bravo"}, ("Printers", "C"): READY, ("Printers", "D"): {"bravo"},
    ("Printers", "E"): READY, ("Printers", "F"): READY, ("Printers", "G"): READY,
    ("Printers", "H"): READY, ("Printers", "I"): {"delta"}, ("Progress", "A"): READY,
    ("Nozzle temperatures", "A"): READY, ("Nozzle temperatures", "B"): READY,
    ("Bed temperatures", "A"): READY, ("Bed temperatures", "B"): READY,
    ("Jobs per printer in the last day", "A"): READY | {"delta"},
    ("Filament per printer in the last day", "A"): READY | {"delta"},
    ("Failed or cancelled jobs (last 15 minutes)", "A"): {"charlie"},
}


def farm_queries():
    from tests.test_dashboard import FARM_DASHBOARD, load_dashboard, panel_targets
    return panel_targets(load_dashboard(FARM_DASHBOARD))


def check_farm_queries(prom) -> None:
    """Every farm panel query is valid and returns data, per printer where it has one."""
    from tests.test_dashboard import substitute
    errors = []
    for title, ref, expr in farm_queries():
        q = substitute(expr, ".*")
        body = prom.api("query", query=q)
        if body.get("status") != "success":
            errors.append(f"{title}/{ref}: {body.get('error')}")
            continue
        result = body["data"]["result"]
        if not result:
            errors.append(f"{title}/{ref}: no data: {q}")
        elif (title, ref) in PER_PRINTER:
            shown = {s["metric"].get("printer") for s in result}
            if shown != PER_PRINTER[(title, ref)]:
                errors.append(f"{title}/{ref}: printers {sorted(shown)}, want "
                              f"{sorted(PER_PRINTER[(title, ref)])}")
    assert not errors, "\n".join(errors)


def test_every_farm_dashboard_query_returns_data_per_printer(shape):
    prom = shape
    prom.wait_query("instance_status:klipper_history_jobs:increase1d", bool, 20)
    prom.wait_query("instance:klipper_printer_state:info", lambda r: len(r) == 5, 30)
    # live printers: a temperature exists once its sensor has really been read
    prom.wait_query("klipper_extruder_temperature * on (instance, job) group_left (printer) "
                    "instance:klipper_printer:info",
                    lambda r: {s["metric"]["printer"] for s in r} == READY, 20)
    check_farm_queries(prom)
    assert {k for k in PER_PRINTER} <= {(t, r) for t, r, _ in farm_queries()}


# ------------------------------------------------------------------ recording rules
# The printers each per-printer recording rule has series for (echo no longer answers: its
# history is gone with it; only delta is off on purpose); the farm totals (job...) must have
# a series for the job.
RULE_PRINTERS = {
    "instance:klipper_printer_up:min": set(NAMES),
    "instance:klipper_printer:info": set(NAMES),
    "instance:klipper_printer_powered_off:info": {"delta"},
    "instance:klipper_printer_state:info": set(NAMES),
    "instance_status:klipper_history_failed_jobs:recent15m": READY | {"delta"},
    "instance_status:klipper_history_jobs:increase1d": READY | {"delta"},
    "instance:klipper_filament_used_mm:increase1d": READY | {"delta"},
}


def recording_rule_errors(prom) -> list:
    """What is wrong with the data of rules.yml's recording rules (see RULE_PRINTERS);
    every rule is checked, a rule without an expectation here is an error."""
    errors = []
    for record in recording_rules():
        if record.startswith("job"):
            jobs = {s["metric"].get("job") for s in prom.query(record)}
            if jobs != {"klipper"}:
                errors.append(f"{record}: jobs {sorted(jobs)}")
        elif record not in RULE_PRINTERS:
            errors.append(f"{record}: not in RULE_PRINTERS")
        else:
            shown = {s["metric"].get("printer") for s in prom.query(
                f"{record} * on (instance, job) group_left (printer) "
                f"instance:klipper_printer:info")}
            if shown != RULE_PRINTERS[record]:
                errors.append(f"{record}: printers {sorted(shown)}, want "
                              f"{sorted(RULE_PRINTERS[record])}")
    return errors


def test_every_recording_rule_has_data_per_printer(shape):
    import time
    deadline = time.monotonic() + 30  # the day totals need two evaluations after a scrape
    while True:
        errors = recording_rule_errors(shape)
        if not errors or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not errors, "\n".join(errors)


# ------------------------------------------------------------- the central exporter
def test_the_central_exporter_probes_the_printers_discovery_wrote_and_refuses_others(farm):
    """Its --targets-file is the --probe-job file: every printer written is probed (echo,
    down, too: probe_success 0), the host list's address that is no printer is refused."""
    remote, printers = farm["remote"], farm["printers"].values()
    listed = read_targets(farm["probe_sd"])
    assert set(listed) == {pr.target for pr in printers}
    for target in listed:
        assert remote.probe(target)[0] == 200, target
    assert remote.probe(f"127.0.0.1:{farm['closed_port']}")[0] == 403


# --------------------------------------------------------------------- agent mode
def test_agent_remote_writes_to_a_central_prometheus_that_answers_the_farm_dashboard(farm):
    """A site Prometheus in agent mode scrapes the farm (same file_sd) and remote-writes
    everything to a central Prometheus with its remote-write receiver on; the central one
    evaluates rules.yml and answers every farm dashboard query, per printer."""
    tmp = farm["tmp"]
    rules = str(tmp / "rules.yml")  # the copy the fixture made (day totals every second)
    central = PrometheusServer(str(tmp / "central"), rule_files=[rules],
                               flags=["--web.enable-remote-write-receiver"])
    agent = None
    try:
        central.start()
        agent = PrometheusServer(
            str(tmp / "agent"), scrape_config(file_sd=[farm["file_sd"]]), agent=True,
            extra_config=(f"remote_write:\n  - url: {central.base}/api/v1/write\n"
                          "    queue_config:\n      batch_send_deadline: 1s\n"))
        agent.start()
        # an agent answers no queries: the data is only in the central one
        assert agent.api("query", query="up").get("status") != "success"
        central.wait_query('count_over_time(up{job="klipper"}[1m]) >= 3',
                           lambda r: len(r) == len(NAMES), 40, "remote-written scrapes")
        central.wait_query("instance:klipper_printer_state:info",
                           lambda r: len(r) == len(NAMES), 30)
        central.wait_query("instance_status:klipper_history_jobs:increase1d", bool, 20)
        # charlie's first cancelled print predates the central's data: cancel another one,
        # seen through the agent
        charlie = farm["printers"]["charlie"]
        r = charlie.moonraker.post("/printer/print/start", params={"filename": "pause_print.gcode"})
        assert r.status == 200, r.text
        charlie.klippy.wait_status("print_stats", "state", "paused", timeout=20)
        assert charlie.moonraker.post("/printer/print/cancel").status == 200
        central.wait_query('instance_status:klipper_history_failed_jobs:recent15m > 0', bool, 30)
        check_farm_queries(central)
    finally:
        if agent is not None:
            agent.stop()
        central.stop()
