"""The standalone sidecar takes reverse_exporter's command-line spellings of its options."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BROKEN = ("reverse_exporters:\n  - path: /metrics\n    exporters:\n      http:\n"
          "        - name: a\n          address: http://h/m\n          timeout: 1 second\n")


@pytest.mark.parametrize("spelling", [
    ["--config", "{}"], ["--config-file", "{}"], ["--config-file={}"], ["-config.file", "{}"],
    ["-config.file={}"], ["--config.file", "{}"], ["-config-file", "{}"],
])
def test_config_file_flag_in_every_reverse_exporter_spelling(tmp_path, spelling):
    # a config broken at a known key: exit 2 naming it proves the file given was read
    cfg = tmp_path / "reverse_exporter.yml"
    cfg.write_text(BROKEN)
    argv = [part.format(cfg) for part in spelling]
    proc = subprocess.run([sys.executable, "-m", "moonraker_prometheus.sidecar", *argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc.stderr
    assert "reverse_exporters[0].exporters.http[0].timeout" in proc.stderr


def test_missing_config_flag_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "moonraker_prometheus.sidecar"], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "--config" in proc.stderr
