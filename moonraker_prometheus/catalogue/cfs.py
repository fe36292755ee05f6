"""Creality Filament System families (the `cfs` module), from Klipper's `box` and
`filament_rack` objects on Creality K2-class printers.

Names and label keys are prometheus-klipper-exporter's `cfs` module (`compat=True`).
Creality reports many numbers as strings and "None"/"-1" on disconnected units: strings
are parsed, "None" is absent (no sample), and units whose state is "None" are skipped.
"""
from __future__ import annotations

from .build import INFO, F, ObjectKind, bind, family_metrics
from .readers import (active_slot, active_slot_info, is_one, number, rack_loaded, slot_info,
                      slot_remaining, state, text_number, unit_info, unit_number, unit_state)
from .units import CELSIUS, PERCENT

BOX = ObjectKind("box", r"box")
FILAMENT_RACK = ObjectKind("filament_rack", r"filament_rack")

# The per-unit families read the whole `box` status (no `requires`): which unit fields
# exist is known only from what Klippy reports.
BINDINGS = (
    bind(
        BOX,
        F("enable", "klipper_cfs_enabled", "1 when the CFS is enabled, else 0.",
          read=is_one, compat=True),
        F("auto_refill", "klipper_cfs_auto_refill_enabled",
          "1 when CFS auto-refill is enabled, else 0.", read=is_one, compat=True),
        F("filament_useup", "klipper_cfs_filament_useup",
          "1 when the CFS reports its filament used up, else 0.", read=is_one, compat=True),
        F("state", "klipper_cfs_state_info", "CFS connection state.", type=INFO,
          labels=("state",), read=state, compat=True),
        F("filament", "klipper_cfs_active_unit",
          "CFS box.filament value (probably the active unit number; Creality does not "
          "document it).", read=text_number, compat=True),
        F("", "klipper_cfs_active_slot",
          "Active slot within each connected unit (A=0, B=1, ...; absent when none).",
          labels=("unit",), read=active_slot, compat=True),
        F("", "klipper_cfs_active_slot_info",
          "Material and color of each unit's active slot.", type=INFO,
          labels=("unit", "slot", "material", "color"), read=active_slot_info, compat=True),
        F("", "klipper_cfs_unit_state_info",
          "Connection state of each connected CFS unit.", type=INFO,
          labels=("unit", "state"), read=unit_state, compat=True),
        F("", "klipper_cfs_unit_info",
          "Firmware version, serial number and mode of each unit.", type=INFO,
          labels=("unit", "version", "sn", "mode"), read=unit_info, compat=True),
        F("", "klipper_cfs_unit_temperature_celsius", "CFS unit temperature.",
          labels=("unit",), unit=CELSIUS, read=unit_number("temperature"), compat=True),
        F("", "klipper_cfs_unit_humidity_percent",
          "CFS unit relative humidity in percent (dry_and_humidity).", labels=("unit",),
          unit=PERCENT, read=unit_number("dry_and_humidity"), compat=True),
        F("", "klipper_cfs_slot_info", "Material, color and vendor of every slot.",
          type=INFO, labels=("unit", "slot", "material", "color", "vendor"),
          read=slot_info, compat=True),
        F("", "klipper_cfs_slot_remaining",
          "Remaining filament of the slot as Creality reports it (remain_len; unit not "
          "documented).", labels=("unit", "slot"), read=slot_remaining, compat=True),
    ),
    bind(
        FILAMENT_RACK,
        F("", "klipper_cfs_rack_loaded_info",
          "Material and color of the filament loaded at the toolhead.", type=INFO,
          labels=("material", "color"), read=rack_loaded,
          requires=("remain_material_type", "remain_material_color"), compat=True),
        F("remain_material_velocity", "klipper_cfs_rack_velocity",
          "Velocity of the loaded filament as Creality reports it (unit not "
          "documented).", read=number, compat=True),
    ),
)

METRICS = family_metrics(BINDINGS)
