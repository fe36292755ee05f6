"""The `mmu` (Happy Hare) and `cfs` (Creality) modules on realistic object status."""
from __future__ import annotations

import pytest

from moonraker_prometheus.catalogue import cfs, mmu
from moonraker_prometheus.collectors.printer import Plan, PrinterState
from tests.go_families import GO_CFS_FAMILIES, GO_MMU_FAMILIES
from tests.promtool import assert_promtool_clean
from tests.scrape import label_keys, parse, value

pytestmark = pytest.mark.unit

MMU_STATUS = {
    "mmu": {
        "enabled": True, "num_gates": 4, "is_homed": True, "has_bypass": True, "unit": 0,
        "tool": 1, "gate": 1, "print_state": "printing", "operation": "Idle",
        "action": "Idle", "runout": False, "filament": "Loaded", "filament_position": 812.5,
        "filament_pos": 10, "filament_direction": 1, "num_toolchanges": 3, "last_tool": 0,
        "next_tool": -1, "toolchange_purge_volume": 120.0,
        "active_filament": {"filament_name": "Galaxy Black", "material": "PLA",
                            "color": "000000", "spool_id": 12, "temperature": 215},
        "clog_detection_enabled": 2, "endless_spool_enabled": 1, "sync_drive": True,
        "sync_feedback_state": "compressed", "servo": "Down", "bowden_progress": -1,
        "ttg_map": [0, 1, 2, 3], "endless_spool_groups": [0, 1, 2, 0],
        "gate_status": [1, 2, 0, -1], "gate_filament_name": ["Galaxy Black", "", "", ""],
        "gate_material": ["PLA", "PETG", "", "ABS"], "gate_color": ["000000", "ff0000", "", ""],
        "gate_temperature": [215, 240, 200, 250], "gate_spool_id": [12, -1, -1, -1],
        "gate_speed_override": [100, 100, 90, 100],
        "tool_extrusion_multipliers": [1.0, 1.0, 0.95, 1.0],
        "tool_speed_multipliers": [1.0, 1.0, 1.0, 1.0],
        "encoder": {"encoder_pos": 812.3, "detection_length": 10.0, "min_headroom": 4.1,
                    "headroom": 7.9, "desired_headroom": 5.0, "detection_mode": 2,
                    "enabled": True, "flow_rate": 98},
        "slicer_tool_map": {"referenced_tools": [0, 1], "initial_tool": 0,
                            "total_toolchanges": 14, "skip_automap": False},
    },
    "mmu_machine": {"num_units": 1, "unit_0": {
        "name": "ERCF \"v2\"", "vendor": "Enraged Rabbit", "version": "2.0", "num_gates": 4,
        "first_gate": 0, "selector_type": "LinearSelector", "has_bypass": True}},
    "filament_switch_sensor mmu_pre_gate_0": {"filament_detected": True, "enabled": True},
    "filament_switch_sensor mmu_pre_gate_1": {"filament_detected": False, "enabled": True},
}

CFS_STATUS = {
    "box": {
        "filament": 1, "state": "connect", "auto_refill": 1, "enable": 1,
        "filament_useup": 0,
        "T1": {"state": "connect", "filament": "B", "temperature": "31", "dry_and_humidity":
               "42", "version": "1.1.3", "sn": "10000882925L124DBZS", "mode": "0",
               "vender": ["Creality", "Generic", "-1", "-1"],
               "remain_len": ["100", "35", "None", "None"],
               "color_value": ["0FFFFFF", "0FF0000", "-1", "-1"],
               "material_type": ["101001", "103001", "-1", "-1"]},
        "T2": {"state": "None", "filament": "None"},
        "T3": {"state": "None"}, "T4": {"state": "None"},
    },
    "filament_rack": {"remain_material_color": "0FF0000", "remain_material_type": "PETG",
                      "remain_material_velocity": 120.5},
}


def render(bindings, status) -> str:
    return PrinterState(Plan(list(status), bindings), status).render()


def test_mmu_families_with_go_label_keys():
    # mid-toolchange, so the fields Happy Hare leaves unknown otherwise have values
    body = render(mmu.BINDINGS, dict(MMU_STATUS, mmu=dict(MMU_STATUS["mmu"], next_tool=2,
                                                          bowden_progress=40)))
    assert_promtool_clean(body)
    series = parse(body)
    keys = label_keys(series)
    missing = [n for n in GO_MMU_FAMILIES if n not in keys]
    assert not missing
    for name, labels in GO_MMU_FAMILIES.items():
        assert set(labels) <= keys[name], name
    assert value(series, "klipper_mmu_filament_loaded") == 1.0
    assert value(series, "klipper_mmu_gate_status", gate="2") == 0.0  # empty: a real state
    assert value(series, "klipper_mmu_encoder_flow_rate_percent") == 98.0
    assert value(series, "klipper_mmu_pre_gate_sensor_detected", gate="1") == 0.0
    assert value(series, "klipper_mmu_gate_info", gate="1", material="PETG", color="ff0000",
                 filament_name="") == 1.0
    assert value(series, "klipper_mmu_machine_info", name='ERCF "v2"', vendor="Enraged Rabbit",
                 version="2.0", selector_type="LinearSelector", unit="0") == 1.0


