"""The central exporter on every Moonraker the simulator starts (0.8.0 on Python 3.7 as
vendor firmwares ship it, 0.9.3, 0.10.0, 0.11.0), none with the component: each probe is
a success with the printer series, and what an old Moonraker lacks is absent, never 0,
with the method that failed named in klipper_probe_source_error_info."""
from __future__ import annotations

import time

import pytest

from simulator import Klippy, Moonraker, moonraker_unavailable
from tests.test_remote import Remote, families, target_of, values

VERSIONS = ("0.8.0", "0.9.3", "0.10.0", "0.11.0")


@pytest.mark.parametrize("version", VERSIONS)
def test_every_moonraker_gives_a_probe_with_the_printer_series(version, tmp_path):
    why = moonraker_unavailable(version)
    if why:
        pytest.skip(why)
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, prometheus=None, version=version) as moonraker:
            moonraker.wait_klippy_ready()
            remote = Remote(str(tmp_path), "--target", target_of(moonraker))
            try:
                deadline = time.monotonic() + 15
                while True:
                    status, body, _ = remote.probe(target_of(moonraker))
                    found = values(body)
                    if any(n.startswith("klipper_system_cpu ") or n == "klipper_system_cpu"
                           for n in found) or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
            finally:
                remote.stop()
    assert status == 200 and found["probe_success"] == 1.0, body[-2000:]
    present = families(body)
    for name in ("klipper_extruder_temperature", "klipper_system_cpu",
                 "klipper_network_rx_bytes", "klipper_disk_usage_total",
                 "klipper_job_queue_length", "klipper_component_info"):
        assert name in present, (version, name)
    assert any(n.startswith("klipper_moonraker_version_info{version=\"v" + version)
               or n.startswith("klipper_moonraker_version_info{version=\"" + version)
               for n in found), [n for n in found if "version_info" in n]
    # every method the exporter reads where the component is listed answers on each version
    assert "klipper_probe_source_error_info" not in present, body
