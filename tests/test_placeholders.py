"""A value Klipper fills in before it measured anything is absent, never exported as real.

Each object kind the catalogue reads gets Klippy's (and Kalico's: same values) status as it
stands right after Klippy starts, taken from the sources (klippy/extras/*.py `__init__`
and `get_status`), and the families a placeholder would feed must have no sample; the same
object with real values must have one. Kinds whose every field is real from the start
(fans, pins, stepper_enable, filament sensors, print_stats, virtual_sdcard, idle_timeout,
pause_resume, exclude_object, bed_mesh with no mesh, configfile, webhooks, tmc, z_tilt,
quad_gantry_level) are covered by the collector and integration tests.
"""
from __future__ import annotations

from typing import Any, Dict

import pytest

from moonraker_prometheus.catalogue.printer import BINDINGS
from moonraker_prometheus.collectors.printer import Plan, PrinterState
from tests.scrape import parse, value

pytestmark = pytest.mark.unit

ZERO4 = [0.0, 0.0, 0.0, 0.0]

# Klippy right after start: (object, initial status, real status, families the initial
# status must not feed, with their labels)
CASES = [
    # heaters.py: last_temp = smoothed_temp = target_temp = 0.
    ("extruder", {"temperature": 0.0, "target": 0.0, "power": 0.0},
     {"temperature": 21.3, "target": 0.0, "power": 0.0},
     [("klipper_extruder_temperature", {"extruder": "extruder"})]),
    ("heater_bed", {"temperature": 0.0, "target": 0.0, "power": 0.0},
     {"temperature": -4.5, "target": 0.0, "power": 0.0},
     [("klipper_heater_bed_temperature", {})]),
    ("heater_generic chamber", {"temperature": 0.0, "target": 0.0, "power": 0.0},
     {"temperature": 30.0, "target": 0.0, "power": 0.0},
     [("klipper_generic_heater_temperature", {"heater": "chamber"})]),
    # temperature_sensor.py: last_temp = 0., measured_min = 99999999., measured_max = 0.
    ("temperature_sensor chamber",
     {"temperature": 0.0, "measured_min_temp": 99999999.0, "measured_max_temp": 0.0},
     {"temperature": 25.0, "measured_min_temp": 24.0, "measured_max_temp": 26.0},
     [("klipper_temperature_sensor_temperature", {"sensor": "chamber"}),
      ("klipper_temperature_sensor_measured_min_temp", {"sensor": "chamber"}),
      ("klipper_temperature_sensor_measured_max_temp", {"sensor": "chamber"})]),
    # temperature_fan.py: last_temp = 0.
    ("temperature_fan chamber_fan", {"temperature": 0.0, "target": 40.0, "speed": 0.0,
                                     "rpm": None},
     {"temperature": 35.0, "target": 40.0, "speed": 0.0, "rpm": None},
     [("klipper_temperature_fan_temperature", {"fan": "chamber_fan"})]),
    # temperature_host.py, temperature_combined.py, lm75.py: temp = 0.0
    ("temperature_host pi", {"temperature": 0.0}, {"temperature": 48.2},
     [("klipper_temperature_host_temperature_celsius", {"sensor": "pi"})]),
    ("temperature_combined hotends", {"temperature": 0.0}, {"temperature": 200.0},
     [("klipper_temperature_combined_temperature_celsius", {"sensor": "hotends"})]),
    ("lm75 board", {"temperature": 0.0}, {"temperature": 31.0},
     [("klipper_lm75_temperature_celsius", {"sensor": "board"})]),
    # bme280.py: temp = pressure = humidity = gas = 0. (and again after a failed read)
    ("bme280 env", {"temperature": 0.0, "pressure": 0.0, "humidity": 0.0, "gas": 0.0},
     {"temperature": 22.0, "pressure": 1013.2, "humidity": 45.0, "gas": 51234.0},
     [("klipper_sensor_relative_humidity_ratio", {"sensor": "env"}),
      ("klipper_sensor_pressure_pascals", {"sensor": "env"}),
      ("klipper_sensor_gas_resistance_ohms", {"sensor": "env"})]),
    # htu21d.py, aht10.py (and Kalico's sht3x.py): temp = humidity = 0.
    ("htu21d h", {"temperature": 0.0, "humidity": 0.0}, {"temperature": 21.0, "humidity": 40.0},
     [("klipper_sensor_relative_humidity_ratio", {"sensor": "h"})]),
    ("aht10 a", {"temperature": 0.0, "humidity": 0.0}, {"temperature": 21.0, "humidity": 40.0},
     [("klipper_sensor_relative_humidity_ratio", {"sensor": "a"})]),
    ("sht3x s", {"temperature": 0.0, "humidity": 0.0}, {"temperature": 21.0, "humidity": 40.0},
     [("klipper_sensor_relative_humidity_ratio", {"sensor": "s"})]),
    # z_thermal_adjust.py: measured_min = measured_max = smoothed_temp = ref_temperature = 0.
    # (measured_min = min(0, readings): real only below 0)
    ("z_thermal_adjust",
     {"temperature": 0.0, "measured_min_temp": 0.0, "measured_max_temp": 0.0,
      "current_z_adjust": 0.0, "z_adjust_ref_temperature": 0.0, "enabled": True},
     {"temperature": 24.0, "measured_min_temp": -1.5, "measured_max_temp": 24.5,
      "current_z_adjust": 0.0, "z_adjust_ref_temperature": 23.0, "enabled": True},
     [("klipper_z_thermal_adjust_temperature_celsius", {}),
      ("klipper_z_thermal_adjust_measured_min_temperature_celsius", {}),
      ("klipper_z_thermal_adjust_measured_max_temperature_celsius", {}),
      ("klipper_z_thermal_adjust_reference_temperature_celsius", {})]),
    # mcu.py: _mcu_tick_awake = _mcu_tick_avg = _mcu_tick_stddev = 0. until the MCU's first
    # stats message; last_stats exists from Klippy's first 1 s stats run
    ("mcu", {"last_stats": {"mcu_awake": 0.0, "mcu_task_avg": 0.0, "mcu_task_stddev": 0.0,
                            "bytes_write": 120, "freq": 16000000}},
     {"last_stats": {"mcu_awake": 0.005, "mcu_task_avg": 0.00001, "mcu_task_stddev": 0.0,
                     "bytes_write": 4000, "freq": 16000012}},
     [("klipper_mcu_awake", {"mcu": "mcu"}), ("klipper_mcu_task_avg", {"mcu": "mcu"}),
      ("klipper_mcu_task_stddev", {"mcu": "mcu"}), ("klipper_mcu_load_ratio", {"mcu": "mcu"}),
      ("klipper_mcu_awake_ratio", {"mcu": "mcu"})]),
    # Kalico canbus_stats.py: every field None until the first query
    ("canbus_stats can0", {"rx_error": None, "tx_error": None, "tx_retries": None,
                           "bus_state": None},
     {"rx_error": 0, "tx_error": 1, "tx_retries": 2, "bus_state": "active"},
     [("klipper_canbus_rx_errors_total", {"mcu": "can0"}),
      ("klipper_canbus_bus_state_info", {"mcu": "can0", "state": "active"})]),
    # probe.py: last_state = False, last_z_result = 0.
    ("probe", {"name": "probe", "last_query": False, "last_z_result": 0.0},
     {"name": "probe", "last_query": False, "last_z_result": 0.125},
     [("klipper_probe_triggered", {}), ("klipper_probe_last_z_result_meters", {})]),
    # statistics.py: sysload = cputime = memavail = 0 before the first 1 s run
    ("system_stats", {"sysload": 0.0, "cputime": 0.0, "memavail": 0},
     {"sysload": 0.5, "cputime": 1.2, "memavail": 1000},
     [("klipper_klippy_host_load1", {}), ("klipper_klippy_cpu_seconds_total", {}),
      ("klipper_klippy_host_memory_available_bytes", {})]),
]

