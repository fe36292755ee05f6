"""Creality Filament System families (the `cfs` module), from Klipper's `box` and
`filament_rack` objects on Creality K2-class printers.

Names and label keys are prometheus-klipper-exporter's `cfs` module (`compat=True`).
Creality reports many numbers as strings and "None"/"-1" on disconnected units: strings
are parsed, "None" is absent (no sample), and units whose state is "None" are skipped.
"""
from __future__ import annotations

from typing import Any, Iterator, List, Optional, Tuple

from .build import F, INFO, ObjectKind, bind
from .printer import family_metrics
from .spec import Sample, number

BOX = ObjectKind("box", r"box")
FILAMENT_RACK = ObjectKind("filament_rack", r"filament_rack")

UNITS = ("T1", "T2", "T3", "T4")
SLOTS = ("A", "B", "C", "D")


def parse_number(value: Any) -> Optional[float]:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value not in ("", "None"):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def is_one(value: Any) -> Iterator[Sample]:
    v = parse_number(value)
    if v is not None:
        yield (), 1.0 if v == 1 else 0.0


def text_number(value: Any) -> Iterator[Sample]:
    v = parse_number(value)
    if v is not None:
        yield (), v


def _units(status: Any) -> List[Tuple[str, dict]]:
    if not isinstance(status, dict):
        return []
    out = []
    for name in UNITS:
        unit = status.get(name)
        if isinstance(unit, dict) and unit.get("state") not in (None, "None"):
            out.append((name, unit))
    return out


def _slot_text(unit: dict, key: str, i: int) -> str:
    items = unit.get(key)
    if isinstance(items, (list, tuple)) and i < len(items) and items[i] is not None:
        return str(items[i])
    return ""


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
        letter = unit.get("filament")
        if letter in SLOTS:
            yield (name,), float(SLOTS.index(letter))


def active_slot_info(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        letter = unit.get("filament")
        if letter in SLOTS:
            i = SLOTS.index(letter)
            yield (name, letter, _slot_text(unit, "material_type", i),
                   _slot_text(unit, "color_value", i)), 1.0


def slot_info(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        for i, letter in enumerate(SLOTS):
            yield (name, letter, _slot_text(unit, "material_type", i),
                   _slot_text(unit, "color_value", i), _slot_text(unit, "vender", i)), 1.0


def slot_remaining(status: Any) -> Iterator[Sample]:
    for name, unit in _units(status):
        for i, letter in enumerate(SLOTS):
            v = parse_number(_slot_text(unit, "remain_len", i))
            if v is not None:
                yield (name, letter), v


def rack_loaded(status: Any) -> Iterator[Sample]:
    if isinstance(status, dict):
        material = status.get("remain_material_type")
        color = status.get("remain_material_color")
        if isinstance(material, str) or isinstance(color, str):
            yield (str(material or ""), str(color or "")), 1.0


def _c(path: str, name: str, help: str, **kw: Any) -> F:
    return F(path, name, help, compat=True, **kw)


_PER_UNIT = ("T1", "T2", "T3", "T4")

BINDINGS = (
    bind(
        BOX,
        _c("enable", "klipper_cfs_enabled", "1 when the CFS is enabled, else 0.", read=is_one),
        _c("auto_refill", "klipper_cfs_auto_refill_enabled",
           "1 when CFS auto-refill is enabled, else 0.", read=is_one),
        _c("filament_useup", "klipper_cfs_filament_useup",
           "1 when the CFS reports its filament used up, else 0.", read=is_one),
        _c("state", "klipper_cfs_state_info", "CFS connection state.", type=INFO,
           labels=("state",), read=lambda v: (((v,), 1.0),) if isinstance(v, str) else ()),
        _c("filament", "klipper_cfs_active_unit",
           "CFS box.filament value (probably the active unit number; Creality does not "
           "document it).", read=text_number),
        _c("", "klipper_cfs_active_slot",
           "Active slot within each connected unit (A=0 .. D=3; absent when none).",
           labels=("unit",),
           read=active_slot, requires=_PER_UNIT),
        _c("", "klipper_cfs_active_slot_info", "Material and color of each unit's active slot.",
           type=INFO, labels=("unit", "slot", "material", "color"), read=active_slot_info,
           requires=_PER_UNIT),
        _c("", "klipper_cfs_unit_state_info", "Connection state of each connected CFS unit.",
           type=INFO, labels=("unit", "state"), read=unit_state, requires=_PER_UNIT),
        _c("", "klipper_cfs_unit_info", "Firmware version, serial number and mode of each unit.",
           type=INFO, labels=("unit", "version", "sn", "mode"), read=unit_info,
           requires=_PER_UNIT),
        _c("", "klipper_cfs_unit_temperature_celsius", "CFS unit temperature.",
           labels=("unit",), unit="celsius", read=unit_number("temperature"),
           requires=_PER_UNIT),
        _c("", "klipper_cfs_unit_humidity_percent",
           "CFS unit relative humidity in percent (dry_and_humidity).", labels=("unit",),
           unit="percent", read=unit_number("dry_and_humidity"), requires=_PER_UNIT),
        _c("", "klipper_cfs_slot_info", "Material, color and vendor of every slot.",
           type=INFO, labels=("unit", "slot", "material", "color", "vendor"),
           read=slot_info, requires=_PER_UNIT),
        _c("", "klipper_cfs_slot_remaining",
           "Remaining filament of the slot as Creality reports it (remain_len; unit not "
           "documented).", labels=("unit", "slot"), read=slot_remaining, requires=_PER_UNIT),
    ),
    bind(
        FILAMENT_RACK,
        _c("", "klipper_cfs_rack_loaded_info",
           "Material and color of the filament loaded at the toolhead.", type=INFO,
           labels=("material", "color"), read=rack_loaded,
           requires=("remain_material_type", "remain_material_color")),
        _c("remain_material_velocity", "klipper_cfs_rack_velocity",
           "Velocity of the loaded filament as Creality reports it (unit not documented).",
           read=number),
    ),
)

METRICS = family_metrics(BINDINGS)
