"""The shape of a metric declaration.

A `Metric` is one family: name, type, unit, labels, HELP and where its value comes from.
Klipper printer objects are bound to families by `ObjectBinding`: which objects (a kind and
the label that names an instance) and which status fields feed which family.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Pattern, Sequence, Tuple

from ..exposition import Declaration
from .readers import Reader, Sample, number

GAUGE = "gauge"
COUNTER = "counter"
INFO = "info"  # a gauge of value 1 whose information lives in its labels


@dataclass(frozen=True)
class Metric(Declaration):
    """A declared family of the component (exposition.Declaration: name, type, help,
    labels) with its unit and source. Types are gauge, counter and info (a gauge of value
    1); ValueError otherwise or for an invalid name or label key."""

    unit: str = ""
    source: str = ""
    # Name and label keys inherited from prometheus-klipper-exporter: kept for dashboards even
    # where they break today's naming rules (see tests/promtool-allowlist.txt).
    compat: bool = False

    def __post_init__(self) -> None:
        if self.type not in (GAUGE, COUNTER, INFO):
            raise ValueError(f"{self.name}: unknown type {self.type!r}")
        super().__post_init__()

    @property
    def exposition_type(self) -> str:
        return GAUGE if self.type == INFO else self.type


@dataclass(frozen=True)
class Field:
    """One status field (dotted path; empty for the whole status) feeding one family."""
    metric: Metric
    path: str
    read: Reader = number
    # For a reader of the whole status (empty path): the fields it needs (empty: all fields).
    requires: Tuple[str, ...] = ()
    # Fields of other objects the reader also needs, as (object, field) pairs: they reach
    # the reader in the status it gets under "object.field" keys (e.g. toolhead.homed_axes
    # for gcode_move's position, which is a placeholder on an unhomed axis).
    context: Tuple[Tuple[str, str], ...] = ()

    @property
    def top_levels(self) -> Optional[Tuple[str, ...]]:
        """Every field Klipper must send for this family (None: all fields)."""
        if self.path:
            return (self.path.split(".", 1)[0],)
        return self.requires or None

    def samples(self, status: Any) -> Iterable[Sample]:
        value = status
        if self.path:
            for part in self.path.split("."):
                if not isinstance(value, dict) or part not in value:
                    return ()
                value = value[part]
        return self.read(value)


@dataclass(frozen=True)
class ObjectKind:
    """Klipper objects of one kind, and how an instance's name becomes a label value.

    `pattern` matches the full object name. For kinds written `[kind NAME]`, the label value
    is NAME; `whole_name` kinds (extruder, extruder1) use the full object name instead, and
    a pattern with a `(?P<instance>...)` group uses what that group matched.
    """
    name: str
    pattern: str
    label: Optional[str] = None
    whole_name: bool = False
    # When set, the label value is the full object name with the space after the kind
    # replaced by `join` (prometheus-klipper-exporter's `tmc2209_stepper_x`).
    join: Optional[str] = None
    # A sensor driver: Klipper creates `KIND NAME` for a section using one of these
    # sensor_type values (lowercase), NAME being the section's last word, so
    # `[temperature_sensor Raspberry Pi]` makes `temperature_host Pi`. Its label value is
    # then the owning section's (see collectors.printer.sensor_owners).
    sensor_types: Tuple[str, ...] = ()
    # `pattern` compiled once (every pattern of the package is, so the linear-time check in
    # tests/test_regex_linearity.py finds it).
    regex: Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", re.compile(self.pattern, re.DOTALL))

    def matches(self, object_name: str) -> bool:
        return self.regex.fullmatch(object_name) is not None

    def instance(self, object_name: str) -> str:
        if "(?P<instance>" in self.pattern:  # the label value is the named group
            m = self.regex.fullmatch(object_name)
            if m is not None:
                return m.group("instance")
        if self.whole_name or " " not in object_name:
            return object_name
        if self.join is not None:
            return object_name.replace(" ", self.join, 1)
        return object_name.split(" ", 1)[1]


@dataclass(frozen=True)
class ObjectBinding:
    kind: ObjectKind
    fields: Tuple[Field, ...] = field(default_factory=tuple)
    doc: str = ""

    def metrics(self) -> Sequence[Metric]:
        return [f.metric for f in self.fields]
