"""Printer metrics on real Klippy + real Moonraker with the rich simulated printer.

One Klippy and one Moonraker serve the whole module (module-scoped fixtures); the tests
that shut Klippy down and restart it run last. G-code goes to Klippy's pty and the next
scrapes are polled for up to ~2 s (Klippy pushes subscribed state every 250 ms).
"""
from __future__ import annotations

import time
from typing import Callable, Tuple

import pytest
from tests.promtool import assert_promtool_clean
from tests.scrape import Series, parse, value

ODD_SENSOR = "Électronique bay 2"
ADDED_OBJECT = 'added "later" \\ ü'  # quotes, backslash, non-ASCII: all kept as they are


def names(series: Series) -> set:
    return {name for name, _ in series}


def scrape(moonraker, **params) -> Tuple[str, Series]:
    response = moonraker.metrics(params=params or None)
    assert response.status == 200, response.text
    return response.text, parse(response.text)


def poll(moonraker, check: Callable[[Series], bool], timeout: float = 2.5,
         what: str = "condition") -> Series:
    """Scrape until `check` holds; the body that satisfied it must pass promtool."""
    deadline = time.monotonic() + timeout
    series: Series = {}
    while True:
        body, series = scrape(moonraker)
        if check(series):
            assert_promtool_clean(body)
            return series
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_printer_series(moonraker, timeout: float = 30.0) -> Series:
    """Moonraker reports ready a moment before the component's subscription answers."""
    return poll(moonraker, lambda s: value(s, "klipper_webhooks_state_info", state="ready")
                == 1.0, timeout=timeout, what="printer series after Klippy ready")


@pytest.fixture(scope="module")
def printer(shared_klippy, shared_moonraker):
    wait_printer_series(shared_moonraker)
    return shared_klippy, shared_moonraker


def test_every_instance_of_every_kind_is_exported(printer):
    _, moonraker = printer
    body, series = scrape(moonraker)
    assert_promtool_clean(body)
    expect = [
        ("klipper_extruder_target", {"extruder": "extruder"}),
        ("klipper_extruder_target", {"extruder": "extruder1"}),
        ("klipper_heater_bed_target", {}),
        ("klipper_fan_speed", {}),
        ("klipper_heater_fan_speed", {"fan": "hotend_fan"}),
        ("klipper_heater_fan_speed", {"fan": "hotend1_fan"}),
        ("klipper_controller_fan_speed", {"fan": "electronics_fan"}),
        ("klipper_controller_fan_speed", {"fan": "toolboard_fan"}),
        ("klipper_generic_fan_speed", {"fan": "exhaust_fan"}),
        ("klipper_generic_fan_speed", {"fan": "nevermore"}),
        ("klipper_temperature_fan_target", {"fan": "chamber_fan"}),
        ("klipper_temperature_fan_target", {"fan": "mcu_fan"}),
        ("klipper_output_pin_value", {"pin": "power_relay"}),
        ("klipper_output_pin_value", {"pin": "toolboard_led"}),
        ("klipper_filament_sensor_detected", {"sensor": "runout"}),
        ("klipper_filament_sensor_enabled", {"sensor": "encoder"}),
        ("klipper_tmc_sensor_run_current", {"sensor": "tmc2209_stepper_x"}),
        ("klipper_tmc_hold_current_amperes", {"sensor": "tmc2209_stepper_y"}),
        ("klipper_stepper_enabled", {"stepper": "stepper_z1"}),
        ("klipper_toolhead_axis_maximum_meters", {"axis": "x"}),
        ("klipper_gcode_homing_origin_meters", {"axis": "z"}),
        ("klipper_motion_report_live_velocity_meters_per_second", {}),
        ("klipper_z_tilt_applied", {}),
        ("klipper_probe_info", {"name": "probe"}),
        ("klipper_input_shaper_type_info", {"axis": "x", "type": "mzv"}),
        ("klipper_input_shaper_type_info", {"axis": "y", "type": "ei"}),
        ("klipper_webhooks_state_info", {"state": "ready"}),
        ("klipper_print_state_info", {"state": "standby"}),
    ]
    missing = [(n, lab) for n, lab in expect if value(series, n, **lab) is None]
    assert not missing, missing
    assert value(series, "klipper_input_shaper_frequency_x") == 52.4
    assert value(series, "klipper_input_shaper_frequency_y") == 41.8
    assert value(series, "klipper_output_pin_value", pin="caselight") == 0.5
    # every MCU, with its identity
    mcus = {dict(labels)["mcu"]: dict(labels) for name, labels in series
            if name == "klipper_mcu_info"}
    assert set(mcus) == {"mcu", "toolboard"}
    assert mcus["toolboard"]["mcu_type"] and mcus["mcu"]["version"]


