"""Custom readers for derived printer values.

A reader takes one status value (or, for an empty field path, the object's whole status)
and yields `(extra label values, value)` samples. A value Klipper does not report (None,
absent, the wrong type) yields nothing: never a 0 standing in for "unknown".
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, List, Optional, Sequence

from .spec import Reader, Sample, number
from .values import as_flag_or_number

# Klipper's scripts/graphstats.py: load = (task_avg + 3 * task_stddev) / 0.0025 and the MCU
# awake time is reported over a 5 second window.
MCU_LOAD_INTERVAL = 0.0025
MCU_AWAKE_WINDOW = 5.0


def _get(status: Any, key: str) -> Optional[float]:
    if isinstance(status, dict):
        return as_flag_or_number(status.get(key))
    return None


def first_of(*keys: str, factor: float = 1.0) -> Reader:
    """The first of several fields present in a dict value (a field Klipper renamed)."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, dict):
            for key in keys:
                v = as_flag_or_number(value.get(key))
                if v is not None:
                    yield (), v * factor
                    return
    return read


def mcu_load(last_stats: Any) -> Iterator[Sample]:
    if not _mcu_reported(last_stats):
        return
    avg, stddev = _get(last_stats, "mcu_task_avg"), _get(last_stats, "mcu_task_stddev")
    if avg is not None and stddev is not None:
        yield (), (avg + 3.0 * stddev) / MCU_LOAD_INTERVAL


def mcu_awake(last_stats: Any) -> Iterator[Sample]:
    if not _mcu_reported(last_stats):
        return
    awake = _get(last_stats, "mcu_awake")
    if awake is not None:
        yield (), awake / MCU_AWAKE_WINDOW


def mcu_info(status: Any) -> Iterator[Sample]:
    """(version, build_versions, mcu_type) of an MCU that reported its identity."""
    if not isinstance(status, dict):
        return
    version = status.get("mcu_version")
    if not isinstance(version, str):
        return
    build = status.get("mcu_build_versions")
    constants = status.get("mcu_constants")
    mcu_type = constants.get("MCU") if isinstance(constants, dict) else None
    yield (version, build if isinstance(build, str) else "",
           mcu_type if isinstance(mcu_type, str) else ""), 1.0


def homed_axes(value: Any) -> Iterator[Sample]:
    """One series per homed axis letter."""
    if isinstance(value, str):
        for axis in value:
            yield (axis,), 1.0


def max_accel_to_decel(status: Any) -> Iterator[Sample]:
    """Klipper before 2024 reports it; later ones derive it from minimum_cruise_ratio."""
    direct = _get(status, "max_accel_to_decel")
    if direct is not None:
        yield (), direct
        return
    accel, ratio = _get(status, "max_accel"), _get(status, "minimum_cruise_ratio")
    if accel is not None and ratio is not None:
        yield (), accel * (1.0 - ratio)


def tmc_enabled(status: Any) -> Iterator[Sample]:
    """1 while Klipper polls the driver (drv_status is reported), 0 when it does not."""
    if isinstance(status, dict) and "drv_status" in status:
        yield (), 0.0 if status["drv_status"] is None else 1.0


def item_text(items: Any, index: int) -> str:
    """Element `index` of a list value as text; "" when the list has none (or None)."""
    if isinstance(items, (list, tuple)) and index < len(items) and items[index] is not None:
        return str(items[index])
    return ""


def count(value: Any) -> Iterator[Sample]:
    """The number of items of a list (or dict) value."""
    if isinstance(value, (list, tuple, dict)):
        yield (), float(len(value))


def _flatten(matrix: Any) -> List[float]:
    values: List[float] = []
    if isinstance(matrix, (list, tuple)):
        for row in matrix:
            if isinstance(row, (list, tuple)):
                for v in row:
                    n = as_flag_or_number(v)
                    if n is not None and math.isfinite(n):
                        values.append(n)
    return values


