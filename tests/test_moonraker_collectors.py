"""Moonraker-side collectors inside a real Moonraker against real Klippy (live).

Prints use simulator/gcodes/pause_print.gcode: its PAUSE holds the job in progress so that
Moonraker sees it printing (a print that ends before Moonraker saw it printing is not recorded
in its history); the tests then resume or cancel it.

Stand-ins for services that cannot run here: simulator/mqtt_standin.py (an MQTT broker, so a
Moonraker `[sensor NAME]` of `type: mqtt` gets values) and simulator/spoolman_standin.py
(Spoolman's HTTP and websocket API).
"""
from __future__ import annotations

import socket
import time
from typing import Dict

import pytest

from simulator import Klippy, Moonraker
from simulator.mqtt_standin import MqttStandin
from simulator.services import moonraker_conf, scrape, settle, wait_metrics
from simulator.spoolman_standin import SpoolmanStandin
from tests.promtool import promtool_check  # noqa: F401  (fixture)

PAUSE_FILE = "pause_print.gcode"
QUICK_FILE = "quick_print.gcode"
@pytest.fixture(scope="module")
def mqtt():
    with MqttStandin() as broker:
        yield broker


@pytest.fixture(scope="module")
def spoolman():
    standin = SpoolmanStandin().start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def printer(mqtt, spoolman):
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        moonraker = Moonraker(klippy, extra_config=moonraker_conf(mqtt.port, spoolman.url))
        with moonraker:
            settle(moonraker)
            yield klippy, moonraker


def test_process_host_and_server_families(printer):
    _, moonraker = printer
    # proc_stats needs two samples (1 s apart) before it knows CPU usage.
    found = wait_metrics(moonraker, lambda s: "klipper_system_cpu" in s and
                         "klipper_disk_usage_total" in s)
    for name in ("klipper_moonraker_memory_kb", "klipper_moonraker_websocket_connections",
                 "klipper_moonraker_event_loop_blocked_total", "klipper_system_cpu",
                 "klipper_system_memory_total", "klipper_system_memory_available",
                 "klipper_system_memory_used", "klipper_system_uptime",
                 "klipper_system_cpu_count", "klipper_total_jobs", "klipper_job_queue_length",
                 "klipper_disk_usage_total", "klipper_disk_usage_used",
                 "klipper_disk_usage_available"):
        assert name in found, name
    assert found["klipper_system_memory_used"] == pytest.approx(
        found["klipper_system_memory_total"] - found["klipper_system_memory_available"])
    assert any(k.startswith("klipper_system_cpu_core_usage_ratio{cpu=\"cpu0\"}") for k in found)
    assert any(k.startswith("klipper_network_rx_bytes{interface=\"lo\"}") for k in found)
    assert found['klipper_component_info{component="job_queue"}'] == 1.0
    assert found['klipper_component_info{component="prometheus"}'] == 1.0
    info = moonraker.server_info()
    assert found[f'klipper_moonraker_version_info{{version="{info["moonraker_version"]}"}}'] == 1
    assert found[f'klipper_api_version_info{{version="{info["api_version_string"]}"}}'] == 1
    # This host has no CPU temperature sensor: the family is absent, not 0.
    if "cpu_temp" not in str(moonraker.get("/machine/proc_stats").json()):
        assert "klipper_system_cpu_temp" not in found


