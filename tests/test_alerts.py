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
PROMETHEUS_YML = os.path.join(REPO, "prometheus", "prometheus.yml")
NAME_RE = re.compile(r"\bklipper_[a-z0-9_]+")
SIDECAR_PREFIXES = ("klipper_exporter_source_", "klipper_exporter_merge_")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run scripts/bootstrap.sh (Debian package "
                    f"'prometheus')", pytrace=False)
    return path


def catalogue_names() -> Set[str]:
    """Every family name the component declares, plus the sidecar health families."""
    from moonraker_prometheus.catalogue import exporter
    from moonraker_prometheus.collectors import COLLECTORS
    names = {m.name for c in COLLECTORS for m in c.metrics}
    names |= {m.name for m in exporter.METRICS}
    from moonraker_prometheus.sidecar.health import FAMILIES
    names |= {f[0] for f in FAMILIES}
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
    r = run([require_tool("promtool"), "check", "rules", ALERTS])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


def test_promtool_test_rules():
    r = run([require_tool("promtool"), "test", "rules", ALERTS_TEST],
            cwd=os.path.dirname(ALERTS_TEST))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout, r.stdout


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
    with open(ALERTS, encoding="utf-8") as f:
        used = names_in(f.read())
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