def _stat(name: str, values: Sequence[float]) -> float:
    if name == "min":
        return min(values)
    if name == "max":
        return max(values)
    if name == "range":
        return max(values) - min(values)
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def mesh_stat(stat: str, factor: float = 0.001) -> Reader:
    """min/max/range/stddev of bed_mesh probed_matrix and mesh_matrix (mm -> m)."""
    def read(status: Any) -> Iterator[Sample]:
        if not isinstance(status, dict):
            return
        for label, key in (("probed", "probed_matrix"), ("mesh", "mesh_matrix")):
            values = _flatten(status.get(key))
            if values:
                yield (label,), _stat(stat, values) * factor
    return read


def mesh_points(status: Any) -> Iterator[Sample]:
    if not isinstance(status, dict):
        return
    for label, key in (("probed", "probed_matrix"), ("mesh", "mesh_matrix")):
        values = _flatten(status.get(key))
        if values:
            yield (label,), float(len(values))


def _input_shaper(settings: Any) -> Dict[str, Any]:
    if isinstance(settings, dict):
        section = settings.get("input_shaper")
        if isinstance(section, dict):
            return section
    return {}


def shaper_value(option: str, axis: str) -> Reader:
    """[input_shaper] `option_<axis>` from configfile.settings (Klipper has no live status)."""
    def read(settings: Any) -> Iterator[Sample]:
        section = _input_shaper(settings)
        key = f"{option}_{axis}"
        if key in section:
            yield from number(section[key])
    return read


def shaper_types(settings: Any) -> Iterator[Sample]:
    section = _input_shaper(settings)
    if not section:
        return
    for axis in ("x", "y"):
        shaper = section.get(f"shaper_type_{axis}", section.get("shaper_type"))
        if isinstance(shaper, str) and shaper:
            yield (axis, shaper), 1.0


def bool_flag(value: Any) -> Iterator[Sample]:
    """A value whose truth matters (e.g. an endstop's last query result)."""
    if value is None:
        return
    if isinstance(value, (bool, int, float)):
        yield (), 1.0 if value else 0.0


def truthy_mapping(value: Any) -> Iterator[Sample]:
    """A dict of truth values, one 0/1 sample per key labelled with the key."""
    if isinstance(value, dict):
        for key, v in value.items():
            for _, flag in bool_flag(v):
                yield (str(key),), flag


