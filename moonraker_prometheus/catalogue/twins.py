"""Compat families that have a twin following today's naming rules, and how the two relate.

prometheus-klipper-exporter's names (`compat=True`) stay for its dashboards; where a family
under today's rules (base units, unit suffix) carries the same quantity, the compat family's
HELP names it (`prefer()`) and docs/metrics.md lists the pairs. Found by comparing every
compat family's source (object and field) with the other families'; these are all of them:

- the MCU's awake time: the same `last_stats.mcu_awake`, as seconds and as a ratio;
- the G-code position: `gcode_move.gcode_position` is `toolhead.position` before the G-code
  offset, G92 shifts and move transforms (Klipper's gcode_move: last_position -
  base_position; bed_mesh and skew_correction transform the move on its way to the toolhead).

Not twins, although the names look alike: `klipper_mcu_clock_frequency` (`freq`, the MCU's
clock against the host's) and `klipper_mcu_adjusted_clock_frequency_hertz` (`adj`, a
secondary MCU's clock against the main MCU's), and `klipper_gcode_position_e` (reset by
every G92 E0) and the toolhead's `e` position. Nor is `klipper_system_memory_available`
(Moonraker's reading of MemAvailable, in kB) preferable to
`klipper_klippy_host_memory_available_bytes` (Klippy's reading, gone while Klippy is down).
"""
from __future__ import annotations

from typing import Dict, NamedTuple


class Twin(NamedTuple):
    """The family to prefer over a compat family: its name, the label matchers that pick
    the same series ('' for all) and how its value relates to the compat family's."""
    family: str
    selector: str
    relation: str


def _position(axis: str) -> Twin:
    return Twin("klipper_toolhead_position_meters", f'axis="{axis}"',
                "the toolhead's position in meters, with the G-code offset, G92 shifts and move "
                "transforms (bed mesh, skew correction) applied")


TWINS: Dict[str, Twin] = {
    "klipper_mcu_awake": Twin("klipper_mcu_awake_ratio", "",
                              "the same time as a fraction of the 5 s window"),
    "klipper_gcode_position_x": _position("x"),
    "klipper_gcode_position_y": _position("y"),
    "klipper_gcode_position_z": _position("z"),
}


def series(twin: Twin) -> str:
    """The twin as a series selector: `name{matchers}` or `name`."""
    return f"{twin.family}{{{twin.selector}}}" if twin.selector else twin.family


def prefer(compat_name: str) -> str:
    """The sentence a compat family's HELP ends with: the twin to prefer and how it relates.
    KeyError for a family without a twin."""
    twin = TWINS[compat_name]
    return f" New dashboards: prefer {series(twin)}, {twin.relation}."
