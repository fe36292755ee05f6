"""Creality Filament System families (the `cfs` module), from Klipper's `box` and
`filament_rack` objects on Creality K2-class printers.

Names and label keys are prometheus-klipper-exporter's `cfs` module (`compat=True`).
Creality reports many numbers as strings and "None"/"-1" on disconnected units: strings
are parsed, "None" is absent (no sample), and units whose state is "None" are skipped.
"""
from __future__ import annotations

import re
from typing import Any, Iterator, List, Tuple

from .build import INFO, ObjectKind, bind, compat, family_metrics
from .printer_readers import item_text
from .spec import Sample, number, state
from .units import CELSIUS, PERCENT
from .values import parse_number

BOX = ObjectKind("box", r"box")
FILAMENT_RACK = ObjectKind("filament_rack", r"filament_rack")

# A unit is a `T<n>` field of `box` (T1 to T4 on a K2 with four CFS units; any number is
# read). Its slots are lettered A, B, C, ... in the order of its per-slot lists.
UNIT_FIELD = re.compile(r"T[0-9]+")
SLOT_LISTS = ("material_type", "color_value", "vender", "remain_len")


def is_one(value: Any) -> Iterator[Sample]:
    v = parse_number(value)
    if v is not None:
        yield (), 1.0 if v == 1 else 0.0


def text_number(value: Any) -> Iterator[Sample]:
    v = parse_number(value)
    if v is not None:
        yield (), v


def _units(status: Any) -> List[Tuple[str, dict]]:
    """Connected units (state not "None"), in unit number order."""
    if not isinstance(status, dict):
        return []
    names = sorted((k for k in status if isinstance(k, str) and UNIT_FIELD.fullmatch(k)),
                   key=lambda k: int(k[1:]))
    out = []
    for name in names:
        unit = status[name]
        if isinstance(unit, dict) and unit.get("state") not in (None, "None"):
            out.append((name, unit))
    return out


def _slots(unit: dict) -> List[str]:
    """Slot letters of a unit: one per element of its longest per-slot list."""
    count = max((len(unit[k]) for k in SLOT_LISTS if isinstance(unit.get(k), (list, tuple))),
                default=0)
    return [chr(ord("A") + i) for i in range(min(count, 26))]


def _active(unit: dict) -> int:
    """Index of the unit's active slot (its `filament` letter), -1 when none."""
    letter = unit.get("filament")
    if isinstance(letter, str) and letter in _slots(unit):
        return ord(letter) - ord("A")
    return -1


def unit_state(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        yield (name, str(unit.get("state"))), 1.0


def unit_info(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        yield (name, str(unit.get("version") or ""), str(unit.get("sn") or ""),
               str(unit.get("mode") or "")), 1.0


def unit_number(key: str):
    def read(status: Any) -> Iterator[Sample]:
        for name, unit in _units(status):
            v = parse_number(unit.get(key))
            if v is not None:
                yield (name,), v
    return read


def active_slot(status: Any) -> Iterator[Sample]:
    """The active slot's index; no sample for a unit with none (never a -1 for "none")."""
    for name, unit in _units(status):
        i = _active(unit)
        if i >= 0:
            yield (name,), float(i)


def active_slot_info(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        i = _active(unit)
        if i >= 0:
            yield (name, chr(ord("A") + i), item_text(unit.get("material_type"), i),
                   item_text(unit.get("color_value"), i)), 1.0


def slot_info(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        for i, letter in enumerate(_slots(unit)):
            yield (name, letter, item_text(unit.get("material_type"), i),
                   item_text(unit.get("color_value"), i), item_text(unit.get("vender"), i)), 1.0


def slot_remaining(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        for i, letter in enumerate(_slots(unit)):
            v = parse_number(item_text(unit.get("remain_len"), i))
            if v is not None:
                yield (name, letter), v


def rack_loaded(status: Any) -> Iterator[Sample]:
    if isinstance(status, dict):
        material = status.get("remain_material_type")
        color = status.get("remain_material_color")
        if isinstance(material, str) or isinstance(color, str):
            yield (str(material or ""), str(color or "")), 1.0


# The per-unit families read the whole `box` status (no `requires`): which unit fields
# exist is known only from what Klippy reports.
BINDINGS = (
    bind(
        BOX,
        compat("enable", "klipper_cfs_enabled", "1 when the CFS is enabled, else 0.",
               read=is_one),
        compat("auto_refill", "klipper_cfs_auto_refill_enabled",
               "1 when CFS auto-refill is enabled, else 0.", read=is_one),
        compat("filament_useup", "klipper_cfs_filament_useup",
               "1 when the CFS reports its filament used up, else 0.", read=is_one),
        compat("state", "klipper_cfs_state_info", "CFS connection state.", type=INFO,
               labels=("state",), read=state),
        compat("filament", "klipper_cfs_active_unit",
               "CFS box.filament value (probably the active unit number; Creality does not "
               "document it).", read=text_number),
        compat("", "klipper_cfs_active_slot",
               "Active slot within each connected unit (A=0, B=1, ...; absent when none).",
               labels=("unit",), read=active_slot),
        compat("", "klipper_cfs_active_slot_info",
               "Material and color of each unit's active slot.", type=INFO,
               labels=("unit", "slot", "material", "color"), read=active_slot_info),
        compat("", "klipper_cfs_unit_state_info",
               "Connection state of each connected CFS unit.", type=INFO,
               labels=("unit", "state"), read=unit_state),
        compat("", "klipper_cfs_unit_info",
               "Firmware version, serial number and mode of each unit.", type=INFO,
               labels=("unit", "version", "sn", "mode"), read=unit_info),
        compat("", "klipper_cfs_unit_temperature_celsius", "CFS unit temperature.",
               labels=("unit",), unit=CELSIUS, read=unit_number("temperature")),
        compat("", "klipper_cfs_unit_humidity_percent",
               "CFS unit relative humidity in percent (dry_and_humidity).", labels=("unit",),
               unit=PERCENT, read=unit_number("dry_and_humidity")),
        compat("", "klipper_cfs_slot_info", "Material, color and vendor of every slot.",
               type=INFO, labels=("unit", "slot", "material", "color", "vendor"),
               read=slot_info),
        compat("", "klipper_cfs_slot_remaining",
               "Remaining filament of the slot as Creality reports it (remain_len; unit not "
               "documented).", labels=("unit", "slot"), read=slot_remaining),
    ),
    bind(
        FILAMENT_RACK,
        compat("", "klipper_cfs_rack_loaded_info",
               "Material and color of the filament loaded at the toolhead.", type=INFO,
               labels=("material", "color"), read=rack_loaded,
               requires=("remain_material_type", "remain_material_color")),
        compat("remain_material_velocity", "klipper_cfs_rack_velocity",
               "Velocity of the loaded filament as Creality reports it (unit not "
               "documented).", read=number),
    ),
)

METRICS = family_metrics(BINDINGS)
