"""The live simulated printer: real Klippy in its normal mode against the simulated MCUs
(simulator/firmware.py) through ``serial:``, real Moonraker with the component.

Temperatures, heater power, MCU link statistics, host statistics, homing, probing and a
real multi-layer print are produced by Klippy from real protocol traffic; each injected
fault ends in the message Klippy gives on real hardware, and the metrics show it.
"""
from __future__ import annotations

import time
from typing import Callable, Dict

import pytest
from tests.promtool import assert_promtool_clean
from tests.scrape import Series, parse, value

PRINT_FILE = "cube_5_layers.gcode"


def scrape(moonraker) -> Series:
    response = moonraker.metrics()
    assert response.status == 200, response.text
    assert_promtool_clean(response.text)
    return parse(response.text)


def samples(series: Series, family: str) -> Dict[tuple, float]:
    return {labels: v for (name, labels), v in series.items() if name == family}


def poll(moonraker, check: Callable[[Series], bool], timeout: float, what: str) -> Series:
    deadline = time.monotonic() + timeout
    while True:
        series = scrape(moonraker)
        if check(series):
            return series
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(0.25)


@pytest.fixture(scope="module")
def live(shared_klippy, shared_moonraker):
    poll(shared_moonraker, lambda s: value(s, "klipper_webhooks_state_info", state="ready")
         == 1.0, 30, "printer series")
    return shared_klippy, shared_moonraker


def test_ready_on_simulated_mcus_and_stays_ready(live):
    klippy, moonraker = live
    assert klippy.live and [m.name for m in klippy.mcus] == ["mcu", "toolboard"]
    time.sleep(6)  # past the firmware's first 5 s stats report
    assert klippy.info()["state"] == "ready"
    status = klippy.query(["mcu", "mcu toolboard", "system_stats"])
    for name, freq in (("mcu", 400e6), ("mcu toolboard", 12e6)):
        stats = status[name]["last_stats"]
        assert abs(stats["freq"] - freq) / freq < 0.01, stats
        assert 0 < stats["mcu_awake"] < 1 and stats["mcu_task_avg"] > 0, stats
        assert stats["send_seq"] > 50 and stats["receive_seq"] > 50, stats
    system = status["system_stats"]
    assert system["sysload"] > 0 and system["cputime"] > 0 and system["memavail"] > 0
    series = scrape(moonraker)
    awake = samples(series, "klipper_mcu_awake")
    assert set(dict(k)["mcu"] for k in awake) == {"mcu", "toolboard"}
    assert all(0 < v < 1 for v in awake.values()), awake
    assert all(v > 0 for v in samples(series, "klipper_mcu_read_bytes").values())
    assert value(series, "klipper_klippy_cpu_seconds_total") > 0
    assert value(series, "klipper_klippy_host_memory_available_bytes") > 0


def test_sensors_report_plausible_live_temperatures(live):
    klippy, moonraker = live
    series = scrape(moonraker)
    temps = samples(series, "klipper_temperature_sensor_temperature")
    assert len(temps) >= 8, temps
    for labels, v in temps.items():
        assert 15 < v < 60, (labels, v)
    lows = samples(series, "klipper_temperature_sensor_measured_min_temp")
    highs = samples(series, "klipper_temperature_sensor_measured_max_temp")
    assert lows and all(15 < v < 60 for v in lows.values()), lows
    assert all(highs[k] >= lows[k] for k in lows)
    env = klippy.query("bme280 enclosure_env")["bme280 enclosure_env"]
    assert 15 < env["temperature"] < 40 and 900 < env["pressure"] < 1100
    assert 20 < env["humidity"] < 70


@pytest.mark.timeout(300)
def test_m109_s200_and_m190_s60_complete(live):
    klippy, moonraker = live
    start = time.monotonic()
    klippy.script("M140 S60\nM109 S200\nM190 S60", timeout=240)
    took = time.monotonic() - start
    status = klippy.query(["extruder", "heater_bed"])
    assert abs(status["extruder"]["temperature"] - 200) < 3, status
    assert status["heater_bed"]["temperature"] > 58, status
    assert took > 10, "heating took %.1fs: temperatures did not come from physics" % took
    series = poll(moonraker, lambda s: 190 < (value(s, "klipper_extruder_temperature",
                                                    extruder="extruder") or 0) < 210,
                  5, "extruder temperature in the metrics")
    # holding 200 degC takes a fraction of the heater's power
    assert 0 < value(series, "klipper_extruder_power", extruder="extruder") < 1
    # the heaters stay on: the print below starts hot


