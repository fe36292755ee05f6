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

from moonraker_prometheus import __url__, __version__
from simulator import REPO_ROOT, VENV_ROOT, Moonraker, wait_for

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
    # as published without its tags: the version must not depend on them
    for tag in git("tag", "-l", cwd=str(project)).split():
        git("tag", "-d", tag, cwd=str(project))
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


def snapshot(*roots) -> dict:
    """Every path under `roots` with its link target or content: what install.sh changed."""
    out = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(str(root)):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path):
                    out[path] = "-> " + os.readlink(path)
                elif os.path.isfile(path):
                    with open(path, "rb") as f:
                        out[path] = f.read()
    return out


@pytest.mark.parametrize("breakage,message", [
    ("no_env", "no Moonraker virtualenv"),
    ("no_conf", "moonraker.conf"),
    ("link_is_a_folder", "is not a link"),
])
def test_install_checks_the_layout_before_changing_anything(printer_host, breakage, message):
    home, checkout, config_dir, project = printer_host
    env = VENV
    if breakage == "no_env":
        env = str(home / "no-such-env")
    elif breakage == "no_conf":
        (config_dir / "moonraker.conf").unlink()
    else:
        (checkout / "moonraker" / "components" / "prometheus").mkdir()
    before = snapshot(checkout, config_dir, project / ".git" / "refs")
    result = subprocess.run(
        ["bash", str(project / "install.sh"), "-m", str(checkout), "-e", env,
         "-c", str(config_dir), "--no-restart"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert snapshot(checkout, config_dir, project / ".git" / "refs") == before


def test_install_prints_the_port_moonraker_listens_on(printer_host):
    home, checkout, config_dir, project = printer_host
    (config_dir / "moonraker.conf").write_text("[server]\nhost: 0.0.0.0\nport: 7130\n")
    result = run_install(project, checkout, config_dir)
    assert result.returncode == 0, result.stderr
    assert "http://<printer>:7130/server/metrics" in result.stdout


def test_install_puts_nothing_the_component_does_not_need_into_moonrakers_env(printer_host):
    home, checkout, config_dir, project = printer_host
    # a virtualenv whose pip records every call
    env = home / "moonraker-env"
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(os.path.join(VENV, "bin", "python"))
    calls = home / "pip-calls"
    pip = env / "bin" / "pip"
    pip.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    pip.chmod(0o755)
    result = subprocess.run(
        ["bash", str(project / "install.sh"), "-m", str(checkout), "-e", str(env),
         "-c", str(config_dir), "--no-restart"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not calls.exists(), calls.read_text()
    # and the component really runs without the sidecar's packages
    probe = subprocess.run(
        [os.path.join(VENV, "bin", "python"), "-c",
         "import sys, moonraker_prometheus.component; "
         "print(sorted(m for m in ('prometheus_client', 'yaml', 'bcrypt') if m in sys.modules))"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == "[]", probe.stderr


def test_clone_url_is_the_same_everywhere():
    """moonraker_prometheus.__url__ is the one place; the docs and install.sh repeat it."""
    def read(name: str) -> str:
        with open(os.path.join(REPO_ROOT, name), encoding="utf-8") as f:
            return f.read()
    assert f"git clone {__url__}" in read("README.md")
    assert f"#origin: {__url__}\n" in read("moonraker.conf.example")
    assert f"git clone {__url__}\n" in read("install.sh")
    for name in ("README.md", "moonraker.conf.example", "install.sh"):
        assert "<this repository>" not in read(name) and "<you>" not in read(name), name


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
        # the version Mainsail and Fluidd show: the component's own, not an inferred v0.0.0
        assert status["version"].split("-")[0] == f"v{__version__}", status
        assert "inferred" not in status["full_version_string"], status
        assert status["remote_url"] == REPO_ROOT
        # the code that ran is the checkout's Moonraker and the installed clone's component
        moonraker_status = moonraker.get("/machine/update/status").json()["result"]
        assert moonraker_status["version_info"]["moonraker"]["detected_type"] == "git_repo"
        assert f"loaded from {project / 'moonraker_prometheus'}" in moonraker.log_text()
