"""scripts/compare_outputs.py: what it compares is deterministic and covers every collector."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from moonraker_prometheus.collectors import COLLECTORS

pytestmark = pytest.mark.unit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "compare_outputs.py")


def _tool():
    spec = importlib.util.spec_from_file_location("compare_outputs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mask_hides_the_values_that_move_between_renders_and_nothing_else():
    mask = _tool().mask
    a = "# HELP x X.\nx 1.0\nage 0.5\nmem 10\n"
    b = "# HELP x X.\nx 1.0\nage 0.7\nmem 10\n"
    assert mask([a, b]) == ["# HELP x X.\nx 1.0\nage <moves>\nmem 10\n"] * 2
    assert mask([a, b], always=("mem",))[0] == "# HELP x X.\nx 1.0\nage <moves>\nmem <moves>\n"
    # another series, or other lines: shown as they are
    assert mask(["x 1\n", "y 1\n"]) == ["x 1\n", "y 1\n"]
    assert mask(["x 1\n", "x 1\nx 2\n"]) == ["x 1\n", "x 1\nx 2\n"]
    assert mask(["m 1\n", "m 2\nx 2\n"], always=("m",)) == ["m <moves>\n", "m <moves>\nx 2\n"]


def test_the_component_s_outputs_are_the_same_in_two_runs_and_every_collector_succeeds():
    def dump():
        done = subprocess.run([sys.executable, SCRIPT, "--dump-component"], cwd=REPO,
                              env={**os.environ, "PYTHONPATH": REPO}, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    first, second = dump(), dump()
    assert first == second
    body = first["component: every module, everything known"]
    for cls in COLLECTORS:
        assert f'klipper_exporter_collector_success{{collector="{cls.name}"}} 1.0' in body