def test_absent_objects_and_unreported_values_produce_no_series(printer):
    _, moonraker = printer
    _, series = scrape(moonraker)
    present = names(series)
    # no heater_generic / temperature_probe / quad_gantry_level / canbus in this printer
    for name in ("klipper_generic_heater_temperature", "klipper_temperature_probe_temperature",
                 "klipper_quad_gantry_level_applied", "klipper_canbus_rx_errors_total"):
        assert name not in present
    # only [fan] has a tachometer: the other fans' rpm is null, so no sample (never a 0)
    assert "klipper_fan_rpm" in present
    assert "klipper_generic_fan_rpm" not in present
    # no bed mesh loaded: no profile, no statistics
    assert "klipper_bed_mesh_profile_info" not in present
    assert "klipper_bed_mesh_z_range_meters" not in present
    # the simulated MCUs report every sensor: measured min/max are real readings
    lows = [v for (n, _), v in series.items() if n == "klipper_temperature_sensor_measured_min_temp"]
    assert lows and all(10 < v < 80 for v in lows), lows
    # the probe never ran: its False and 0.0 are placeholders
    assert "klipper_probe_triggered" not in present
    assert "klipper_probe_last_z_result_meters" not in present


def test_gcode_changes_appear_in_the_next_scrapes(printer):
    klippy, moonraker = printer
    klippy.gcode("\n".join([
        "M104 S205",
        "SET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=190",
        "M140 S60",
        "M106 S128",
        "SET_FAN_SPEED FAN=exhaust_fan SPEED=0.3",
        "SET_PIN PIN=caselight VALUE=0.25",
        "SET_PIN PIN=power_relay VALUE=1",
        "SET_PRESSURE_ADVANCE EXTRUDER=extruder ADVANCE=0.055 SMOOTH_TIME=0.03",
        "SET_RETRACTION RETRACT_LENGTH=1.5 RETRACT_SPEED=40 UNRETRACT_EXTRA_LENGTH=0.1",
    ]))
    wanted = {
        ("klipper_extruder_target", (("extruder", "extruder"),)): 205.0,
        ("klipper_extruder_target", (("extruder", "extruder1"),)): 190.0,
        ("klipper_heater_bed_target", ()): 60.0,
        ("klipper_fan_speed", ()): pytest.approx(128 / 255),
        ("klipper_generic_fan_speed", (("fan", "exhaust_fan"),)): 0.3,
        ("klipper_output_pin_value", (("pin", "caselight"),)): 0.25,
        ("klipper_output_pin_value", (("pin", "power_relay"),)): 1.0,
        ("klipper_extruder_pressure_advance", (("extruder", "extruder"),)): 0.055,
        ("klipper_extruder_smooth_time", (("extruder", "extruder"),)): 0.03,
        ("klipper_firmware_retract_length", ()): 1.5,
        ("klipper_firmware_retract_speed", ()): 40.0,
        ("klipper_firmware_unretract_extra_length", ()): 0.1,
    }

    def done(series: Series) -> bool:
        return all(series.get(k) == v for k, v in wanted.items())
    try:
        series = poll(moonraker, done, timeout=3.0, what="G-code changes")
    finally:
        klippy.gcode("M104 S0\nSET_HEATER_TEMPERATURE HEATER=extruder1 TARGET=0\nM140 S0\n"
                     "M107\nSET_FAN_SPEED FAN=exhaust_fan SPEED=0")
    assert value(series, "klipper_extruder_target", extruder="extruder1") == 190.0
    poll(moonraker, lambda s: value(s, "klipper_heater_bed_target") == 0.0,
         what="bed target back to 0")


