"""Toolhead, G-code state, live motion, input shaping, retraction, levelling, bed mesh."""
from __future__ import annotations

from .build import COUNTER, F, INFO, ObjectKind, bind
from .readers import (axes, homed_axes, homed_axes_position, homed_axis_item, item,
                      max_accel_to_decel, mesh_points, mesh_stat, scaled, shaper_types,
                      shaper_value, state)
from .twins import prefer
from .units import (HERTZ, METERS, METERS_PER_SECOND, MILLIMETERS, MM_PER_MINUTE,
                    MM_PER_SECOND, MM_PER_SECOND_SQUARED, RATIO, SECONDS)

TOOLHEAD = ObjectKind("toolhead", r"toolhead")
GCODE_MOVE = ObjectKind("gcode_move", r"gcode_move")
MOTION_REPORT = ObjectKind("motion_report", r"motion_report")
CONFIGFILE = ObjectKind("configfile", r"configfile")
FIRMWARE_RETRACTION = ObjectKind("firmware_retraction", r"firmware_retraction")
EXTRUDER_STEPPER = ObjectKind("extruder_stepper", r"extruder_stepper .+", label="stepper")
Z_TILT = ObjectKind("z_tilt", r"z_tilt")
QUAD_GANTRY_LEVEL = ObjectKind("quad_gantry_level", r"quad_gantry_level")
BED_MESH = ObjectKind("bed_mesh", r"bed_mesh")

MM = 0.001
XYZ = ("x", "y", "z")
XYZE = ("x", "y", "z", "e")
# Klipper reports 0 for an axis it has not homed: x, y and z positions are absent until the
# axis is homed (toolhead.homed_axes); e needs no homing.
HOMED = ("toolhead", "homed_axes")
UNHOMED = " (x, y and z absent while the axis is not homed)."

