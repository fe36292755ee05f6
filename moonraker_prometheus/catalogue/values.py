"""Value coercion shared by the readers and the collectors: the one place that decides what
counts as a number. Anything that is not a number is None (absent), never 0."""
from __future__ import annotations

from typing import Any, Optional


def as_number(value: Any) -> Optional[float]:
    """An int or float as float; None for anything else, bool included (Moonraker values,
    where True is not a measurement)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def as_flag_or_number(value: Any) -> Optional[float]:
    """A bool as 1.0 or 0.0, an int or float as float; None for anything else (Klipper
    status fields, where flags are bools)."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return as_number(value)


def parse_number(value: Any) -> Optional[float]:
    """A number, or text holding one ("31", "0.5"); None for a bool, "", "None" and other
    text (Creality reports numbers as text and "None" on disconnected units)."""
    if isinstance(value, str):
        if value in ("", "None"):
            return None
        try:
            return float(value)
        except ValueError:
            return None
    return as_number(value)
