"""Every Moonraker people run starts in the simulator with the live simulated printer.

Real Moonraker 0.8.0 (Python 3.7), 0.9.3 and 0.10.0 (Python 3.9) and 0.11.0, each from its
virtualenv (scripts/bootstrap.sh), against one real Klippy: each answers /server/info and
reports Klippy ready through its own API, without the component (the remote exporter's tests
build on this). A version whose interpreter bootstrap did not find skips with its reason.
"""
from __future__ import annotations

import pytest

from simulator import MOONRAKER_VERSIONS, Moonraker, moonraker_unavailable, wait_for

# Lines Moonraker logs when it reaches out to the internet at start-up (the host has no
# route out: they fail), and the line that says it reads its feeds from a local folder.
OUTBOUND_LOG_LINES = ("Fetching latest usb.ids", "Failed to retrieve usb.ids",
                      "Failed to update subscription")
LOCAL_FEEDS_LOG = "_fetch_local_folder"


@pytest.fixture(params=sorted(MOONRAKER_VERSIONS, key=lambda v: tuple(map(int, v.split(".")))))
def version(request):
    reason = moonraker_unavailable(request.param)
    if reason:
        pytest.skip(reason)
    return request.param


def test_each_moonraker_version_serves_the_simulated_printer(shared_klippy, version, tmp_path):
    with Moonraker(shared_klippy, prometheus=None, version=version,
                   data_dir=str(tmp_path / "printer_data")) as moonraker:
        info = moonraker.wait_klippy_ready()
        assert info["moonraker_version"].lstrip("v").startswith(version), info
        r = moonraker.get("/printer/objects/query", params={"webhooks": ""})
        assert r.status == 200, r.text
        assert r.json()["result"]["status"]["webhooks"]["state"] == "ready"
        log = wait_for(lambda: LOCAL_FEEDS_LOG in moonraker.log_text() and moonraker.log_text(),
                       10, what="announcements read from the data folder")
    for line in OUTBOUND_LOG_LINES:
        assert line not in log, line


def test_the_component_is_refused_on_a_moonraker_it_cannot_run_on():
    with pytest.raises(Exception, match="prometheus=None"):
        Moonraker(None, version="0.8.0")