def test_homed_axes_and_motion_state(printer):
    klippy, moonraker = printer
    # SET_KINEMATIC_POSITION homes without motion (G28 is tested in test_live_printer.py)
    klippy.gcode("SET_KINEMATIC_POSITION X=0 Y=0 Z=0\nG90\nG1 X50 Y60 Z10 F6000\nSET_GCODE_OFFSET Z=0.2")
    series = poll(moonraker, lambda s: value(s, "klipper_gcode_position_x") == 50.0
                  and value(s, "klipper_gcode_homing_origin_meters", axis="z") is not None
                  and value(s, "klipper_gcode_homing_origin_meters", axis="z") > 0,
                  timeout=10.0, what="homed move")
    for axis in "xyz":
        assert value(series, "klipper_toolhead_homed_axes_info", axis=axis) == 1.0
    assert value(series, "klipper_toolhead_position_meters", axis="y") == pytest.approx(0.06)
    assert value(series, "klipper_gcode_homing_origin_meters", axis="z") == pytest.approx(
        0.0002)
    assert value(series, "klipper_stepper_enabled", stepper="stepper_x") == 1.0
    klippy.gcode("SET_GCODE_OFFSET Z=0")


def test_virtual_sd_print_is_followed_to_completion(printer):
    klippy, moonraker = printer
    response = moonraker.post("/printer/print/start", params={"filename": "pause_print.gcode"})
    assert response.status == 200, response.text
    series = poll(moonraker, lambda s: value(s, "klipper_print_state_info", state="paused")
                  == 1.0 and value(s, "klipper_pause_resume_is_paused") == 1.0,
                  timeout=15.0, what="the PAUSE in pause_print.gcode")
    assert value(series, "klipper_printing") == 0.0
    assert value(series, "klipper_print_current_layer") == 1.0
    assert value(series, "klipper_print_total_layers") == 3.0
    assert value(series, "klipper_print_objects") == 2.0
    assert value(series, "klipper_print_excluded_objects") == 0.0
    assert value(series, "klipper_print_file_size_bytes") > 0
    progress = value(series, "klipper_print_file_progress")
    assert 0.0 < progress < 1.0
    assert 0.0 < value(series, "klipper_print_file_position") < value(
        series, "klipper_print_file_size_bytes")
    assert value(series, "klipper_print_gcode_progress") == pytest.approx(progress, abs=0.05)
    assert value(series, "klipper_sdcard_active") == 0.0  # paused: the SD reader stopped
    assert value(series, "klipper_print_total_duration") > 0
    body = moonraker.metrics().text
    assert_promtool_clean(body)

    response = moonraker.post("/printer/print/resume")
    assert response.status == 200, response.text
    series = poll(moonraker, lambda s: value(s, "klipper_print_state_info", state="complete")
                  == 1.0, timeout=20.0, what="print complete")
    assert value(series, "klipper_printing") == 0.0
    assert value(series, "klipper_pause_resume_is_paused") == 0.0
    assert value(series, "klipper_print_current_layer") == 3.0
    assert value(series, "klipper_print_filament_used") > 0
    assert value(series, "klipper_print_state_info", state="paused") is None


