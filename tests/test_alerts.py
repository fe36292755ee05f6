"""prometheus/alerts.yml: promtool checks, promtool unit tests, and metric names.

`promtool check rules` validates the rule file, `promtool test rules` runs
prometheus/alerts.test.yml (every alert firing and not firing), and every `klipper_*` name
the rules use must be a family the component declares (moonraker_prometheus.catalogue) or
one of the sidecar's health families (klipper_exporter_source_*, klipper_exporter_merge_*).
promtool comes with Debian's `prometheus` package (scripts/bootstrap.sh installs it): when it
is missing these tests fail, they do not skip.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import Iterable, Set

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALERTS = os.path.join(REPO, "prometheus", "alerts.yml")
ALERTS_TEST = os.path.join(REPO, "prometheus", "alerts.test.yml")
RULES = os.path.join(REPO, "prometheus", "rules.yml")
RULES_TEST = os.path.join(REPO, "prometheus", "rules.test.yml")
PROMETHEUS_YML = os.path.join(REPO, "prometheus", "prometheus.yml")
NAME_RE = re.compile(r"(?<![\w:])klipper_[a-z0-9_]+")  # not inside a recording rule name
SIDECAR_PREFIXES = ("klipper_exporter_source_", "klipper_exporter_merge_")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh (Debian package "
                    f"'prometheus')", pytrace=False)
    return path


def catalogue_names() -> Set[str]:
    """Every family name the component declares, plus the sidecar health families and
    the central exporter's probe families."""
    from moonraker_prometheus.catalogue import exporter
    from moonraker_prometheus.collectors import COLLECTORS
    names = {m.name for c in COLLECTORS for m in c.metrics}
    names |= {m.name for m in exporter.METRICS}
    from moonraker_prometheus.sidecar.health import FAMILIES
    names |= {f.name for f in FAMILIES}
    from moonraker_prometheus.remote.metrics import PROBE  # the central exporter's probe
    names |= {m.name for m in PROBE}
    return names


def unknown_names(used: Iterable[str]) -> Set[str]:
    known = catalogue_names()
    # a sidecar health name must also be one of the families health.py declares
    return {n for n in used if n not in known}


def names_in(text: str) -> Set[str]:
    return set(NAME_RE.findall(text))


def run(argv, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_promtool_check_rules():
    r = run([require_tool("promtool"), "check", "rules", RULES, ALERTS])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("SUCCESS") == 2, r.stdout


@pytest.mark.parametrize("unit_tests", [ALERTS_TEST, RULES_TEST],
                         ids=["alerts", "recording-rules"])
def test_promtool_test_rules(unit_tests):
    r = run([require_tool("promtool"), "test", "rules", unit_tests],
            cwd=os.path.dirname(unit_tests))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def load_yaml(path: str):
    import yaml
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def recording_rules():
    return [r["record"] for g in load_yaml(RULES)["groups"] for r in g["rules"]]


def test_every_recording_rule_is_unit_tested():
    tested = {case["expr"].split()[0] for t in load_yaml(RULES_TEST)["tests"]
              for case in t.get("promql_expr_test", [])}
    assert recording_rules(), "no recording rules in rules.yml"
    assert set(recording_rules()) - tested == set()


def test_alerts_name_the_printer():
    """Every per-printer alert carries the printer's name (label `printer`)."""
    rules = load_yaml(ALERTS)
    records = set(recording_rules())
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" not in r or r["alert"] == "KlipperMetricsAbsent":
                continue
            assert ("instance:klipper_printer:info" in r["expr"]
                    or r["expr"].split()[0] in records), r["alert"]
            assert "$labels.printer" in r["annotations"]["summary"], r["alert"]


def test_every_alert_has_a_firing_and_a_quiet_test():
    import yaml
    with open(ALERTS, encoding="utf-8") as f:
        rules = yaml.safe_load(f)
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    with open(ALERTS_TEST, encoding="utf-8") as f:
        tests = yaml.safe_load(f)
    firing, quiet = set(), set()
    for t in tests["tests"]:
        for case in t.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert alerts, "no alerts in alerts.yml"
    assert alerts - firing == set(), "alerts never tested firing"
    assert alerts - quiet == set(), "alerts never tested quiet"
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r:
                assert r.get("labels", {}).get("severity") in ("info", "warning", "critical"), r
                assert r.get("annotations", {}).get("summary"), r
                assert r.get("annotations", {}).get("description"), r


def test_alert_metric_names_exist_in_catalogue():
    used = set()
    for path in (ALERTS, RULES):
        with open(path, encoding="utf-8") as f:
            used |= names_in(f.read())
    assert used, "no klipper_* names found in alerts.yml"
    assert unknown_names(used) == set()
    for n in used:
        if n.startswith("klipper_exporter_") and not n.startswith(
                ("klipper_exporter_collector_", "klipper_exporter_build_")):
            assert n.startswith(SIDECAR_PREFIXES), n


def test_example_prometheus_config_is_valid():
    r = run([require_tool("promtool"), "check", "config", PROMETHEUS_YML],
            cwd=os.path.dirname(PROMETHEUS_YML))
    assert r.returncode == 0, r.stdout + r.stderr
    with open(PROMETHEUS_YML, encoding="utf-8") as f:
        text = f.read()
    assert "/server/metrics" in text and "trusted_clients" in text
