"""Moonraker [power] devices (Go module `device_power`)."""
from __future__ import annotations

from typing import Any, Dict, List

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, lookup


class PowerCollector(Collector):
    """Each [power] device's type and state (Moonraker's optional power component)."""

    name = "power"
    metrics = catalogue.POWER

    def render(self) -> str:
        c = catalogue
        power = lookup(self.server, "power")
        if power is None:
            return ""
        devices: Dict[str, Any] = getattr(power, "devices", None) or {}
        info = Family(c.POWER_DEVICE)
        status = Family(c.POWER_STATUS)
        state = Family(c.POWER_STATE)
        locked = Family(c.POWER_LOCKED)
        for name, dev in list(devices.items()):
            name = str(getattr(dev, "name", name))
            info.add(1.0, name, str(getattr(dev, "type", "")))
            dev_state = getattr(dev, "state", None)
            if isinstance(dev_state, str):
                state.add(1.0, name, dev_state)
                if dev_state in ("on", "off"):
                    status.add(1.0 if dev_state == "on" else 0.0, name)
            lwp = getattr(dev, "locked_while_printing", None)
            if isinstance(lwp, bool):
                locked.add(1.0 if lwp else 0.0, name)
        families: List[Family] = [info, status, state, locked]
        return render_families(families)
