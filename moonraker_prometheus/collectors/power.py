"""Moonraker [power] devices (Go module `device_power`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache
from .host import Host, PowerDevice

if TYPE_CHECKING:
    from moonraker.server import Server


class PowerCollector(Collector):
    """Each [power] device's type and state (Moonraker's optional power component)."""

    name = "power"
    metrics = catalogue.POWER

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        key = self.host.power_devices()
        if key is None:
            return ""
        return self._cache.text(key, lambda: self._render(key))

    @staticmethod
    def _render(devices: Tuple[PowerDevice, ...]) -> str:
        c = catalogue
        info = Family(c.POWER_DEVICE)
        status = Family(c.POWER_STATUS)
        state = Family(c.POWER_STATE)
        locked = Family(c.POWER_LOCKED)
        for name, kind, dev_state, lwp in devices:
            info.add(1.0, name, kind)
            if isinstance(dev_state, str):
                state.add(1.0, name, dev_state)
                if dev_state in ("on", "off"):
                    status.add(1.0 if dev_state == "on" else 0.0, name)
            if isinstance(lwp, bool):
                locked.add(1.0 if lwp else 0.0, name)
        families: List[Family] = [info, status, state, locked]
        return render_families(families)
