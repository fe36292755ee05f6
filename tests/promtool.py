"""Run `promtool check metrics` on a scraped body; lint findings must be allow-listed.

Other tests reuse it:

    from tests.promtool import assert_promtool_clean
    assert_promtool_clean(body)

`tests/promtool-allowlist.txt` lists, one per line, a finding exactly as promtool prints it
(`<metric name> <message>`), then `#` and the reason it is accepted: only names inherited
from prometheus-klipper-exporter, kept so existing dashboards keep working.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Dict, List, Tuple

import pytest

ALLOWLIST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "promtool-allowlist.txt")


def promtool_path() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed (Debian package 'prometheus'): "
                    "run scripts/bootstrap.sh")
    return path


def load_allowlist(path: str = ALLOWLIST) -> Dict[str, str]:
    """finding -> reason; a line without a reason is an error."""
    allowed: Dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            finding, sep, reason = line.partition(" # ")
            if not sep or not reason.strip():
                raise ValueError(f"{path}:{number}: give a reason after ' # ': {line!r}")
            allowed[finding.strip()] = reason.strip()
    return allowed


def check_metrics(body: str) -> Tuple[int, List[str]]:
    """(promtool exit code, its output lines)."""
    proc = subprocess.run([promtool_path(), "check", "metrics"], input=body.encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    lines = [ln.strip() for ln in proc.stdout.decode("utf-8", "replace").splitlines()]
    return proc.returncode, [ln for ln in lines if ln]


def unexpected_findings(body: str) -> List[str]:
    """Findings not in the allow-list; a parse error (exit 1) is always unexpected."""
    code, lines = check_metrics(body)
    if code == 0:
        return []
    if code != 3:
        return [f"promtool exit {code}: " + " | ".join(lines)]
    allowed = load_allowlist()
    return [ln for ln in lines if ln not in allowed]


def assert_promtool_clean(body: str) -> None:
    bad = unexpected_findings(body)
    assert not bad, ("promtool check metrics findings not in tests/promtool-allowlist.txt:\n"
                     + "\n".join(bad))


@pytest.fixture
def promtool_check():
    """Fixture form: `promtool_check(body)` asserts the body is clean (allow-list applied).

    Make it available with `pytest_plugins = ["tests.promtool"]` in conftest.py, or import
    it into a test module: `from tests.promtool import promtool_check  # noqa: F401`.
    """
    promtool_path()
    return assert_promtool_clean