BINDINGS = (
    bind(
        TOOLHEAD,
        F("print_time", "klipper_toolhead_print_time",
          "Toolhead print time in seconds (Klipper's internal motion clock).",
          unit=SECONDS, compat=True),
        F("estimated_print_time", "klipper_toolhead_estimated_print_time",
          "Estimated print time of the main MCU in seconds.", unit=SECONDS, compat=True),
        F("max_velocity", "klipper_toolhead_max_velocity",
          "Maximum toolhead velocity in mm/s.", unit=MM_PER_SECOND, compat=True),
        F("max_accel", "klipper_toolhead_max_accel",
          "Maximum toolhead acceleration in mm/s^2.", unit=MM_PER_SECOND_SQUARED, compat=True),
        F("", "klipper_toolhead_max_accel_to_decel",
          "Maximum acceleration to deceleration in mm/s^2 (derived as max_accel * (1 - "
          "minimum_cruise_ratio) on Klipper versions without it).", unit=MM_PER_SECOND_SQUARED,
          compat=True, read=max_accel_to_decel,
          requires=("max_accel_to_decel", "max_accel", "minimum_cruise_ratio")),
        F("square_corner_velocity", "klipper_toolhead_square_corner_velocity",
          "Square corner velocity in mm/s.", unit=MM_PER_SECOND, compat=True),
        F("homed_axes", "klipper_toolhead_homed_axes_info",
          "One series per homed axis.", type=INFO, labels=("axis",), read=homed_axes,
          compat=True),
        F("stalls", "klipper_toolhead_stalls_total",
          "Times the toolhead had to wait for moves since Klippy started.", type=COUNTER,
          compat=True),
        F("minimum_cruise_ratio", "klipper_toolhead_minimum_cruise_ratio",
          "Minimum fraction of a move spent cruising (Klipper 2024 and later).",
          unit=RATIO),
        F("", "klipper_toolhead_position_meters",
          "Commanded toolhead position per axis" + UNHOMED, unit=METERS, labels=("axis",),
          read=homed_axes_position(*XYZE, factor=MM), requires=("position", "homed_axes")),
        F("axis_minimum", "klipper_toolhead_axis_minimum_meters",
          "Minimum position of each axis (position_min).", unit=METERS, labels=("axis",),
          read=axes(*XYZ, factor=MM)),
        F("axis_maximum", "klipper_toolhead_axis_maximum_meters",
          "Maximum position of each axis (position_max).", unit=METERS, labels=("axis",),
          read=axes(*XYZ, factor=MM)),
        F("extruder", "klipper_toolhead_active_extruder_info",
          "The extruder the toolhead currently drives.", type=INFO, labels=("extruder",),
          read=state),
    ),
    bind(
        GCODE_MOVE,
        F("speed_factor", "klipper_gcode_speed_factor",
          "G-code speed factor (M220) as a ratio, 1 = 100 %.", unit=RATIO, compat=True),
        F("speed", "klipper_gcode_speed",
          "Requested speed of G-code moves in mm/min (the last F value, before the speed "
          "factor).", unit=MM_PER_MINUTE, compat=True),
        F("extrude_factor", "klipper_gcode_extrude_factor",
          "G-code extrusion factor (M221) as a ratio, 1 = 100 %.", unit=RATIO,
          compat=True),
        F("", "klipper_gcode_position_x",
          "G-code X position in mm (absent while X is not homed)."
          + prefer("klipper_gcode_position_x"), unit=MILLIMETERS,
          read=homed_axis_item(0, "x", "toolhead.homed_axes", "gcode_position"),
          requires=("gcode_position",), context=(HOMED,), compat=True),
        F("", "klipper_gcode_position_y",
          "G-code Y position in mm (absent while Y is not homed)."
          + prefer("klipper_gcode_position_y"), unit=MILLIMETERS,
          read=homed_axis_item(1, "y", "toolhead.homed_axes", "gcode_position"),
          requires=("gcode_position",), context=(HOMED,), compat=True),
        F("", "klipper_gcode_position_z",
          "G-code Z position in mm (absent while Z is not homed)."
          + prefer("klipper_gcode_position_z"), unit=MILLIMETERS,
          read=homed_axis_item(2, "z", "toolhead.homed_axes", "gcode_position"),
          requires=("gcode_position",), context=(HOMED,), compat=True),
        F("gcode_position", "klipper_gcode_position_e",
          "G-code E position in mm.", unit=MILLIMETERS, read=item(3), compat=True),
        F("homing_origin", "klipper_gcode_homing_origin_meters",
          "G-code offset (SET_GCODE_OFFSET) per axis.", unit=METERS, labels=("axis",),
          read=axes(*XYZE, factor=MM)),
    ),
    bind(
        MOTION_REPORT,
        F("", "klipper_motion_report_live_position_meters",
          "Live toolhead position per axis (the motion actually executing)" + UNHOMED,
          unit=METERS, labels=("axis",),
          read=homed_axes_position(*XYZE, factor=MM, homed_path="toolhead.homed_axes",
                                   position_path="live_position"),
          requires=("live_position",), context=(HOMED,)),
        F("live_velocity", "klipper_motion_report_live_velocity_meters_per_second",
          "Live toolhead velocity.", unit=METERS_PER_SECOND, read=scaled(MM)),
        F("live_extruder_velocity",
          "klipper_motion_report_live_extruder_velocity_meters_per_second",
          "Live velocity of the active extruder (filament).", unit=METERS_PER_SECOND,
          read=scaled(MM)),
    ),
    bind(
        CONFIGFILE,
        F("settings", "klipper_input_shaper_frequency_x",
          "Input shaper X frequency in Hz as configured ([input_shaper] shaper_freq_x).",
          unit=HERTZ, read=shaper_value("shaper_freq", "x"), compat=True),
        F("settings", "klipper_input_shaper_frequency_y",
          "Input shaper Y frequency in Hz as configured ([input_shaper] shaper_freq_y).",
          unit=HERTZ, read=shaper_value("shaper_freq", "y"), compat=True),
        F("settings", "klipper_input_shaper_damping_ratio_x",
          "Input shaper X damping ratio as configured.", unit=RATIO,
          read=shaper_value("damping_ratio", "x"), compat=True),
        F("settings", "klipper_input_shaper_damping_ratio_y",
          "Input shaper Y damping ratio as configured.", unit=RATIO,
          read=shaper_value("damping_ratio", "y"), compat=True),
        F("settings", "klipper_input_shaper_type_info",
          "Input shaper type per axis as configured.", type=INFO, labels=("axis", "type"),
          read=shaper_types, compat=True),
    ),
    bind(
        FIRMWARE_RETRACTION,
        F("retract_length", "klipper_firmware_retract_length",
          "Firmware retraction length in mm.", unit=MILLIMETERS, compat=True),
        F("retract_speed", "klipper_firmware_retract_speed",
          "Firmware retraction speed in mm/s.", unit=MM_PER_SECOND, compat=True),
        F("unretract_extra_length", "klipper_firmware_unretract_extra_length",
          "Extra length added on unretract in mm.", unit=MILLIMETERS, compat=True),
        F("unretract_speed", "klipper_firmware_unretract_speed",
          "Firmware unretract speed in mm/s.", unit=MM_PER_SECOND, compat=True),
    ),
    bind(
        EXTRUDER_STEPPER,
        F("pressure_advance", "klipper_extruder_stepper_pressure_advance_seconds",
          "Pressure advance of an extruder_stepper.", unit=SECONDS),
        F("smooth_time", "klipper_extruder_stepper_smooth_time_seconds",
          "Pressure advance smooth time of an extruder_stepper.", unit=SECONDS),
        F("motion_queue", "klipper_extruder_stepper_motion_queue_info",
          "The extruder whose motion this extruder_stepper follows.", type=INFO,
          labels=("extruder",), read=state),
    ),
    bind(
        Z_TILT,
        F("applied", "klipper_z_tilt_applied",
          "1 when Z_TILT_ADJUST succeeded since the motors were last enabled, else 0."),
    ),
    bind(
        QUAD_GANTRY_LEVEL,
        F("applied", "klipper_quad_gantry_level_applied",
          "1 when QUAD_GANTRY_LEVEL succeeded since the motors were last enabled, else 0."),
    ),
    bind(
        BED_MESH,
        F("profile_name", "klipper_bed_mesh_profile_info",
          "The active bed mesh profile (no series when no mesh is active).", type=INFO,
          labels=("profile",), read=state),
        F("", "klipper_bed_mesh_z_min_meters",
          "Lowest Z offset of the active bed mesh (matrix=probed: probed points, "
          "mesh: interpolated).", unit=METERS, labels=("matrix",), read=mesh_stat("min"),
          requires=("probed_matrix", "mesh_matrix")),
        F("", "klipper_bed_mesh_z_max_meters",
          "Highest Z offset of the active bed mesh.", unit=METERS, labels=("matrix",),
          read=mesh_stat("max"), requires=("probed_matrix", "mesh_matrix")),
        F("", "klipper_bed_mesh_z_range_meters",
          "Z range (max - min) of the active bed mesh.", unit=METERS, labels=("matrix",),
          read=mesh_stat("range"), requires=("probed_matrix", "mesh_matrix")),
        F("", "klipper_bed_mesh_z_stddev_meters",
          "Standard deviation of the Z offsets of the active bed mesh.", unit=METERS,
          labels=("matrix",), read=mesh_stat("stddev"),
          requires=("probed_matrix", "mesh_matrix")),
        F("", "klipper_bed_mesh_points",
          "Number of points of the active bed mesh.", labels=("matrix",),
          read=mesh_points, requires=("probed_matrix", "mesh_matrix")),
    ),
)
