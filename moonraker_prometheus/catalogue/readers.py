"""Every reader of the catalogue: how one status value becomes samples, and what is dropped.

A reader takes one status value (for a field with an empty path, the object's whole status,
a dict) and yields `(extra label values, value)` samples. What a reader does not yield is
absent from the output: a value Klipper does not report (None, a missing key, the wrong
type) and a value that stands for "not measured yet" (Klipper's 0.0 before a sensor's first
reading, Happy Hare's -1) yield nothing, never a 0 or a sentinel standing for "unknown".

Readers are named by what they keep, so that what they drop is plain: `number` drops what
is not a number, `nonzero` drops 0.0, `not_minus_one` drops -1; the derived readers are
named by the value they compute and their docstrings say what they drop. Combinators
(`scaled`, `per_key`, `per_index`) take the reader of one element. Numbers go through
`values.py`, the one place that decides what counts as a number. Sections: generic
readers, Klipper's objects, Happy Hare's `mmu` objects, Creality's `box` and
`filament_rack`.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from .values import as_flag_or_number, parse_number

Sample = Tuple[Tuple[str, ...], float]  # (extra label values, value)
Reader = Callable[[Any], Iterable[Sample]]


def _get(status: Any, key: str) -> Optional[float]:
    """A number (or flag) field of a dict status; None when absent or not a number."""
    if isinstance(status, dict):
        return as_flag_or_number(status.get(key))
    return None


# ----- generic readers -----

def number(value: Any) -> Iterator[Sample]:
    """A number or a bool (1.0 / 0.0), unlabelled; drops everything else (None, text,
    lists, dicts): Klipper's status fields are numbers and bools, and anything else says
    nothing about the quantity, so it is absent, never 0."""
    v = as_flag_or_number(value)
    if v is not None:
        yield (), v


def nonzero(value: Any) -> Iterator[Sample]:
    """A number, unlabelled; drops exactly 0.0 (and what `number` drops). Klipper reports
    0.0 until a sensor's first reading and after a failed read: heaters, temperature_fan,
    temperature_host, temperature_combined, lm75, bme280 (pressure, gas), htu21d, aht10,
    sht3x, z_thermal_adjust and probe.last_z_result all start at 0.0, Klipper's own
    temperature_sensor ignores a reading of 0.0 for its min/max, and system_stats reports
    cputime and memavail as 0 before its first 1 s timer. A true 0.00 is lost; a 0
    standing for "not read yet" is worse (a cold dip at every Klippy restart)."""
    v = as_flag_or_number(value)
    if v is not None and v != 0.0:
        yield (), v


def positive(value: Any) -> Iterator[Sample]:
    """A number above 0, unlabelled; drops 0 and below, NaN (and what `number` drops). For
    values that cannot be negative, where Klipper reports 0 before its first reading:
    system_stats' cputime and memavail before its first 1 s timer, a BME280's pressure and
    gas resistance before the first conversion (unlike a temperature, which `nonzero`
    keeps below 0)."""
    v = as_flag_or_number(value)
    if v is not None and v > 0:
        yield (), v


UNKNOWN = -1.0  # Happy Hare's *_UNKNOWN constants, and its "not set"


def not_minus_one(value: Any) -> Iterator[Sample]:
    """A number, unlabelled; drops -1 (and what `number` drops). Happy Hare reports -1 for
    "unknown" or "not set": TOOL_GATE_UNKNOWN, GATE_UNKNOWN, UNIT_UNKNOWN,
    FILAMENT_POS_UNKNOWN, an unset spool ID, no bowden move."""
    for labels, v in number(value):
        if v != UNKNOWN:
            yield labels, v


def scaled(factor: float, read: Reader = number) -> Reader:
    """What `read` yields, each value multiplied by `factor` (to base units: percent to
    ratio 0.01, mm to m 0.001, hPa to Pa 100, kB to bytes 1024); drops what `read` drops."""
    def read_scaled(value: Any) -> Iterator[Sample]:
        for labels, v in read(value):
            yield labels, v * factor
    return read_scaled


def bool_flag(value: Any) -> Iterator[Sample]:
    """A value whose truth matters (e.g. an endstop's last query result): 1.0 when truthy,
    0.0 when not, unlabelled; drops None and what is neither a bool nor a number."""
    if value is None:
        return
    if isinstance(value, (bool, int, float)):
        yield (), 1.0 if value else 0.0


def equals(expected: str) -> Reader:
    """1 when a text field equals `expected`, else 0, unlabelled; drops what is not text."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, str):
            yield (), 1.0 if value == expected else 0.0
    return read


def state(value: Any) -> Iterator[Sample]:
    """A text field as an info series labelled with the text (value 1); drops empty text
    (it says nothing) and what is not text."""
    if isinstance(value, str) and value:
        yield (value,), 1.0


def count(value: Any) -> Iterator[Sample]:
    """The number of items of a list (or dict) value, unlabelled; drops what is neither."""
    if isinstance(value, (list, tuple, dict)):
        yield (), float(len(value))


def first_of(*keys: str) -> Reader:
    """The first of several number fields present in a dict value (a field Klipper
    renamed, e.g. stalled_bytes to upcoming_bytes in 2023); drops a dict with none."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, dict):
            for key in keys:
                v = as_flag_or_number(value.get(key))
                if v is not None:
                    yield (), v
                    return
    return read


def item(index: int) -> Reader:
    """Element `index` of a list value as `number` reads it, unlabelled; drops a shorter
    list and what is not a list."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, (list, tuple)) and len(value) > index:
            yield from number(value[index])
    return read


def axes(*keys: str, factor: float = 1.0) -> Reader:
    """A list value labelled by axis name (`keys` in list order), each number multiplied by
    `factor` (e.g. mm to m); drops the elements that are not numbers."""
    def read(value: Any) -> Iterator[Sample]:
        if isinstance(value, (list, tuple)):
            for key, item_value in zip(keys, value):
                v = as_flag_or_number(item_value)
                if v is not None:
                    yield (key,), v * factor
    return read


def per_key(read: Reader) -> Reader:
    """A dict value, each entry read by `read` and labelled with its key (e.g. stepper_enable
    steppers, a TMC driver's drv_status fields); drops what `read` drops, and a non-dict."""
    def read_dict(value: Any) -> Iterator[Sample]:
        if isinstance(value, dict):
            for key, item_value in value.items():
                for labels, v in read(item_value):
                    yield (str(key),) + labels, v
    return read_dict


def per_index(read: Reader = number) -> Reader:
    """A list value, each element read by `read` and labelled with its index (Happy Hare's
    per-gate and per-tool lists); drops what `read` drops, and a non-list."""
    def read_list(value: Any) -> Iterator[Sample]:
        if isinstance(value, (list, tuple)):
            for i, item_value in enumerate(value):
                for labels, v in read(item_value):
                    yield (str(i),) + labels, v
    return read_list


def item_text(items: Any, index: int) -> str:
    """Element `index` of a list value as text; "" when the list has none (or None).
    A label value, not a reader."""
    if isinstance(items, (list, tuple)) and index < len(items) and items[index] is not None:
        return str(items[index])
    return ""


# ----- Klipper's objects -----

# Klipper's scripts/graphstats.py: load = (task_avg + 3 * task_stddev) / 0.0025 and the MCU
# awake time is reported over a 5 second window.
MCU_LOAD_INTERVAL = 0.0025
MCU_AWAKE_WINDOW = 5.0


def _mcu_reported(last_stats: Any) -> bool:
    avg = _get(last_stats, "mcu_task_avg")
    return avg is not None and avg != 0.0


def mcu_task_stat(key: str) -> Reader:
    """Field `key` of an MCU's last_stats dict fed by the MCU's own stats message
    (mcu_awake, mcu_task_avg, mcu_task_stddev), unlabelled; drops it until the MCU sent
    its first stats: Klippy reports them as 0 until then (every few seconds), and a
    running MCU's task_avg is never exactly 0."""
    def read(last_stats: Any) -> Iterator[Sample]:
        if _mcu_reported(last_stats):
            v = _get(last_stats, key)
            if v is not None:
                yield (), v
    return read


def mcu_load(last_stats: Any) -> Iterator[Sample]:
    """An MCU's load from its last_stats dict as graphstats computes it:
    (mcu_task_avg + 3 * mcu_task_stddev) / 0.0025; dropped as `mcu_task_stat` drops."""
    if not _mcu_reported(last_stats):
        return
    avg, stddev = _get(last_stats, "mcu_task_avg"), _get(last_stats, "mcu_task_stddev")
    if avg is not None and stddev is not None:
        yield (), (avg + 3.0 * stddev) / MCU_LOAD_INTERVAL


def mcu_awake(last_stats: Any) -> Iterator[Sample]:
    """The fraction of time an MCU was awake, from its last_stats dict: mcu_awake over
    Klipper's 5 s window; dropped as `mcu_task_stat` drops."""
    if not _mcu_reported(last_stats):
        return
    awake = _get(last_stats, "mcu_awake")
    if awake is not None:
        yield (), awake / MCU_AWAKE_WINDOW


def mcu_info(status: Any) -> Iterator[Sample]:
    """(version, build_versions, mcu_type) of an MCU's whole status, value 1; drops an MCU
    without a text mcu_version (it has not reported its identity). A missing build or type
    is an empty label."""
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


def after_first_system_stats(key: str) -> Reader:
    """Field `key` of system_stats' whole status as `number` reads it; drops it until
    Klippy's 1 s stats timer first ran (cputime > 0): system_stats fields are 0 before."""
    def read(status: Any) -> Iterator[Sample]:
        if isinstance(status, dict) and isinstance(status.get("cputime"), (int, float)) \
                and status["cputime"] > 0:
            yield from number(status.get(key))
    return read


def tmc_enabled(status: Any) -> Iterator[Sample]:
    """1 while Klipper polls a TMC driver (drv_status is reported), 0 when drv_status is
    None (the stepper is disabled); drops a status without drv_status."""
    if isinstance(status, dict) and "drv_status" in status:
        yield (), 0.0 if status["drv_status"] is None else 1.0


def probe_triggered(status: Any) -> Iterator[Sample]:
    """probe.last_query as `bool_flag` reads it; drops it while the probe never ran:
    Klipper starts it False (with last_z_result 0.0) before any QUERY_PROBE or probing
    move."""
    if not isinstance(status, dict):
        return
    query = status.get("last_query")
    if query is None or (query is False and _get(status, "last_z_result") == 0.0):
        return
    yield from bool_flag(query)


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
      0.01 makes a reading within 0.005 °C of 0 (as `nonzero` loses a true 0.00).
    Missing or non-numeric fields yield nothing. ValueError for another `which`."""
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


def homed_axes(value: Any) -> Iterator[Sample]:
    """toolhead.homed_axes ("xyz", "xy", ...) as one series per homed axis letter (value
    1); drops what is not text (no axis homed: "" gives no series)."""
    if isinstance(value, str):
        for axis in value:
            yield (axis,), 1.0


def homed_axes_position(*keys: str, factor: float = 1.0, homed_path: str = "homed_axes",
                        position_path: str = "position") -> Reader:
    """A position list labelled by axis (`keys` in list order), multiplied by `factor`;
    drops x, y and z while that axis is not homed, and elements that are not numbers.

    Klipper reports 0 for an axis it has not homed (after a restart, or once motors are
    off): a placeholder, not where the toolhead is. Axes without homing (e) always count.
    `homed_path` and `position_path` name the fields in the status the reader gets (the
    object's own, or another object's under "object.field" as `F(context=...)` adds it).
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
    """Element `index` of a position list, unlabelled; drops it while `axis` (x, y, z) is
    not homed (Klipper's placeholder 0, as `homed_axes_position` says)."""
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


def max_accel_to_decel(status: Any) -> Iterator[Sample]:
    """toolhead's max_accel_to_decel, which Klipper before 2024 reports; later ones derive
    it from max_accel * (1 - minimum_cruise_ratio). Drops a status with neither."""
    direct = _get(status, "max_accel_to_decel")
    if direct is not None:
        yield (), direct
        return
    accel, ratio = _get(status, "max_accel"), _get(status, "minimum_cruise_ratio")
    if accel is not None and ratio is not None:
        yield (), accel * (1.0 - ratio)


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


_MATRICES = (("probed", "probed_matrix"), ("mesh", "mesh_matrix"))


def mesh_stat(stat: str, factor: float = 0.001) -> Reader:
    """min/max/range/stddev of bed_mesh's probed_matrix and mesh_matrix (lists of rows, in
    mm; times `factor`, mm to m), labelled probed or mesh; drops non-finite points and a
    matrix without any (Klipper reports [[]] while no mesh is loaded)."""
    def read(status: Any) -> Iterator[Sample]:
        if not isinstance(status, dict):
            return
        for label, key in _MATRICES:
            values = _flatten(status.get(key))
            if values:
                yield (label,), _stat(stat, values) * factor
    return read


def mesh_points(status: Any) -> Iterator[Sample]:
    """The number of finite points of bed_mesh's probed_matrix and mesh_matrix, labelled
    probed or mesh; drops a matrix without any (no mesh loaded)."""
    if not isinstance(status, dict):
        return
    for label, key in _MATRICES:
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
    """[input_shaper] `option_<axis>` from configfile.settings as `number` reads it (Klipper
    has no live input_shaper status); drops an option the section does not set."""
    def read(settings: Any) -> Iterator[Sample]:
        section = _input_shaper(settings)
        key = f"{option}_{axis}"
        if key in section:
            yield from number(section[key])
    return read


def shaper_types(settings: Any) -> Iterator[Sample]:
    """[input_shaper] shaper_type_x/_y (or shaper_type for both) from configfile.settings,
    labelled (axis, type), value 1; drops an axis without a non-empty text type."""
    section = _input_shaper(settings)
    if not section:
        return
    for axis in ("x", "y"):
        shaper = section.get(f"shaper_type_{axis}", section.get("shaper_type"))
        if isinstance(shaper, str) and shaper:
            yield (axis, shaper), 1.0


# ----- Happy Hare's `mmu` objects -----

def gate_info(status: Any) -> Iterator[Sample]:
    """(gate, material, color, filament name) of each of the mmu status' num_gates gates,
    value 1; drops everything when num_gates is not an int. A gate missing from a list is
    an empty label."""
    if not isinstance(status, dict):
        return
    gates = status.get("num_gates")
    if not isinstance(gates, int) or isinstance(gates, bool):
        return
    for i in range(gates):
        yield (str(i), item_text(status.get("gate_material"), i),
               item_text(status.get("gate_color"), i),
               item_text(status.get("gate_filament_name"), i)), 1.0


def _named_filament(active: Any) -> Dict[str, Any]:
    """mmu.active_filament when it is a dict with a filament name, else {}."""
    if isinstance(active, dict) and active.get("filament_name"):
        return active
    return {}


def active_filament_info(active: Any) -> Iterator[Sample]:
    """(name, material, color) of mmu.active_filament, value 1; drops a filament without a
    name (Happy Hare reports an empty one when no filament is active)."""
    named = _named_filament(active)
    if named:
        yield (str(named.get("filament_name") or ""), str(named.get("material") or ""),
               str(named.get("color") or "")), 1.0


def active_filament_field(key: str) -> Reader:
    """Field `key` of mmu.active_filament as `not_minus_one` reads it; drops it too while
    the filament has no name."""
    def read(active: Any) -> Iterator[Sample]:
        yield from not_minus_one(_named_filament(active).get(key))
    return read


def machine_info(status: Any) -> Iterator[Sample]:
    """One series per MMU unit of mmu_machine's whole status (`unit_0`, `unit_1`, ...):
    (name, vendor, version, selector type, unit number), value 1; drops a unit that is not
    a dict. A missing field is an empty label."""
    if not isinstance(status, dict):
        return
    for key in sorted(k for k in status if k.startswith("unit_")):
        unit = status[key]
        if isinstance(unit, dict):
            yield (str(unit.get("name") or ""), str(unit.get("vendor") or ""),
                   str(unit.get("version") or ""), str(unit.get("selector_type") or ""),
                   key[len("unit_"):]), 1.0


# ----- Creality's `box` and `filament_rack` (CFS) -----
# Creality reports many numbers as text and "None"/"-1" on disconnected units: text is
# parsed (values.parse_number), "None" is absent, and units whose state is "None" are
# skipped.

# A unit is a `T<n>` field of `box` (T1 to T4 on a K2 with four CFS units; any number is
# read). Its slots are lettered A, B, C, ... in the order of its per-slot lists.
UNIT_FIELD = re.compile(r"T[0-9]+")
SLOT_LISTS = ("material_type", "color_value", "vender", "remain_len")


def text_number(value: Any) -> Iterator[Sample]:
    """A number or text holding one ("31"), unlabelled; drops bools, "", "None" (a
    disconnected unit) and other text."""
    v = parse_number(value)
    if v is not None:
        yield (), v


def is_one(value: Any) -> Iterator[Sample]:
    """1 when a number or numeric text equals 1 (Creality's enabled flags), else 0; drops
    what `text_number` drops."""
    v = parse_number(value)
    if v is not None:
        yield (), 1.0 if v == 1 else 0.0


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


def _active_slot(unit: dict) -> int:
    """Index of the unit's active slot (its `filament` letter), -1 when none."""
    letter = unit.get("filament")
    if isinstance(letter, str) and letter in _slots(unit):
        return ord(letter) - ord("A")
    return -1


def unit_state(status: Any) -> Iterator[Sample]:
    """(unit, state) of each connected unit of box's whole status, value 1; drops
    disconnected units (state None or "None")."""
    for name, unit in _units(status):
        yield (name, str(unit.get("state"))), 1.0


def unit_info(status: Any) -> Iterator[Sample]:
    """(unit, version, sn, mode) of each connected unit, value 1; drops disconnected
    units. A missing field is an empty label."""
    for name, unit in _units(status):
        yield (name, str(unit.get("version") or ""), str(unit.get("sn") or ""),
               str(unit.get("mode") or "")), 1.0


def unit_number(key: str) -> Reader:
    """Field `key` of each connected unit as `text_number` reads it, labelled with the
    unit; drops disconnected units and what `text_number` drops."""
    def read(status: Any) -> Iterator[Sample]:
        for name, unit in _units(status):
            v = parse_number(unit.get(key))
            if v is not None:
                yield (name,), v
    return read


def active_slot(status: Any) -> Iterator[Sample]:
    """The active slot's index (A=0) of each connected unit, labelled with the unit; drops
    a unit with none (never a -1 for "none")."""
    for name, unit in _units(status):
        i = _active_slot(unit)
        if i >= 0:
            yield (name,), float(i)


def active_slot_info(status: Any) -> Iterator[Sample]:
    """(unit, slot, material, color) of each connected unit's active slot, value 1; drops
    a unit with none."""
    for name, unit in _units(status):
        i = _active_slot(unit)
        if i >= 0:
            yield (name, chr(ord("A") + i), item_text(unit.get("material_type"), i),
                   item_text(unit.get("color_value"), i)), 1.0


def slot_info(status: Any) -> Iterator[Sample]:
    """(unit, slot, material, color, vendor) of every slot of each connected unit, value
    1; drops disconnected units. A slot missing from a list is an empty label."""
    for name, unit in _units(status):
        for i, letter in enumerate(_slots(unit)):
            yield (name, letter, item_text(unit.get("material_type"), i),
                   item_text(unit.get("color_value"), i), item_text(unit.get("vender"), i)), 1.0


def slot_remaining(status: Any) -> Iterator[Sample]:
    """remain_len of every slot of each connected unit, labelled (unit, slot); drops what
    `text_number` drops and disconnected units."""
    for name, unit in _units(status):
        for i, letter in enumerate(_slots(unit)):
            v = parse_number(item_text(unit.get("remain_len"), i))
            if v is not None:
                yield (name, letter), v


def rack_loaded(status: Any) -> Iterator[Sample]:
    """(material, color) of filament_rack's remain_material_type and _color, value 1;
    drops a status where neither is text."""
    if isinstance(status, dict):
        material = status.get("remain_material_type")
        color = status.get("remain_material_color")
        if isinstance(material, str) or isinstance(color, str):
            yield (str(material or ""), str(color or "")), 1.0
