"""pyproject.toml: `pipx install .` (pip from a clone or its git URL) gives the host's
commands, with the version install.sh and Moonraker's update manager read.

The project's sdist is installed into a throwaway virtualenv (pip reaches PyPI for
setuptools and the dependencies); each installed command must answer --help. moonraker-prometheus-remote is checked once moonraker_prometheus/remote exists.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from simulator import REPO_ROOT

COMMANDS = ("moonraker-prometheus-sidecar", "moonraker-prometheus-discovery",
            "moonraker-prometheus-remote")
# what a clone holds that the build reads
BUILD_INPUTS = ("pyproject.toml", "MANIFEST.in", "README.md", "requirements-sidecar.txt",
                "requirements-farm.txt", "moonraker_prometheus")


def source_version() -> str:
    with open(os.path.join(REPO_ROOT, "moonraker_prometheus", "__init__.py")) as f:
        return re.search(r'^__version__ = "(.*)"$', f.read(), re.M).group(1)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv with the project pip-installed from an sdist built from a copy of the
    build's inputs (the sdist must carry what the build reads, MANIFEST.in)."""
    pytest.importorskip("setuptools.build_meta")
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in BUILD_INPUTS:
        path = os.path.join(REPO_ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / name)
    sdist = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
         "print(build_meta.build_sdist(sys.argv[1]))", str(tmp / "dist")],
        cwd=src, capture_output=True, text=True, timeout=120)
    assert sdist.returncode == 0, sdist.stderr
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
         "--disable-pip-version-check", str(tmp / "dist" / sdist.stdout.split()[-1])],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return venv


@pytest.mark.parametrize("command", COMMANDS)
def test_installed_command_answers_help(installed, command):
    script = installed / "bin" / command
    assert script.exists(), command
    if command.endswith("-remote") and not os.path.exists(
            os.path.join(REPO_ROOT, "moonraker_prometheus", "remote", "__main__.py")):
        pytest.skip("moonraker_prometheus/remote is not there yet")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                            timeout=60, env=dict(os.environ, PYTHONPATH=""))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:"), result.stdout


def test_installed_version_is_the_packages_version(installed):
    result = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "from importlib import metadata; print(metadata.version('moonraker-prometheus'))"],
        capture_output=True, text=True, check=True)
    assert result.stdout.strip() == source_version()


def test_optional_groups_are_the_requirements_files():
    tomllib = pytest.importorskip("tomllib")
    with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
        dynamic = tomllib.load(f)["tool"]["setuptools"]["dynamic"]
    groups = {name: spec["file"] for name, spec in dynamic["optional-dependencies"].items()}
    assert groups == {"sidecar": ["requirements-sidecar.txt"],
                      "farm": ["requirements-farm.txt"]}
    assert sorted(dynamic["dependencies"]["file"]) == sorted(
        f for files in groups.values() for f in files)
    for files in groups.values():
        for line in open(os.path.join(REPO_ROOT, files[0])):
            # setuptools takes every line that does not start with "#" as a requirement
            assert line.lstrip().startswith("#") or "#" not in line, line


UNITS = os.path.join(REPO_ROOT, "examples", "systemd")


@pytest.mark.parametrize("unit", sorted(os.listdir(UNITS)))
def test_systemd_unit_example_runs_an_installed_command_with_its_options(installed, unit,
                                                                          tmp_path):
    with open(os.path.join(UNITS, unit)) as f:
        text = f.read()
    argv = re.search(r"^ExecStart=(.*)$", text, re.M).group(1).split()
    command = os.path.basename(argv[0])
    assert command in COMMANDS and unit == command + ".service"
    if command.endswith("-remote") and not os.path.exists(
            os.path.join(REPO_ROOT, "moonraker_prometheus", "remote", "__main__.py")):
        pytest.skip("moonraker_prometheus/remote is not there yet")
    script = installed / "bin" / command
    usage = subprocess.run([str(script), "--help"], capture_output=True, text=True,
                           timeout=60).stdout
    for option in argv[1:]:
        if option.startswith("-"):
            assert option.split("=")[0] in usage, option
    analyze = shutil.which("systemd-analyze")
    if analyze:  # the unit as systemd reads it, with the command where pipx put it here
        local = tmp_path / unit
        local.write_text(text.replace(argv[0], str(script)))
        result = subprocess.run([analyze, "verify", "--man=no", str(local)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr
