"""The catalogue's readers (catalogue/readers.py): derived values, and nothing for unknowns."""
from __future__ import annotations

import math

import pytest

from moonraker_prometheus.catalogue import readers as r
from moonraker_prometheus.catalogue.readers import state
from moonraker_prometheus.catalogue.spec import ObjectKind

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


def extremes(status):
    """(lowest, highest) as served: None where the reader yields nothing."""
    found = []
    for which in ("min", "max"):
        got = samples(r.measured(which), status)
        assert len(got) <= 1 and all(labels == () for labels, _ in got)
        found.append(got[0][1] if got else None)
    return tuple(found)


def klipper_extremes(readings, low, high):
    """measured_min_temp/measured_max_temp as Klippy reports them after `readings`, from
    the start values (low, high), the way temperature_sensor.py updates them."""
    for temp in readings:
        if temp:  # temperature_sensor skips a reading of 0.0
            low, high = min(low, temp), max(high, temp)
    return {"temperature": round(readings[-1], 2) if readings else 0.0,
            "measured_min_temp": round(low, 2), "measured_max_temp": round(high, 2)}


# Start values seen in Klippy: temperature_sensor and temperature_probe (and newer Klipper's
# z_thermal_adjust) 99999999 and 0; z_thermal_adjust of Klipper 0.12 and Kalico 0 and 0;
# third-party sensor modules (a coil sensor) 9999 and -273.15.
SEEDS = [(99999999.0, 0.0), (0.0, 0.0), (9999.0, -273.15)]


@pytest.mark.parametrize("seeds", SEEDS, ids=["99999999,0", "0,0", "9999,-273.15"])
def test_an_extreme_nobody_measured_is_absent(seeds):
    assert extremes(klipper_extremes([], *seeds)) == (None, None)
    # a reading of exactly 0.0 (a failed read) counts for nothing
    assert extremes(klipper_extremes([0.0], *seeds)) == (None, None)


@pytest.mark.parametrize("seeds", SEEDS, ids=["99999999,0", "0,0", "9999,-273.15"])
def test_readings_all_below_zero_give_their_own_highest_never_the_start_value(seeds):
    # a sensor in an unheated garage: -3 °C, then -1 °C
    low, high = extremes(klipper_extremes([-3.0, -1.0], *seeds))
    assert low == -3.0
    assert high in (-1.0, None)  # the real highest, or absent where Klipper kept its 0
    assert high != 0.0
    assert extremes({"measured_min_temp": -3.0, "measured_max_temp": 0.0}) == (-3.0, None)


@pytest.mark.parametrize("seeds", SEEDS, ids=["99999999,0", "0,0", "9999,-273.15"])
def test_readings_all_above_zero_give_their_own_lowest_never_the_start_value(seeds):
    low, high = extremes(klipper_extremes([19.5, 23.0, 21.0], *seeds))
    assert high == 23.0
    assert low in (19.5, None) and low != 0.0
    # z_thermal_adjust of Klipper 0.12: the lowest stays at its start value 0
    assert extremes({"measured_min_temp": 0.0, "measured_max_temp": 23.0}) == (None, 23.0)


@pytest.mark.parametrize("seeds", SEEDS, ids=["99999999,0", "0,0", "9999,-273.15"])
def test_readings_on_both_sides_of_zero_give_both_extremes(seeds):
    assert extremes(klipper_extremes([-3.0, 4.5, -1.0], *seeds)) == (-3.0, 4.5)


def measured_extreme_fields():
    """Every printer family fed by a measured_min_temp or measured_max_temp field."""
    from moonraker_prometheus.catalogue import cfs, mmu, printer
    keys = {"measured_min_temp", "measured_max_temp"}
    return [(b.kind.name, f) for b in printer.BINDINGS + mmu.BINDINGS + cfs.BINDINGS
            for f in b.fields if keys & ({f.path.split(".")[0]} | set(f.requires))]


def test_every_measured_extreme_family_follows_the_rule():
    fields = measured_extreme_fields()
    kinds = {kind for kind, _ in fields}
    assert {"temperature_sensor", "temperature_probe", "z_thermal_adjust"} <= kinds
    for kind, f in fields:
        name = f.metric.name
        for seeds in SEEDS:
            assert list(f.samples(klipper_extremes([], *seeds))) == [], (name, seeds)
            below = [v for _, v in f.samples(klipper_extremes([-3.0, -1.0], *seeds))]
            above = [v for _, v in f.samples(klipper_extremes([19.5, 23.0], *seeds))]
            assert 0.0 not in below + above, (name, seeds)
            assert "start value" in f.metric.help, name
        both = [v for _, v in f.samples(klipper_extremes([-3.0, 4.5], *SEEDS[0]))]
        assert both == ([-3.0] if "_min_" in name else [4.5]), name


def test_an_extreme_needs_both_fields_as_numbers():
    assert extremes({"measured_min_temp": -3.0}) == (None, None)
    assert extremes({"measured_min_temp": "-3", "measured_max_temp": 4.0}) == (None, None)
    assert extremes(None) == (None, None)
    with pytest.raises(ValueError):
        r.measured("mean")


def test_nonzero_is_absent_at_klippers_unread_zero():
    assert samples(r.nonzero, 0) == [] and samples(r.nonzero, 0.0) == []
    assert samples(r.nonzero, 3) == [((), 3.0)] and samples(r.nonzero, -3.5) == [((), -3.5)]
    assert samples(r.nonzero, None) == [] and samples(r.nonzero, "3") == []


def test_positive_is_absent_at_zero_below_zero_and_nan():
    assert samples(r.positive, 0.0) == [] and samples(r.positive, -3.5) == []
    assert samples(r.positive, float("nan")) == [] and samples(r.positive, None) == []
    assert samples(r.positive, 3) == [((), 3.0)]


def test_scaled_drops_what_its_reader_drops():
    assert samples(r.scaled(0.01, r.nonzero), 45.0) == [((), pytest.approx(0.45))]
    assert samples(r.scaled(0.01, r.nonzero), 0.0) == []
    assert samples(r.scaled(0.001), 0.0) == [((), 0.0)]
    assert samples(r.scaled(0.001), "1") == []


def test_not_minus_one_drops_happy_hares_unknown():
    assert samples(r.not_minus_one, -1) == [] and samples(r.not_minus_one, -2) == [((), -2.0)]
    assert samples(r.per_index(r.not_minus_one), [3, -1, None, 0]) == [
        (("0",), 3.0), (("3",), 0.0)]
    assert samples(r.per_index(), [3, -1, "x"]) == [(("0",), 3.0), (("1",), -1.0)]


def test_per_key_and_axes():
    assert samples(r.per_key(r.bool_flag), {"x": 0, "y": 1, "z": None}) == [
        (("x",), 0.0), (("y",), 1.0)]
    assert samples(r.per_key(r.number), {"otpw": True, "cs": 16, "s": "a"}) == [
        (("otpw",), 1.0), (("cs",), 16.0)]
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


def test_every_binding_reads_with_a_reader_of_the_readers_module():
    """Readers live in one home (catalogue/readers.py), none defined in a topic module."""
    from moonraker_prometheus.catalogue import cfs, mmu, printer
    elsewhere = sorted({f"{f.metric.name}: {f.read.__module__}.{f.read.__qualname__}"
                        for b in printer.BINDINGS + mmu.BINDINGS + cfs.BINDINGS
                        for f in b.fields if f.read.__module__ != r.__name__})
    assert not elsewhere