def test_websocket_count_is_real(printer):
    _, moonraker = printer
    before = scrape(moonraker, "process")["klipper_moonraker_websocket_connections"]
    sock = socket.create_connection((moonraker.host, moonraker.port), timeout=5)
    try:
        sock.sendall(b"GET /websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        assert b"101" in sock.recv(1024).split(b"\r\n", 1)[0]
        wait_metrics(moonraker, lambda s: s["klipper_moonraker_websocket_connections"]
                     == before + 1, modules="process")
    finally:
        sock.close()
    wait_metrics(moonraker, lambda s: s["klipper_moonraker_websocket_connections"] == before,
                 modules="process")


def test_power_device_switches_and_metrics_follow(printer):
    """Runs before the prints: after a print the toolhead's print time can lie seconds
    ahead, and a SET_PIN after it takes effect later than Moonraker's 1 s power-device
    timeout."""
    _, moonraker = printer
    wait_metrics(moonraker, lambda s: 'klipper_power_device_status{device="relay"}' in s,
                 modules="power")
    found = scrape(moonraker, "device_power")
    assert found['klipper_power_device_info{device="relay",type="klipper_device"}'] == 1.0
    for action, value in (("on", 1.0), ("off", 0.0)):
        r = moonraker.post("/machine/device_power/device",
                           params={"device": "relay", "action": action})
        assert r.status == 200, r.text
        found = wait_metrics(moonraker, lambda s: s.get(
            'klipper_power_device_status{device="relay"}') == value, modules="power,printer")
        assert found[f'klipper_power_device_state_info{{device="relay",state="{action}"}}'] == 1
        assert found['klipper_output_pin_value{pin="power_relay"}'] == value


def outcome(found: Dict[str, float], status: str) -> float:
    return found.get(f'klipper_history_jobs_total{{status="{status}"}}', 0.0)


def skip_unless_paused_prints_are_recorded(moonraker: Moonraker) -> None:
    """The PAUSE comes before Moonraker's first status update of the print: Moonraker 0.10
    and later infer the job's start, 0.9 records no job (the Moonraker 0.9.3 leg)."""
    version = moonraker.server_info()["moonraker_version"].lstrip("v").split(".")
    if tuple(int(v) for v in version[:2]) < (0, 10):
        pytest.skip("Moonraker before 0.10 records no job it never saw printing")


def start_paused_print(klippy: Klippy, moonraker: Moonraker) -> Dict[str, float]:
    skip_unless_paused_prints_are_recorded(moonraker)
    r = moonraker.post("/printer/print/start", params={"filename": PAUSE_FILE})
    assert r.status == 200, r.text
    assert klippy.wait_status("print_stats", "state", "paused", timeout=10) == "paused"
    return wait_metrics(moonraker, lambda s: any(
        k.startswith("klipper_current_job_info{") for k in s), modules="history")


def test_completed_and_cancelled_prints_move_outcomes_and_totals(printer):
    klippy, moonraker = printer
    before = wait_metrics(moonraker, lambda s: 'klipper_history_jobs_total{status="completed"}'
                          in s, modules="history")
    assert outcome(before, "completed") == 0.0  # known zero, not absent
    assert not any(k.startswith("klipper_current_") for k in before)  # no job: absent

    during = start_paused_print(klippy, moonraker)
    assert f'klipper_current_job_info{{filename="{PAUSE_FILE}",job_id="' in "".join(during)
    assert "klipper_current_print_total_duration" in during
    assert "klipper_current_job_start_timestamp_seconds" in during
    assert abs(during["klipper_current_job_start_timestamp_seconds"] - time.time()) < 60
    # The hand-written file carries no slicer metadata Moonraker understands: absent, not 0.
    metadata = moonraker.get("/server/files/metadata", {"filename": PAUSE_FILE}).json()
    if "layer_height" not in metadata.get("result", {}):
        assert "klipper_current_print_layer_height" not in during
    if "estimated_time" not in metadata.get("result", {}):
        assert "klipper_current_job_remaining_seconds" not in during

    assert moonraker.post("/printer/print/resume").status == 200
    # the rest of the file runs in real time on the simulated MCUs
    done = wait_metrics(moonraker, lambda s: outcome(s, "completed") == outcome(
        before, "completed") + 1, timeout=90.0, modules="history")
    assert done["klipper_total_jobs"] == before["klipper_total_jobs"] + 1
    assert done["klipper_total_filament_used"] > before["klipper_total_filament_used"]
    assert done["klipper_longest_job"] > 0

    start_paused_print(klippy, moonraker)
    assert moonraker.post("/printer/print/cancel").status == 200
    cancelled = wait_metrics(moonraker, lambda s: outcome(s, "cancelled") == outcome(
        before, "cancelled") + 1 and not any(k.startswith("klipper_current_job_info") for k in s),
        modules="history")
    assert cancelled["klipper_total_jobs"] == before["klipper_total_jobs"] + 2
    assert outcome(cancelled, "completed") == outcome(before, "completed") + 1
    totals = moonraker.get("/server/history/totals").json()["result"]["job_totals"]
    assert cancelled["klipper_total_jobs"] == totals["total_jobs"]
    assert cancelled["klipper_total_filament_used"] == pytest.approx(
        totals["total_filament_used"])


def test_outcome_counters_survive_a_moonraker_restart(printer):
    klippy, moonraker = printer
    skip_unless_paused_prints_are_recorded(moonraker)  # the job of the test above
    before = wait_metrics(moonraker, lambda s: outcome(s, "completed") >= 1, modules="history")
    moonraker.stop()
    moonraker.start()
    settle(moonraker)
    after = wait_metrics(moonraker, lambda s: 'klipper_history_jobs_total{status="completed"}'
                         in s, modules="history")
    for status in ("completed", "cancelled"):
        assert outcome(after, status) == outcome(before, status)
    assert after["klipper_total_jobs"] == before["klipper_total_jobs"]


def test_queued_job_shows_in_queue_metrics(printer):
    _, moonraker = printer
    assert moonraker.post("/server/job_queue/pause").status == 200
    r = moonraker.post("/server/job_queue/job", params={"filenames": QUICK_FILE})
    assert r.status == 200, r.text
    job_id = r.json()["result"]["queued_jobs"][0]["job_id"]
    found = wait_metrics(moonraker, lambda s: s["klipper_job_queue_length"] == 1,
                         modules="job_queue")
    assert found['klipper_job_queue_state_info{state="paused"}'] == 1.0
    key = f'klipper_job_queue_job_info{{position="0",job_id="{job_id}",filename="{QUICK_FILE}"}}'
    assert found[key] == 1.0
    added = found[f'klipper_job_queue_job_added_timestamp_seconds{{job_id="{job_id}"}}']
    assert abs(added - time.time()) < 60
    r = moonraker.request("DELETE", "/server/job_queue/job", params={"all": "true"})
    assert r.status == 200, r.text
    found = wait_metrics(moonraker, lambda s: s["klipper_job_queue_length"] == 0,
                         modules="jobs")
    assert not any(k.startswith("klipper_job_queue_job_info") for k in found)


def test_moonraker_sensor_values_appear(printer, mqtt):
    _, moonraker = printer
    found = wait_metrics(moonraker, lambda s: any(
        k.startswith("klipper_moonraker_sensor_info{") for k in s), modules="sensors")
    assert found['klipper_moonraker_sensor_info{sensor="room",friendly_name="Room climate",'
                 'type="mqtt"}'] == 1.0
    assert found['klipper_moonraker_sensor_parameter_info{sensor="room",parameter="humidity",'
                 'units="%"}'] == 1.0
    # No message yet: no value (not 0).
    assert not any(k.startswith("klipper_moonraker_sensor_value") for k in found)
    deadline = time.monotonic() + 10
    while not mqtt.subscribed("test/room/state"):
        assert time.monotonic() < deadline, "Moonraker never subscribed to the sensor topic"
        time.sleep(0.1)
    mqtt.publish("test/room/state", b'{"temperature": 21.5, "humidity": 40}')
    found = wait_metrics(moonraker, lambda s: s.get(
        'klipper_moonraker_sensor_value{sensor="room",parameter="temperature"}') == 21.5,
        modules="sensors")
    assert found['klipper_moonraker_sensor_value{sensor="room",parameter="humidity"}'] == 40.0


def test_spoolman_connection_active_spool_and_spool_list(printer, spoolman):
    _, moonraker = printer
    found = wait_metrics(moonraker, lambda s: s.get("klipper_spoolman_connected") == 1.0 and
                         s.get("klipper_spoolman_spool_list_fetch_success") == 1.0,
                         modules="spoolman")
    assert found["klipper_spoolman_active_spool_id"] == -1.0
    assert found["klipper_spoolman_pending_reports"] == 0.0
    assert found['klipper_spoolman_spool_info{spool_id="1",filament_name="Galaxy Black",'
                 'material="PLA",color="1A1A1A",vendor="Prusament"}'] == 1.0
    assert found['klipper_spoolman_spool_info{spool_id="7",filament_name="Hot \\"Pink\\"",'
                 'material="PETG",color="FF69B4",vendor=""}'] == 1.0
    assert found['klipper_spoolman_remaining_weight{spool_id="1"}'] == 750.5
    assert found['klipper_spoolman_used_weight{spool_id="1"}'] == 249.5
    assert found['klipper_spoolman_remaining_length{spool_id="1"}'] == 251600.0
    assert found['klipper_spoolman_used_length{spool_id="1"}'] == 83640.0
    # Spoolman does not know spool 7's weight: absent, not 0.
    assert 'klipper_spoolman_remaining_weight{spool_id="7"}' not in found
    assert 'klipper_spoolman_remaining_length{spool_id="7"}' not in found
    assert found['klipper_spoolman_used_weight{spool_id="7"}'] == 0.0
    assert found["klipper_spoolman_spool_list_age_seconds"] < 60

    r = moonraker.post("/server/spoolman/spool_id", params={"spool_id": 1})
    assert r.status == 200, r.text
    wait_metrics(moonraker, lambda s: s["klipper_spoolman_active_spool_id"] == 1.0,
                 modules="spoolman")
    r = moonraker.post("/server/spoolman/spool_id")  # no spool_id: no active spool
    assert r.status == 200, r.text
    wait_metrics(moonraker, lambda s: s["klipper_spoolman_active_spool_id"] == -1.0,
                 modules="spoolman")


def test_spoolman_going_away_shows_as_stale(printer, spoolman):
    """Run last in this module: it stops the Spoolman stand-in."""
    _, moonraker = printer
    wait_metrics(moonraker, lambda s: s.get("klipper_spoolman_spool_list_fetch_success") == 1,
                 modules="spoolman")
    spoolman.stop()
    found = wait_metrics(moonraker, lambda s: s.get("klipper_spoolman_connected") == 0.0 and
                         s.get("klipper_spoolman_spool_list_fetch_success") == 0.0,
                         modules="spoolman")
    first_age = found["klipper_spoolman_spool_list_age_seconds"]
    # The last good list stays (with its age) until it is 10 minutes old.
    assert found['klipper_spoolman_remaining_weight{spool_id="1"}'] == 750.5
    time.sleep(1.0)
    later = scrape(moonraker, "spoolman")
    assert later["klipper_spoolman_spool_list_age_seconds"] >= first_age + 0.9


def test_go_module_names_select_these_collectors(printer):
    _, moonraker = printer
    body = moonraker.metrics(params={
        "modules": "process_stats,network_stats,system_info,server_info,job_queue,"
                   "directory_info,history,device_power,spoolman"}).text
    for name in ("klipper_moonraker_cpu_usage", "klipper_network_rx_bytes",
                 "klipper_system_cpu_count", "klipper_component_info",
                 "klipper_job_queue_length", "klipper_disk_usage_total", "klipper_total_jobs",
                 "klipper_power_device_info", "klipper_spoolman_connected"):
        assert f"\n{name}" in body, name
    assert "klipper_extruder_temperature" not in body


def test_whole_output_passes_promtool(printer, promtool_check):
    _, moonraker = printer
    promtool_check(moonraker.metrics().text)


def test_update_manager_state_is_read_not_refreshed(make_moonraker):
    moonraker = make_moonraker(None, extra_config="[update_manager]\nenable_auto_refresh: False\n")
    found = wait_metrics(moonraker, lambda s: any(
        k.startswith('klipper_update_manager_component_info{component="moonraker"') for k in s)
        and 'klipper_update_manager_last_refresh_timestamp_seconds{component="moonraker"}' in s,
        timeout=30, modules="updates")
    status = moonraker.get("/machine/update/status").json()["result"]["version_info"]
    mr = status["moonraker"]
    key = next(k for k in found if k.startswith("klipper_update_manager_component_info"
                                                '{component="moonraker"'))
    assert f'version="{mr["version"]}"' in key
    refreshed = {k: v for k, v in found.items() if "last_refresh_timestamp" in k}
    for _ in range(5):
        again = scrape(moonraker, "updates")
        assert {k: v for k, v in again.items() if "last_refresh_timestamp" in k} == refreshed
    if "package_count" in status.get("system", {}):
        assert found["klipper_update_manager_system_packages_upgradable"] == \
            status["system"]["package_count"]