def axes(*keys: str, factor: float = 1.0) -> Reader:
    """List components labelled by axis name, scaled (e.g. mm to m)."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, (list, tuple)):
            for key, item_value in zip(keys, value):
                v = as_flag_or_number(item_value)
                if v is not None:
                    yield (key,), v * factor
    return read


def positive(value: Any) -> Iterator[Sample]:
    """A value that is 0 only before Klipper first measured it (e.g. MemAvailable)."""
    v = as_flag_or_number(value)
    if v is not None and v > 0:
        yield (), v


def measured(which: str) -> Reader:
    """measured_min_temp (`which` "min") or measured_max_temp ("max") of a status dict, in
    degrees Celsius, only when it is a temperature Klipper measured, never a start value.

    Klippy seeds both extremes and lets each reading widen them: temperature_sensor,
    temperature_probe and newer Klipper's z_thermal_adjust start the lowest at 99999999 and
    the highest at 0; the z_thermal_adjust of Klipper 0.12 and Kalico starts both at 0;
    third-party sensor modules use pairs such as 9999 and -273.15. The rule, right for
    every seed pair seen:
    - while the lowest is above the highest nothing was measured: neither is served (a
      reading makes lowest <= highest at once);
    - an extreme of exactly 0.0 is a start value: readings all below 0 leave the highest
      at 0 (a garage sensor reading -3 then -1 °C has no highest reading of 0), readings
      all above 0 leave an old z_thermal_adjust's lowest at 0. temperature_sensor skips
      readings of 0.0 for both, so a true 0.0 is lost only where Klipper's rounding to
      0.01 makes a reading within 0.005 °C of 0 (as `reading` loses a true 0.00).
    Missing or non-numeric fields yield nothing."""
    if which not in ("min", "max"):
        raise ValueError(f"measured: which must be 'min' or 'max', not {which!r}")

    def read(status: Any) -> Iterator[Sample]:
        low, high = _get(status, "measured_min_temp"), _get(status, "measured_max_temp")
        if low is None or high is None or low > high:
            return
        v = low if which == "min" else high
        if v != 0.0:
            yield (), v
    return read


def scaled_positive(factor: float) -> Reader:
    def read(value: Any) -> Iterator[Sample]:
        for labels, v in positive(value):
            yield labels, v * factor
    return read


def reading(value: Any) -> Iterator[Sample]:
    """A sensor value Klipper reports as exactly 0.0 until the first reading (and after a
    failed read): heaters, temperature_fan, temperature_host, temperature_combined, lm75,
    bme280, htu21d, aht10, sht3x and z_thermal_adjust all start at 0.0, and Klipper's own
    temperature_sensor ignores a reading of 0.0 for its min/max. A true 0.00 is lost; a
    0 standing for "not read yet" is worse (a cold dip at every Klippy restart)."""
    v = as_flag_or_number(value)
    if v is not None and v != 0.0:
        yield (), v


def scaled_reading(factor: float) -> Reader:
    """`reading`, converted to base units (e.g. percent to ratio)."""
    def read(value: Any) -> Iterator[Sample]:
        for labels, v in reading(value):
            yield labels, v * factor
    return read


def mcu_task_stat(key: str) -> Reader:
    """A field of an MCU's last_stats fed by the MCU's own stats message (mcu_awake,
    mcu_task_avg, mcu_task_stddev): Klippy reports them as 0 until the MCU sent its first
    stats (every few seconds), and a running MCU's task_avg is never exactly 0."""
    def read(last_stats: Any) -> Iterator[Sample]:
        if _mcu_reported(last_stats):
            v = _get(last_stats, key)
            if v is not None:
                yield (), v
    return read


def _mcu_reported(last_stats: Any) -> bool:
    avg = _get(last_stats, "mcu_task_avg")
    return avg is not None and avg != 0.0


def homed_axes_position(*keys: str, factor: float = 1.0, homed_path: str = "homed_axes",
                        position_path: str = "position") -> Reader:
    """A position list labelled by axis, each of x, y, z only while that axis is homed.

    Klipper reports 0 for an axis it has not homed (after a restart, or once motors are
    off): a placeholder, not where the toolhead is. Axes without homing (e) always count.
    `homed_path` and `position_path` name the fields in the status the reader gets.
    """
    def read(status: Any) -> Iterator[Sample]:
        if not isinstance(status, dict):
            return
        homed = status.get(homed_path)
        position = status.get(position_path)
        if not isinstance(homed, str) or not isinstance(position, (list, tuple)):
            return
        for key, value in zip(keys, position):
            v = as_flag_or_number(value)
            if v is not None and (key not in "xyz" or key in homed):
                yield (key,), v * factor
    return read


def homed_axis_item(index: int, axis: str, homed_path: str, position_path: str) -> Reader:
    """One element of a position list, unlabelled, only while `axis` (x, y, z) is homed."""
    def read(status: Any) -> Iterator[Sample]:
        if not isinstance(status, dict):
            return
        homed = status.get(homed_path)
        position = status.get(position_path)
        if isinstance(homed, str) and axis in homed \
                and isinstance(position, (list, tuple)) and len(position) > index:
            v = as_flag_or_number(position[index])
            if v is not None:
                yield (), v
    return read


def probe_triggered(status: Any) -> Iterator[Sample]:
    """probe.last_query, absent while the probe never ran: Klipper starts it False (with
    last_z_result 0.0) before any QUERY_PROBE or probing move."""
    if not isinstance(status, dict):
        return
    query = status.get("last_query")
    if query is None or (query is False and _get(status, "last_z_result") == 0.0):
        return
    yield from bool_flag(query)