def test_mmu_unknowns_are_absent_not_minus_one():
    """Happy Hare's -1 (TOOL_GATE_UNKNOWN, GATE_UNKNOWN, UNIT_UNKNOWN, FILAMENT_POS_UNKNOWN,
    unset spool IDs, no bowden move) and its 0 filament direction mean "unknown"."""
    series = parse(render(mmu.BINDINGS, MMU_STATUS))
    assert value(series, "klipper_mmu_gate_status", gate="3") is None
    assert value(series, "klipper_mmu_gate_spool_id", gate="1") is None
    assert value(series, "klipper_mmu_gate_spool_id", gate="0") == 12.0
    assert value(series, "klipper_mmu_next_tool") is None
    assert value(series, "klipper_mmu_bowden_progress_percent") is None
    unknown = dict(MMU_STATUS["mmu"], unit=-1, tool=-1, gate=-1, last_tool=-1, filament_pos=-1,
                   filament_direction=0,
                   active_filament=dict(MMU_STATUS["mmu"]["active_filament"], spool_id=-1))
    series = parse(render(mmu.BINDINGS, {"mmu": unknown}))
    for name in ("klipper_mmu_current_unit", "klipper_mmu_current_tool",
                 "klipper_mmu_current_gate", "klipper_mmu_last_tool",
                 "klipper_mmu_filament_pos_state", "klipper_mmu_filament_direction",
                 "klipper_mmu_active_filament_spool_id"):
        assert value(series, name) is None, name
    bypass = parse(render(mmu.BINDINGS, {"mmu": dict(unknown, tool=-2, gate=-2)}))
    assert value(bypass, "klipper_mmu_current_tool") == -2.0  # bypass is a real state


def test_mmu_without_active_filament_has_no_active_series():
    status = {"mmu": dict(MMU_STATUS["mmu"], active_filament={"filament_name": ""})}
    names = {n for n, _ in parse(render(mmu.BINDINGS, status))}
    assert "klipper_mmu_active_filament_info" not in names
    assert "klipper_mmu_active_filament_temperature" not in names


def test_cfs_families_with_go_label_keys():
    body = render(cfs.BINDINGS, CFS_STATUS)
    assert_promtool_clean(body)
    series = parse(body)
    keys = label_keys(series)
    missing = [n for n in GO_CFS_FAMILIES if n not in keys]
    assert not missing
    for name, labels in GO_CFS_FAMILIES.items():
        assert set(labels) <= keys[name], name
    assert value(series, "klipper_cfs_active_slot", unit="T1") == 1.0
    assert value(series, "klipper_cfs_unit_temperature_celsius", unit="T1") == 31.0
    assert value(series, "klipper_cfs_slot_remaining", unit="T1", slot="B") == 35.0
    assert value(series, "klipper_cfs_slot_remaining", unit="T1", slot="C") is None  # "None"
    # a unit with no active slot has no slot number (not -1)
    no_slot = {"box": dict(CFS_STATUS["box"], T1=dict(CFS_STATUS["box"]["T1"], filament="None"))}
    assert value(parse(render(cfs.BINDINGS, no_slot)), "klipper_cfs_active_slot",
                 unit="T1") is None
    # disconnected units (state "None") produce nothing
    assert not [k for k in series if ("unit", "T2") in k[1]]


def test_no_objects_no_subscription():
    plan = Plan(["webhooks", "extruder"], mmu.BINDINGS + cfs.BINDINGS)
    assert plan.subscription == {} and plan.entries == []


def test_cfs_reads_every_unit_and_slot_klipper_reports():
    """Units are box's T<n> fields and slots follow the per-slot lists: a fifth unit and a
    fifth slot appear (the layout was fixed to T1-T4 and A-D)."""
    t1 = CFS_STATUS["box"]["T1"]
    fifth = dict(t1, filament="E", material_type=t1["material_type"] + ["104001"],
                 color_value=t1["color_value"] + ["0000000"], vender=t1["vender"] + ["X"],
                 remain_len=t1["remain_len"] + ["80"])
    status = {"box": dict(CFS_STATUS["box"], T5=fifth)}
    plan = Plan(list(status), cfs.BINDINGS)
    assert plan.subscription["box"] is None  # the unit fields are whatever Klippy has
    series = parse(PrinterState(plan, status).render())
    assert value(series, "klipper_cfs_unit_temperature_celsius", unit="T5") == 31.0
    assert value(series, "klipper_cfs_active_slot", unit="T5") == 4.0
    assert value(series, "klipper_cfs_slot_remaining", unit="T5", slot="E") == 80.0
    assert value(series, "klipper_cfs_active_slot_info", unit="T5", slot="E",
                 material="104001", color="0000000") == 1.0
    units = [dict(k[1]).get("unit") for k in series if k[0] == "klipper_cfs_unit_state_info"]
    assert units == ["T1", "T5"]  # unit number order; T2-T4 are disconnected