def test_module_selection_and_go_aliases(printer):
    _, moonraker = printer
    _, only_printer = scrape(moonraker, modules="printer")
    assert "klipper_extruder_target" in names(only_printer)
    assert "klipper_klippy_connected" in names(only_printer)  # the klippy module is always served
    assert "klipper_system_memory_total" not in names(only_printer)
    _, via_alias = scrape(moonraker, modules="printer_objects,temperature,query_endstops")
    assert names(via_alias) == names(only_printer)
    _, only_klippy = scrape(moonraker, modules="klippy")
    assert "klipper_extruder_target" not in names(only_klippy)
    # Go's add-on modules: accepted, and silent on a printer without MMU / CFS objects
    _, addons = scrape(moonraker, modules="mmu,cfs")
    assert not [n for n in names(addons) if n.startswith(("klipper_mmu_", "klipper_cfs_"))]
    assert value(addons, "klipper_exporter_collector_success", collector="mmu") == 1.0
    assert value(addons, "klipper_exporter_collector_success", collector="cfs") == 1.0
    assert "klipper_extruder_target" not in names(addons)
    bad = moonraker.metrics(params={"modules": "printer,nope"})
    assert bad.status == 400 and "nope" in bad.text


def test_endstops_are_read_passively(printer):
    """Endstop series exist only after someone ran QUERY_ENDSTOPS; scrapes never query."""
    klippy, moonraker = printer
    _, series = scrape(moonraker)
    before = {k: v for k, v in series.items() if k[0] == "klipper_endstop_triggered"}
    for _ in range(5):
        scrape(moonraker)
    log = klippy.log_text()
    assert "QUERY_ENDSTOPS" not in log or before  # our scrapes ran no query
    klippy.gcode("QUERY_ENDSTOPS")  # answered once the motion queued before it has run
    series = poll(moonraker, lambda s: any(k[0] == "klipper_endstop_triggered" for k in s),
                  timeout=15.0, what="endstop series after QUERY_ENDSTOPS")
    endstops = {dict(k[1])["endstop"] for k in series if k[0] == "klipper_endstop_triggered"}
    assert {"x", "y"} <= endstops


def test_shutdown_removes_printer_series_and_says_why(printer):
    klippy, moonraker = printer
    klippy.gcode("M112")
    series = poll(moonraker, lambda s: value(s, "klipper_klippy_state_info", state="shutdown")
                  == 1.0, timeout=5.0, what="shutdown state")
    assert "klipper_extruder_temperature" not in names(series)
    assert "klipper_webhooks_state_info" not in names(series)
    assert value(series, "klipper_klippy_connected") == 1.0
    messages = [dict(k[1])["message"] for k in series
                if k[0] == "klipper_klippy_state_message_info"]
    assert messages and "M112" in messages[0]
    body = moonraker.metrics().text
    assert_promtool_clean(body)


def test_firmware_restart_discovers_a_new_object(printer):
    klippy, moonraker = printer
    # a fan: its speed is real in batch mode, where no sensor ever reads a temperature
    klippy.write_config(extra_config=f"[fan_generic {ADDED_OBJECT}]\npin: PG5\n")
    klippy.gcode("FIRMWARE_RESTART")
    series = poll(moonraker, lambda s: value(s, "klipper_generic_fan_speed",
                                             fan=ADDED_OBJECT) is not None,
                  timeout=25.0, what="the fan added to printer.cfg")
    assert value(series, "klipper_klippy_state_info", state="ready") == 1.0
    assert value(series, "klipper_generic_fan_speed", fan="nevermore") is not None
    body = moonraker.metrics().text
    assert 'fan="added \\"later\\" \\\\ ü"' in body
    assert_promtool_clean(body)
    # and the subscription is live again after the restart
    klippy.gcode("M140 S33")
    poll(moonraker, lambda s: value(s, "klipper_heater_bed_target") == 33.0,
         what="bed target after restart")
    klippy.gcode("M140 S0")


def test_klippy_gone_removes_printer_series_and_says_so(printer):
    """Runs last: Klippy's process ends; printer series go, connection metrics stay."""
    klippy, moonraker = printer
    klippy.stop()
    series = poll(moonraker, lambda s: value(s, "klipper_klippy_connected") == 0.0,
                  timeout=10.0, what="Moonraker noticing Klippy is gone")
    assert not [n for n in names(series) if n.startswith(("klipper_extruder_",
                                                          "klipper_webhooks_", "klipper_mcu_",
                                                          "klipper_toolhead_"))]
    assert value(series, "klipper_klippy_state_info", state="disconnected") == 1.0