# toolhead.py, gcode_move.py, motion_report.py: an axis Klipper has not homed is at 0.
UNHOMED = {
    "toolhead": {"homed_axes": "", "position": ZERO4},
    "gcode_move": {"gcode_position": ZERO4, "homing_origin": ZERO4},
    "motion_report": {"live_position": ZERO4, "live_velocity": 0.0},
}
POSITIONS = [
    ("klipper_toolhead_position_meters", {"axis": "x"}),
    ("klipper_motion_report_live_position_meters", {"axis": "y"}),
    ("klipper_gcode_position_x", {}), ("klipper_gcode_position_z", {}),
]


def render(status: Dict[str, Any]):
    return parse(PrinterState(Plan(list(status), BINDINGS), status).render())


@pytest.mark.parametrize("obj,initial,real,families", CASES, ids=[c[0] for c in CASES])
def test_klippys_initial_values_are_absent_until_real(obj, initial, real, families):
    before = render({obj: initial})
    present = [(name, labels) for name, labels in families
               if value(before, name, **labels) is not None]
    assert not present, f"placeholders exported as values: {present}"
    after = render({obj: real})
    missing = [(name, labels) for name, labels in families
               if value(after, name, **labels) is None]
    assert not missing, f"real values not exported: {missing}"


def test_real_zero_targets_and_speeds_stay():
    series = render({"extruder": {"temperature": 0.0, "target": 0.0, "power": 0.0},
                     "fan": {"speed": 0.0, "rpm": None}})
    assert value(series, "klipper_extruder_target", extruder="extruder") == 0.0
    assert value(series, "klipper_extruder_power", extruder="extruder") == 0.0
    assert value(series, "klipper_fan_speed") == 0.0


