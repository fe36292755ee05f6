"""install.sh on a printer-host layout: ~/moonraker (git checkout), its virtualenv, config.

The installed component is then loaded by a real Moonraker started from that checkout, and
Moonraker's update manager reports the project as a git_repo extension.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from tests.harness import REPO_ROOT, VENV_ROOT, Moonraker, wait_for

INSTALL = os.path.join(REPO_ROOT, "install.sh")
VENV = os.path.join(VENV_ROOT, "moonraker")


def git(*args: str, cwd: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def printer_host(tmp_path):
    """A home folder laid out like a printer host, with Moonraker as a git checkout."""
    home = tmp_path / "home"
    checkout = home / "moonraker"
    package = glob.glob(os.path.join(VENV, "lib", "python*", "site-packages", "moonraker"))[0]
    shutil.copytree(package, checkout / "moonraker", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "prometheus"))
    # Moonraker's update manager expects the repository's scripts/ beside the package
    (checkout / "scripts").mkdir()
    (checkout / "scripts" / "moonraker-requirements.txt").write_text("")
    (checkout / "scripts" / "system-dependencies.json").write_text("{}")
    git("init", "-q", "-b", "master", cwd=str(checkout))
    git("add", ".", cwd=str(checkout))
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "moonraker",
        cwd=str(checkout))
    config_dir = home / "printer_data" / "config"
    config_dir.mkdir(parents=True)
    (config_dir / "moonraker.conf").write_text("[server]\n")
    project = home / "moonraker-prometheus"
    git("clone", "-q", REPO_ROOT, str(project), cwd=str(home))
    return home, checkout, config_dir, project


def run_install(project, checkout, config_dir, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(project / "install.sh"), "-m", str(checkout), "-e", VENV,
         "-c", str(config_dir), "--no-restart", *extra],
        capture_output=True, text=True, timeout=120)


def test_install_links_component_and_keeps_moonraker_checkout_clean(printer_host):
    home, checkout, config_dir, project = printer_host
    result = run_install(project, checkout, config_dir)
    assert result.returncode == 0, result.stderr
    link = checkout / "moonraker" / "components" / "prometheus"
    assert os.path.realpath(link) == str(project / "moonraker_prometheus")
    assert git("status", "--porcelain", cwd=str(checkout)) == ""


def test_install_adds_config_sections_once(printer_host):
    home, checkout, config_dir, project = printer_host
    assert run_install(project, checkout, config_dir).returncode == 0
    assert run_install(project, checkout, config_dir).returncode == 0
    conf = (config_dir / "moonraker.conf").read_text()
    assert conf.count("[prometheus]") == 1
    assert conf.count("[update_manager moonraker-prometheus]") == 1
    assert f"path: {project}" in conf
    assert f"origin: {REPO_ROOT}" in conf


def test_install_refuses_a_missing_moonraker(tmp_path):
    result = subprocess.run(["bash", INSTALL, "-m", str(tmp_path / "nowhere"), "--no-restart"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "no Moonraker components folder" in result.stderr


def test_uninstall_removes_link_and_exclude_entry(printer_host):
    home, checkout, config_dir, project = printer_host
    assert run_install(project, checkout, config_dir).returncode == 0
    result = run_install(project, checkout, config_dir, "--uninstall")
    assert result.returncode == 0, result.stderr
    assert not os.path.lexists(checkout / "moonraker" / "components" / "prometheus")
    exclude = (checkout / ".git" / "info" / "exclude").read_text()
    assert "moonraker/components/prometheus" not in exclude


def test_installed_component_serves_metrics_and_update_manager_tracks_it(printer_host):
    home, checkout, config_dir, project = printer_host
    assert run_install(project, checkout, config_dir).returncode == 0
    added = (config_dir / "moonraker.conf").read_text().split("[server]\n", 1)[1]
    data_dir = str(config_dir.parent)
    # Moonraker from the checkout, as a printer host runs it, not the venv's copy.
    moonraker = Moonraker(None, prometheus=None, data_dir=data_dir,
                          extra_config=added + "\n[update_manager]\nenable_system_updates: False\n",
                          env={"PYTHONPATH": str(checkout)})
    with moonraker:
        assert moonraker.metrics().status == 200
        def repo_status():
            info = moonraker.get("/machine/update/status").json()["result"]["version_info"]
            status = info.get("moonraker-prometheus") or {}
            return status if status.get("branch", "?") != "?" else None  # detection done

        status = wait_for(repo_status, 20.0, 0.2, "update manager status of moonraker-prometheus")
        assert status["configured_type"] == "git_repo", status
        assert status["is_valid"] and not status["is_dirty"], status
        assert status["remote_url"] == REPO_ROOT
        # the code that ran is the checkout's Moonraker and the installed clone's component
        moonraker_status = moonraker.get("/machine/update/status").json()["result"]
        assert moonraker_status["version_info"]["moonraker"]["detected_type"] == "git_repo"
        assert f"loaded from {project / 'moonraker_prometheus'}" in moonraker.log_text()
