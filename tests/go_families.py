"""prometheus-klipper-exporter (v0.16.0) printer families and their label keys.

Shared by tests/test_catalogue.py (declared) and tests/test_go_compat.py (scraped).
`SIMULATOR_ABSENT` lists the families the project's simulated printer cannot produce
(objects it does not have, or values Klipper reports as null for its hardware).
"""
from __future__ import annotations

from typing import Dict, Tuple

_NONE: Tuple[str, ...] = ()


def _each(prefix: str, suffixes: str, labels: Tuple[str, ...] = _NONE) -> Dict[str, Tuple[str, ...]]:
    return {f"{prefix}{s}": labels for s in suffixes.split()}


GO_PRINTER_FAMILIES: Dict[str, Tuple[str, ...]] = {}
for _part in (
    {"klipper_endstop_triggered": ("endstop",)},
    _each("klipper_gcode_", "speed_factor speed extrude_factor position_x position_y "
          "position_z position_e"),
    _each("klipper_mcu_", "awake task_avg task_stddev write_bytes read_bytes retransmit_bytes "
          "invalid_bytes send_seq receive_seq retransmit_seq srtt rttvar rto ready_bytes "
          "stalled_bytes clock_frequency", ("mcu",)),
    _each("klipper_toolhead_", "print_time estimated_print_time max_velocity max_accel "
          "max_accel_to_decel square_corner_velocity stalls_total"),
    {"klipper_toolhead_homed_axes_info": ("axis",)},
    _each("klipper_extruder_", "temperature target power pressure_advance smooth_time"),
    _each("klipper_heater_bed_", "temperature target power"),
    _each("klipper_fan_", "speed rpm"),
    {"klipper_printing_time": _NONE, "klipper_idle_timeout_state_info": ("state",)},
    _each("klipper_print_file_", "progress position"),
    {"klipper_sdcard_active": _NONE},
    _each("klipper_print_", "total_duration print_duration filament_used"),
    {"klipper_print_state_info": ("state",), "klipper_printing": _NONE,
     "klipper_webhooks_state_info": ("state",), "klipper_pause_resume_is_paused": _NONE,
     "klipper_print_gcode_progress": _NONE},
    _each("klipper_temperature_sensor_", "temperature measured_min_temp measured_max_temp",
          ("sensor",)),
    _each("klipper_temperature_fan_", "speed temperature target rpm", ("fan",)),
    _each("klipper_temperature_probe_", "temperature measured_min_temp measured_max_temp "
          "estimated_expansion", ("sensor",)),
    {"klipper_output_pin_value": ("pin",)},
    _each("klipper_generic_fan_", "speed rpm", ("fan",)),
    _each("klipper_controller_fan_", "speed rpm", ("fan",)),
    _each("klipper_heater_fan_", "speed rpm", ("fan",)),
    _each("klipper_filament_sensor_", "detected enabled", ("sensor",)),
    _each("klipper_generic_heater_", "temperature target power", ("heater",)),
    _each("klipper_tmc_sensor_", "temperature run_current enabled", ("sensor",)),
    _each("klipper_input_shaper_", "frequency_x frequency_y damping_ratio_x damping_ratio_y"),
    {"klipper_input_shaper_type_info": ("axis", "type")},
    _each("klipper_firmware_", "retract_length retract_speed unretract_extra_length "
          "unretract_speed"),
):
    GO_PRINTER_FAMILIES.update(_part)

# Not produced by the simulated printer: no such object or no such value (only [fan]
# has a tachometer, so the other fans' rpm is null; no heater_generic /
# temperature_probe configured; a TMC2209 has no temperature sensor).
SIMULATOR_ABSENT = {
    "klipper_generic_fan_rpm", "klipper_controller_fan_rpm",
    "klipper_heater_fan_rpm", "klipper_temperature_fan_rpm",
    "klipper_temperature_probe_temperature", "klipper_temperature_probe_measured_min_temp",
    "klipper_temperature_probe_measured_max_temp",
    "klipper_temperature_probe_estimated_expansion",
    "klipper_tmc_sensor_temperature",
    "klipper_generic_heater_temperature", "klipper_generic_heater_target",
    "klipper_generic_heater_power",
    # homed only after G28; endstops only after someone runs QUERY_ENDSTOPS
    "klipper_toolhead_homed_axes_info", "klipper_endstop_triggered",
}

# Optional Go modules for add-on hardware (modules `mmu` and `cfs`).
GO_MMU_FAMILIES: Dict[str, Tuple[str, ...]] = {}
for _part in (
    _each("klipper_mmu_", "enabled homed num_gates has_bypass current_unit current_tool "
          "current_gate filament_loaded filament_position_mm filament_pos_state "
          "filament_direction toolchanges_total last_tool next_tool "
          "toolchange_purge_volume_mm3 runout clog_detection_mode endless_spool_enabled "
          "sync_drive_enabled bowden_progress_percent encoder_position_mm "
          "encoder_detection_length_mm encoder_headroom_mm encoder_min_headroom_mm "
          "encoder_desired_headroom_mm encoder_flow_rate_percent encoder_enabled "
          "slicer_total_toolchanges slicer_initial_tool num_units "
          "active_filament_temperature active_filament_spool_id"),
    {"klipper_mmu_print_state_info": ("state",), "klipper_mmu_action_info": ("action",),
     "klipper_mmu_operation_info": ("operation",),
     "klipper_mmu_sync_feedback_state_info": ("state",),
     "klipper_mmu_servo_position_info": ("position",)},
    _each("klipper_mmu_gate_", "status temperature speed_override_percent ttg_map "
          "endless_spool_group spool_id", ("gate",)),
    {"klipper_mmu_gate_info": ("gate", "material", "color", "filament_name")},
    _each("klipper_mmu_tool_", "extrusion_multiplier speed_multiplier", ("tool",)),
    _each("klipper_mmu_pre_gate_sensor_", "detected enabled", ("gate",)),
    {"klipper_mmu_machine_info": ("name", "vendor", "version", "selector_type"),
     "klipper_mmu_active_filament_info": ("name", "material", "color")},
):
    GO_MMU_FAMILIES.update(_part)

GO_CFS_FAMILIES: Dict[str, Tuple[str, ...]] = {
    "klipper_cfs_enabled": _NONE, "klipper_cfs_auto_refill_enabled": _NONE,
    "klipper_cfs_filament_useup": _NONE, "klipper_cfs_state_info": ("state",),
    "klipper_cfs_active_unit": _NONE, "klipper_cfs_active_slot": ("unit",),
    "klipper_cfs_active_slot_info": ("unit", "slot", "material", "color"),
    "klipper_cfs_unit_state_info": ("unit", "state"),
    "klipper_cfs_unit_info": ("unit", "version", "sn", "mode"),
    "klipper_cfs_unit_temperature_celsius": ("unit",),
    "klipper_cfs_unit_humidity_percent": ("unit",),
    "klipper_cfs_slot_info": ("unit", "slot", "material", "color", "vendor"),
    "klipper_cfs_slot_remaining": ("unit", "slot"),
    "klipper_cfs_rack_loaded_info": ("material", "color"),
    "klipper_cfs_rack_velocity": _NONE,
}