def test_positions_of_unhomed_axes_are_absent_and_appear_once_homed():
    status = {obj: dict(fields) for obj, fields in UNHOMED.items()}
    state = PrinterState(Plan(list(status), BINDINGS), status)
    series = parse(state.render())
    assert [p for p in POSITIONS if value(series, p[0], **p[1]) is not None] == []
    # e needs no homing; the G-code offset is real from the start
    assert value(series, "klipper_toolhead_position_meters", axis="e") == 0.0
    assert value(series, "klipper_gcode_position_e") == 0.0
    assert value(series, "klipper_gcode_homing_origin_meters", axis="z") == 0.0
    # homing x and y (a push to toolhead only) re-renders gcode_move and motion_report
    assert state.update({"toolhead": {"homed_axes": "xy", "position": [10.0, 20.0, 0.0, 0.0]}})
    state.update({"gcode_move": {"gcode_position": [10.0, 20.0, 0.0, 0.0]},
                  "motion_report": {"live_position": [10.0, 20.0, 0.0, 0.0]}})
    series = parse(state.render())
    assert value(series, "klipper_toolhead_position_meters", axis="x") == pytest.approx(0.01)
    assert value(series, "klipper_motion_report_live_position_meters", axis="y") == \
        pytest.approx(0.02)
    assert value(series, "klipper_gcode_position_x") == 10.0
    assert value(series, "klipper_gcode_position_z") is None  # z still unhomed
    assert state.update({"toolhead": {"homed_axes": "xyz"}})
    assert value(parse(state.render()), "klipper_gcode_position_z") == 0.0
    # motors off: Klipper clears homed_axes, the positions go
    state.update({"toolhead": {"homed_axes": ""}})
    assert value(parse(state.render()), "klipper_gcode_position_x") is None


def test_context_fields_are_subscribed():
    plan = Plan(["toolhead", "gcode_move", "motion_report"], BINDINGS)
    assert "homed_axes" in plan.subscription["toolhead"]
    assert "homed_axes" not in plan.subscription["gcode_move"]
