"""Happy Hare MMU families (the `mmu` module), read from Klipper's `mmu` objects.

Names and label keys are prometheus-klipper-exporter's `mmu` module (`compat=True`); the
values come from the same subscription state as every printer object. Happy Hare reports
-1 for "unknown" or "not set" (TOOL_GATE_UNKNOWN, GATE_UNKNOWN, UNIT_UNKNOWN,
FILAMENT_POS_UNKNOWN, an unset spool ID, no bowden move) and 0 for an unknown filament
direction: those fields are absent then, never a number standing for "unknown".
"""
from __future__ import annotations

from .build import INFO, F, ObjectKind, bind, family_metrics
from .readers import (active_filament_field, active_filament_info, equals, gate_info,
                      machine_info, nonzero, not_minus_one, per_index, state)
from .units import CELSIUS, CUBIC_MILLIMETERS, MILLIMETERS, PERCENT, RATIO

MMU = ObjectKind("mmu", r"mmu")
MMU_MACHINE = ObjectKind("mmu_machine", r"mmu_machine")
PRE_GATE = ObjectKind(
    "mmu_pre_gate", r"filament_switch_sensor mmu_pre_gate_(?P<instance>\d+)", label="gate")


_ENC = "Happy Hare encoder"

BINDINGS = (
    bind(
        MMU,
        F("enabled", "klipper_mmu_enabled", "1 when the MMU is enabled, else 0.", compat=True),
        F("is_homed", "klipper_mmu_homed", "1 when the MMU selector is homed, else 0.",
          compat=True),
        F("num_gates", "klipper_mmu_num_gates", "Number of MMU gates.", compat=True),
        F("has_bypass", "klipper_mmu_has_bypass", "1 when the MMU has a bypass gate.",
          compat=True),
        F("unit", "klipper_mmu_current_unit", "Current MMU unit (absent when unknown).",
          read=not_minus_one, compat=True),
        F("tool", "klipper_mmu_current_tool",
          "Current tool (-2 bypass; absent when unknown).", read=not_minus_one, compat=True),
        F("gate", "klipper_mmu_current_gate",
          "Current gate (-2 bypass; absent when unknown).", read=not_minus_one, compat=True),
        F("print_state", "klipper_mmu_print_state_info", "MMU print state.", type=INFO,
          labels=("state",), read=state, compat=True),
        F("action", "klipper_mmu_action_info", "MMU current action.", type=INFO,
          labels=("action",), read=state, compat=True),
        F("operation", "klipper_mmu_operation_info", "MMU current operation.", type=INFO,
          labels=("operation",), read=state, compat=True),
        F("filament", "klipper_mmu_filament_loaded",
          "1 when Happy Hare reports the filament Loaded, else 0.", read=equals("Loaded"),
          compat=True),
        F("filament_position", "klipper_mmu_filament_position_mm",
          "Filament position in mm.", unit=MILLIMETERS, compat=True),
        F("filament_pos", "klipper_mmu_filament_pos_state",
          "Filament position state machine value (Happy Hare FILAMENT_POS_*; absent when "
          "unknown).", read=not_minus_one, compat=True),
        F("filament_direction", "klipper_mmu_filament_direction",
          "Filament direction (1 load, -1 unload; absent when unknown).", read=nonzero,
          compat=True),
        F("num_toolchanges", "klipper_mmu_toolchanges_total",
          "Toolchanges in the current print. Resets at every print: a gauge despite its "
          "name (kept from the Go exporter).", compat=True),
        F("last_tool", "klipper_mmu_last_tool", "Last tool used (absent when unknown).",
          read=not_minus_one, compat=True),
        F("next_tool", "klipper_mmu_next_tool",
          "Next tool during a toolchange (absent outside one).", read=not_minus_one, compat=True),
        F("toolchange_purge_volume", "klipper_mmu_toolchange_purge_volume_mm3",
          "Suggested purge volume of the toolchange in mm^3.", unit=CUBIC_MILLIMETERS,
          compat=True),
        F("runout", "klipper_mmu_runout", "1 while a runout is being handled, else 0.",
          compat=True),
        F("clog_detection_enabled", "klipper_mmu_clog_detection_mode",
          "Clog detection mode (0 off, 1 manual, 2 auto).", compat=True),
        F("endless_spool_enabled", "klipper_mmu_endless_spool_enabled",
          "Endless spool (0 off, 1 enabled, 2 pre-gate).", compat=True),
        F("sync_drive", "klipper_mmu_sync_drive_enabled",
          "1 when the gear stepper is synced to the extruder, else 0.", compat=True),
        F("sync_feedback_state", "klipper_mmu_sync_feedback_state_info",
          "Sync feedback state.", type=INFO, labels=("state",), read=state, compat=True),
        F("servo", "klipper_mmu_servo_position_info", "Servo position.", type=INFO,
          labels=("position",), read=state, compat=True),
        F("bowden_progress", "klipper_mmu_bowden_progress_percent",
          "Bowden move progress in percent (absent when no bowden move is active).",
          unit=PERCENT, read=not_minus_one, compat=True),
        F("encoder.encoder_pos", "klipper_mmu_encoder_position_mm",
          f"{_ENC} position in mm.", unit=MILLIMETERS, compat=True),
        F("encoder.detection_length", "klipper_mmu_encoder_detection_length_mm",
          "Clog detection length in mm.", unit=MILLIMETERS, compat=True),
        F("encoder.headroom", "klipper_mmu_encoder_headroom_mm",
          "Current clog detection headroom in mm.", unit=MILLIMETERS, compat=True),
        F("encoder.min_headroom", "klipper_mmu_encoder_min_headroom_mm",
          "Minimum clog detection headroom recorded, in mm.", unit=MILLIMETERS, compat=True),
        F("encoder.desired_headroom", "klipper_mmu_encoder_desired_headroom_mm",
          "Desired clog detection headroom in mm.", unit=MILLIMETERS, compat=True),
        F("encoder.flow_rate", "klipper_mmu_encoder_flow_rate_percent",
          f"{_ENC} measured flow rate in percent.", unit=PERCENT, compat=True),
        F("encoder.enabled", "klipper_mmu_encoder_enabled",
          f"1 when the {_ENC} is enabled for clog detection, else 0.", compat=True),
        F("gate_status", "klipper_mmu_gate_status",
          "Gate status (0 empty, 1 available, 2 buffered; absent when unknown).",
          labels=("gate",), read=per_index(not_minus_one), compat=True),
        F("gate_temperature", "klipper_mmu_gate_temperature",
          "Filament temperature configured for the gate, in degrees Celsius.",
          labels=("gate",), unit=CELSIUS, read=per_index(), compat=True),
        F("gate_speed_override", "klipper_mmu_gate_speed_override_percent",
          "Gate speed override in percent.", labels=("gate",), unit=PERCENT,
          read=per_index(), compat=True),
        F("ttg_map", "klipper_mmu_gate_ttg_map",
          "Tool-to-gate map: the gate mapped to tool N (label gate holds N, as the Go "
          "exporter).", labels=("gate",), read=per_index(), compat=True),
        F("endless_spool_groups", "klipper_mmu_gate_endless_spool_group",
          "Endless spool group of the gate.", labels=("gate",), read=per_index(), compat=True),
        F("gate_spool_id", "klipper_mmu_gate_spool_id",
          "Spoolman spool ID of the gate (absent when not set).", labels=("gate",),
          read=per_index(not_minus_one), compat=True),
        F("", "klipper_mmu_gate_info", "Material, color and filament name of each gate.",
          type=INFO, labels=("gate", "material", "color", "filament_name"), read=gate_info,
          requires=("num_gates", "gate_material", "gate_color", "gate_filament_name"),
          compat=True),
        F("tool_extrusion_multipliers", "klipper_mmu_tool_extrusion_multiplier",
          "Tool extrusion multiplier (M221) as a ratio.", labels=("tool",), unit=RATIO,
          read=per_index(), compat=True),
        F("tool_speed_multipliers", "klipper_mmu_tool_speed_multiplier",
          "Tool speed multiplier (M220) as a ratio.", labels=("tool",), unit=RATIO,
          read=per_index(), compat=True),
        F("slicer_tool_map.total_toolchanges", "klipper_mmu_slicer_total_toolchanges",
          "Toolchanges the slicer planned for the print.", compat=True),
        F("slicer_tool_map.initial_tool", "klipper_mmu_slicer_initial_tool",
          "Initial tool according to the slicer.", compat=True),
        F("active_filament", "klipper_mmu_active_filament_info",
          "Name, material and color of the active filament (when it has a name).",
          type=INFO, labels=("name", "material", "color"), read=active_filament_info, compat=True),
        F("active_filament", "klipper_mmu_active_filament_temperature",
          "Temperature of the active filament in degrees Celsius.", unit=CELSIUS,
          read=active_filament_field("temperature"), compat=True),
        F("active_filament", "klipper_mmu_active_filament_spool_id",
          "Spoolman spool ID of the active filament.",
          read=active_filament_field("spool_id"), compat=True),
    ),
    bind(
        MMU_MACHINE,
        F("num_units", "klipper_mmu_num_units", "Number of MMU units.", compat=True),
        F("", "klipper_mmu_machine_info",
          "MMU unit identity: name, vendor, version, selector type (one series per unit).",
          type=INFO, labels=("name", "vendor", "version", "selector_type", "unit"),
          read=machine_info, compat=True),
    ),
    bind(
        PRE_GATE,
        F("filament_detected", "klipper_mmu_pre_gate_sensor_detected",
          "1 when the gate's pre-gate sensor detects filament, else 0.", compat=True),
        F("enabled", "klipper_mmu_pre_gate_sensor_enabled",
          "1 when the gate's pre-gate sensor is enabled, else 0.", compat=True),
    ),
)

METRICS = family_metrics(BINDINGS)
