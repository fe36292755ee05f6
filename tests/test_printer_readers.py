"""Custom readers of the printer catalogue: derived values, and nothing for unknowns."""
from __future__ import annotations

import math

import pytest

from moonraker_prometheus.catalogue import printer_readers as r
from moonraker_prometheus.catalogue.spec import ObjectKind, state

pytestmark = pytest.mark.unit


def samples(reader, value):
    return list(reader(value))


def test_mcu_load_and_awake_follow_klipper_graphstats():
    stats = {"mcu_awake": 0.05, "mcu_task_avg": 0.00002, "mcu_task_stddev": 0.00001}
    (labels, load), = samples(r.mcu_load, stats)
    assert labels == () and load == pytest.approx((0.00002 + 3 * 0.00001) / 0.0025)
    assert samples(r.mcu_awake, stats) == [((), pytest.approx(0.01))]
    assert samples(r.mcu_load, {"mcu_task_avg": 0.1}) == []
    assert samples(r.mcu_awake, None) == []


def test_mcu_info_labels():
    status = {"mcu_version": "v0.12.0-1", "mcu_build_versions": "gcc: 12",
              "mcu_constants": {"MCU": "rp2040", "CLOCK_FREQ": 12000000}}
    assert samples(r.mcu_info, status) == [(("v0.12.0-1", "gcc: 12", "rp2040"), 1.0)]
    assert samples(r.mcu_info, {"mcu_version": "v1"}) == [(("v1", "", ""), 1.0)]
    assert samples(r.mcu_info, {}) == []


def test_renamed_mcu_field_reads_whichever_exists():
    read = r.first_of("upcoming_bytes", "stalled_bytes")
    assert samples(read, {"upcoming_bytes": 12}) == [((), 12.0)]
    assert samples(read, {"stalled_bytes": 7}) == [((), 7.0)]
    assert samples(read, {"bytes_write": 1}) == []


def test_max_accel_to_decel_direct_or_derived():
    assert samples(r.max_accel_to_decel, {"max_accel_to_decel": 1500.0}) == [((), 1500.0)]
    assert samples(r.max_accel_to_decel, {"max_accel": 4000.0, "minimum_cruise_ratio": 0.25}
                   ) == [((), 3000.0)]
    assert samples(r.max_accel_to_decel, {"max_accel": 4000.0}) == []


def test_homed_axes_one_series_per_axis():
    assert samples(r.homed_axes, "xyz") == [(("x",), 1.0), (("y",), 1.0), (("z",), 1.0)]
    assert samples(r.homed_axes, "") == []


def test_tmc_enabled():
    assert samples(r.tmc_enabled, {"drv_status": None}) == [((), 0.0)]
    assert samples(r.tmc_enabled, {"drv_status": {"cs_actual": 16}}) == [((), 1.0)]
    assert samples(r.tmc_enabled, {"run_current": 0.8}) == []


def test_mesh_statistics():
    status = {"probed_matrix": [[0.1, -0.1], [0.2, 0.0]], "mesh_matrix": [[]]}
    assert samples(r.mesh_stat("min"), status) == [(("probed",), pytest.approx(-0.0001))]
    assert samples(r.mesh_stat("max"), status) == [(("probed",), pytest.approx(0.0002))]
    assert samples(r.mesh_stat("range"), status) == [(("probed",), pytest.approx(0.0003))]
    mean = 0.05
    std = math.sqrt(sum((v - mean) ** 2 for v in (0.1, -0.1, 0.2, 0.0)) / 4) / 1000
    assert samples(r.mesh_stat("stddev"), status) == [(("probed",), pytest.approx(std))]
    assert samples(r.mesh_points, status) == [(("probed",), 4.0)]
    # no mesh loaded: Klipper reports [[]]: nothing, not zeros
    assert samples(r.mesh_stat("min"), {"probed_matrix": [[]], "mesh_matrix": [[]]}) == []


def test_input_shaper_from_configfile_settings():
    settings = {"input_shaper": {"shaper_type": "mzv", "shaper_type_y": "ei",
                                 "shaper_freq_x": 52.4, "damping_ratio_x": 0.1}}
    assert samples(r.shaper_value("shaper_freq", "x"), settings) == [((), 52.4)]
    assert samples(r.shaper_value("shaper_freq", "y"), settings) == []
    assert samples(r.shaper_types, settings) == [(("x", "mzv"), 1.0), (("y", "ei"), 1.0)]
    assert samples(r.shaper_types, {"printer": {}}) == []


def test_unmeasured_sentinels_are_not_values():
    unmeasured = {"measured_min_temp": 99999999.0, "measured_max_temp": 0.0}
    assert samples(r.measured("min"), unmeasured) == []
    assert samples(r.measured("max"), unmeasured) == []
    measured = {"measured_min_temp": 19.5, "measured_max_temp": 23.0}
    assert samples(r.measured("min"), measured) == [((), 19.5)]
    assert samples(r.measured("max"), measured) == [((), 23.0)]
    assert samples(r.positive, 0) == [] and samples(r.positive, 3) == [((), 3.0)]


def test_truthy_mapping_and_axes():
    assert samples(r.truthy_mapping, {"x": 0, "y": 1, "z": None}) == [
        (("x",), 0.0), (("y",), 1.0)]
    assert samples(r.axes("x", "y", factor=0.001), [100.0, None]) == [(("x",), 0.1)]
    assert samples(r.count, ["a", "b"]) == [((), 2.0)]


def test_state_is_absent_for_empty_or_missing_text():
    assert samples(state, "ready") == [(("ready",), 1.0)]
    assert samples(state, "") == [] and samples(state, None) == []


@pytest.mark.parametrize("obj,expected", [
    ("tmc2209 stepper_x", "tmc2209_stepper_x"),
    ("tmc5160 stepper z1", "tmc5160_stepper z1"),
])
def test_tmc_instance_label_matches_go_exporter(obj, expected):
    kind = ObjectKind("tmc", r"tmc[0-9a-z]+ .+", label="sensor", join="_")
    assert kind.matches(obj) and kind.instance(obj) == expected


def test_mcu_instance_label():
    kind = ObjectKind("mcu", r"mcu( .+)?", label="mcu")
    assert kind.instance("mcu") == "mcu"
    assert kind.instance("mcu toolboard") == "toolboard"
    assert not kind.matches("mcu_fan")