def test_fan_tachometer_reports_rpm(live):
    klippy, moonraker = live
    klippy.script("M106 S255\nG4 P1500")
    # the simulated fan spins at 3000 rpm at full speed
    series = poll(moonraker, lambda s: 2800 < (value(s, "klipper_fan_rpm") or 0) < 3200, 10,
                  "fan rpm from the tachometer")
    assert value(series, "klipper_fan_speed") == 1.0
    klippy.script("M107")


def test_g28_probe_and_bed_mesh(live):
    klippy, _ = live
    klippy.script("G28", timeout=120)
    assert klippy.query("toolhead")["toolhead"]["homed_axes"] == "xyz"
    klippy.script("PROBE", timeout=60)
    z = klippy.query("probe")["probe"]["last_z_result"]
    assert -0.5 < z < 2.5, z
    klippy.script("BED_MESH_CALIBRATE", timeout=120)
    matrix = klippy.query("bed_mesh")["bed_mesh"]["probed_matrix"]
    flat = [v for row in matrix for v in row]
    assert len(flat) == 9 and max(flat) - min(flat) > 0.01, matrix  # the bed is bowed


@pytest.mark.timeout(500)
def test_print_of_a_multi_layer_file_runs_to_complete(live):
    klippy, moonraker = live
    klippy.gcode("SDCARD_PRINT_FILE FILENAME=%s" % PRINT_FILE)
    progress, layers, filament = set(), set(), set()
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        series = scrape(moonraker)
        p = samples(series, "klipper_print_file_progress")
        if p:
            progress.add(round(list(p.values())[0], 3))
        layer = value(series, "klipper_print_current_layer")
        if layer is not None:
            layers.add(layer)
        used = value(series, "klipper_print_filament_used")
        if used is not None:
            filament.add(round(used, 1))
        if klippy.query("print_stats")["print_stats"]["state"] in ("complete", "error",
                                                                  "cancelled"):
            break
        time.sleep(1)
    stats = klippy.query("print_stats")["print_stats"]
    assert stats["state"] == "complete", stats
    assert len([p for p in progress if 0 < p < 1]) >= 3, progress
    assert {1.0, 2.0, 3.0} <= layers, layers
    assert len([f for f in filament if f > 0]) >= 3, filament
    assert stats["filament_used"] > 100  # the file extrudes about 112 mm
    klippy.script("M104 S0\nM140 S0")


FAULTS = [
    pytest.param({"fault": "mute"}, None, "Lost communication with MCU 'mcu'", id="mute"),
    pytest.param({"fault": "open", "sensor": "extruder"}, None,
                 "MCU 'mcu' shutdown: ADC out of range", id="thermistor-open"),
    pytest.param({"fault": "short", "sensor": "heater_bed"}, None,
                 "MCU 'mcu' shutdown: ADC out of range", id="thermistor-short"),
    pytest.param({"fault": "late", "seconds": 0.3}, None,
                 "MCU 'mcu' shutdown: Timer too close", id="late"),
    pytest.param({"fault": "heater_disconnect", "heater": "extruder"}, "M104 S200",
                 "Heater extruder not heating at expected rate", id="heater-disconnect"),
]


@pytest.mark.parametrize("fault,before,message", FAULTS)
def test_injected_fault_ends_in_klippys_own_message(make_klippy, make_moonraker, fault,
                                                   before, message):
    klippy = make_klippy()
    moonraker = make_moonraker(klippy)
    poll(moonraker, lambda s: value(s, "klipper_webhooks_state_info", state="ready") == 1.0,
         30, "printer series")
    if before:
        klippy.script(before)
    klippy.mcu("mcu").control(op="fault", **fault)
    klippy.wait_ready(timeout=60, state="shutdown")
    assert klippy.info()["state_message"].startswith(message), klippy.info()
    series = poll(moonraker, lambda s: value(s, "klipper_klippy_state_info",
                                             state="shutdown") == 1.0, 10, "shutdown state")
    messages = [dict(k)["message"] for k in samples(series, "klipper_klippy_state_message_info")]
    assert any(m.startswith(message) for m in messages), messages


def test_corrupted_link_raises_retransmits_and_stays_ready(make_klippy, make_moonraker):
    klippy = make_klippy()
    moonraker = make_moonraker(klippy)
    series = poll(moonraker, lambda s: samples(s, "klipper_mcu_retransmit_bytes"), 30,
                  "retransmit counters")
    before = value(series, "klipper_mcu_retransmit_bytes", mcu="mcu")
    klippy.mcu("mcu").control(op="fault", fault="corrupt", rate=0.3)
    poll(moonraker, lambda s: (value(s, "klipper_mcu_retransmit_bytes", mcu="mcu") or 0)
         > before + 50, 20, "retransmitted bytes to rise")
    klippy.mcu("mcu").control(op="clear")
    time.sleep(2)
    assert klippy.info()["state"] == "ready"
