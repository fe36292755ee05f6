"""The print job: print_stats, virtual SD card, progress, pause, idle timeout, objects."""
from __future__ import annotations

from .build import F, INFO, ObjectKind, bind
from .readers import count, equals, state
from .units import BYTES, MILLIMETERS, RATIO, SECONDS

WEBHOOKS = ObjectKind("webhooks", r"webhooks")
PRINT_STATS = ObjectKind("print_stats", r"print_stats")
VIRTUAL_SDCARD = ObjectKind("virtual_sdcard", r"virtual_sdcard")
DISPLAY_STATUS = ObjectKind("display_status", r"display_status")
IDLE_TIMEOUT = ObjectKind("idle_timeout", r"idle_timeout")
PAUSE_RESUME = ObjectKind("pause_resume", r"pause_resume")
EXCLUDE_OBJECT = ObjectKind("exclude_object", r"exclude_object")

# prometheus-klipper-exporter typed these per-print values as counters; they reset at every
# print, so they are gauges here (same names).
PER_PRINT = " Resets at every print: a gauge (the Go exporter typed it counter)."

# Klippy's own state: first in the printer module's output.
KLIPPY_STATE = bind(
    WEBHOOKS,
    F("state", "klipper_webhooks_state_info",
      "Klippy's own state as its webhooks object reports it.", type=INFO,
      labels=("state",), read=state, compat=True),
)

BINDINGS = (
    bind(
        PRINT_STATS,
        F("total_duration", "klipper_print_total_duration",
          "Time since the current print started, in seconds, pauses included." + PER_PRINT,
          unit=SECONDS, compat=True),
        F("print_duration", "klipper_print_print_duration",
          "Time spent printing the current print, in seconds (pauses and preparation "
          "excluded)." + PER_PRINT, unit=SECONDS, compat=True),
        F("filament_used", "klipper_print_filament_used",
          "Filament used by the current print, in mm." + PER_PRINT, unit=MILLIMETERS,
          compat=True),
        F("state", "klipper_print_state_info",
          "Print state (standby, printing, paused, complete, cancelled, error).", type=INFO,
          labels=("state",), read=state, compat=True),
        F("state", "klipper_printing", "1 while print_stats.state is printing, else 0.",
          read=equals("printing"), compat=True),
        F("info.current_layer", "klipper_print_current_layer",
          "Current layer of the print (SET_PRINT_STATS_INFO; absent when the slicer does not "
          "report layers)."),
        F("info.total_layer", "klipper_print_total_layers",
          "Total layers of the print (SET_PRINT_STATS_INFO; absent when unknown)."),
    ),
    bind(
        VIRTUAL_SDCARD,
        F("progress", "klipper_print_file_progress",
          "Position in the printed file as a ratio, 0 to 1." + PER_PRINT, unit=RATIO,
          compat=True),
        F("file_position", "klipper_print_file_position",
          "Position in the printed file in bytes." + PER_PRINT, unit=BYTES, compat=True),
        F("is_active", "klipper_sdcard_active",
          "1 while the virtual SD card is printing a file, else 0.", compat=True),
        F("file_size", "klipper_print_file_size_bytes",
          "Size of the file loaded on the virtual SD card (0 when none).", unit=BYTES),
    ),
    bind(
        DISPLAY_STATUS,
        F("progress", "klipper_print_gcode_progress",
          "Print progress as a ratio, 0 to 1 (M73 or file position)." + PER_PRINT,
          unit=RATIO, compat=True),
    ),
    bind(
        IDLE_TIMEOUT,
        F("printing_time", "klipper_printing_time",
          "Seconds the printer has been busy (idle_timeout state Printing); 0 otherwise."
          + PER_PRINT, unit=SECONDS, compat=True),
        F("state", "klipper_idle_timeout_state_info",
          "idle_timeout state (Idle, Ready, Printing).", type=INFO, labels=("state",),
          read=state, compat=True),
    ),
    bind(
        PAUSE_RESUME,
        F("is_paused", "klipper_pause_resume_is_paused",
          "1 while the print is paused, else 0.", compat=True),
    ),
    bind(
        EXCLUDE_OBJECT,
        F("objects", "klipper_print_objects",
          "Objects defined in the current print (EXCLUDE_OBJECT_DEFINE).", read=count),
        F("excluded_objects", "klipper_print_excluded_objects",
          "Objects excluded from the current print.", read=count),
    ),
)
