"""prometheus-klipper-exporter (v0.16.0) families and their label keys: the one list.

Shared by tests/test_catalogue.py and tests/test_moonraker_unit.py (declared) and
tests/test_go_compat.py (scraped).
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

# Moonraker-side families (go-exporter-metrics.md, sections "Moonraker process and host" and
# "Server, job queue, disk, history, power, Spoolman"): name -> (label keys, Go module).
GO_MOONRAKER_FAMILIES: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "klipper_klippy_connected": ((), "server_info"),
    "klipper_klippy_state_info": (("state",), "server_info"),
    "klipper_moonraker_memory_kb": ((), "process_stats"),
    "klipper_moonraker_cpu_usage": ((), "process_stats"),
    "klipper_moonraker_websocket_connections": ((), "process_stats"),
    "klipper_system_cpu_temp": ((), "process_stats"),
    "klipper_system_cpu": ((), "process_stats"),
    "klipper_system_memory_total": ((), "process_stats"),
    "klipper_system_memory_available": ((), "process_stats"),
    "klipper_system_memory_used": ((), "process_stats"),
    "klipper_system_uptime": ((), "process_stats"),
    "klipper_system_throttled_bits": ((), "process_stats"),
    "klipper_system_throttled_flag_info": (("flag",), "process_stats"),
    "klipper_network_bandwidth": (("interface",), "network_stats"),
    "klipper_system_cpu_count": ((), "system_info"),
    "klipper_service_available": (("service",), "system_info"),
    "klipper_service_state_info": (("service", "state"), "system_info"),
    "klipper_service_sub_state_info": (("service", "sub_state"), "system_info"),
    "klipper_component_info": (("component",), "server_info"),
    "klipper_component_failed_info": (("failed_component",), "server_info"),
    "klipper_moonraker_version_info": (("version",), "server_info"),
    "klipper_api_version_info": (("version",), "server_info"),
    "klipper_job_queue_length": ((), "job_queue"),
    "klipper_job_queue_state_info": (("state",), "job_queue"),
    "klipper_disk_usage_total": ((), "directory_info"),
    "klipper_disk_usage_used": ((), "directory_info"),
    "klipper_disk_usage_available": ((), "directory_info"),
    "klipper_power_device_info": (("device", "type"), "device_power"),
    "klipper_power_device_status": (("device",), "device_power"),
    "klipper_power_device_state_info": (("device", "state"), "device_power"),
    "klipper_spoolman_connected": ((), "spoolman"),
    "klipper_spoolman_active_spool_id": ((), "spoolman"),
    "klipper_spoolman_pending_reports": ((), "spoolman"),
    "klipper_spoolman_spool_info": (
        ("spool_id", "filament_name", "material", "color", "vendor"), "spoolman"),
}
for _d in ("rx", "tx"):
    for _f in ("bytes", "packets", "errs", "drop"):
        GO_MOONRAKER_FAMILIES[f"klipper_network_{_d}_{_f}"] = (("interface",), "network_stats")
for _n in ("total_jobs", "total_time", "total_print_time", "total_filament_used",
           "longest_job", "longest_print"):
    GO_MOONRAKER_FAMILIES[f"klipper_{_n}"] = ((), "history")
for _n in ("object_height", "first_layer_height", "layer_height", "total_duration"):
    GO_MOONRAKER_FAMILIES[f"klipper_current_print_{_n}"] = ((), "history")
for _n in ("remaining_weight", "used_weight", "remaining_length", "used_length"):
    GO_MOONRAKER_FAMILIES[f"klipper_spoolman_{_n}"] = (("spool_id",), "spoolman")

# Moonraker-side families any host serves (the others need a CPU sensor, a Raspberry Pi,
# power devices, Spoolman, a job in progress, a failed component, ...).
ANY_HOST = {
    "klipper_klippy_connected", "klipper_klippy_state_info", "klipper_moonraker_memory_kb",
    "klipper_moonraker_cpu_usage", "klipper_moonraker_websocket_connections",
    "klipper_system_cpu", "klipper_system_memory_total", "klipper_system_memory_available",
    "klipper_system_memory_used", "klipper_system_uptime", "klipper_system_cpu_count",
    "klipper_network_rx_bytes", "klipper_network_tx_bytes", "klipper_network_bandwidth",
    "klipper_component_info", "klipper_moonraker_version_info", "klipper_api_version_info",
    "klipper_job_queue_length", "klipper_job_queue_state_info", "klipper_disk_usage_total",
    "klipper_disk_usage_used", "klipper_disk_usage_available", "klipper_total_jobs",
    "klipper_total_time", "klipper_total_print_time", "klipper_total_filament_used",
    "klipper_longest_job", "klipper_longest_print",
}
