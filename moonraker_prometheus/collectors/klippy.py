"""Moonraker's connection to Klippy: always answers, even when Klippy is gone."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Optional, Union

from ..catalogue import klippy as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server


class KlippyCollector(Collector):
    """Moonraker's connection to Klippy and Klippy's state; present even when Klippy is down."""

    name = "klippy"
    metrics = catalogue.METRICS

    def __init__(self, server: Union["Server", Host],
                 printer_ready: Optional[Callable[[], bool]] = None) -> None:
        """`printer_ready`: whether the printer objects' state is in hand (the printer
        collector's `subscribed`; None: Klippy's state is served as Moonraker reports it).
        Moonraker says "ready" a moment (~0.5 s) before the printer collector's
        subscription answers; until then this collector says "startup", so "ready" always
        comes with the printer series."""
        super().__init__(server)
        self.printer_ready = printer_ready
        self._cache = RenderCache()

    def render(self) -> str:
        connected, name, message = self.host.klippy_state()
        if name == "ready" and self.printer_ready is not None and not self.printer_ready():
            name, message = "startup", ("Klippy is ready; the exporter is subscribing to its "
                                        "printer objects (if this lasts, see Moonraker's log)")
        key = (connected, name, message)
        return self._cache.text(key, lambda: self._render(connected, name, message))

    @staticmethod
    def _render(connected: bool, name: str, message: str) -> str:
        connected_family = Family(catalogue.CONNECTED)
        connected_family.add(1.0 if connected else 0.0)
        state_info = Family(catalogue.STATE)
        state_info.add(1.0, name)
        families = [connected_family, state_info]
        if message:
            message_info = Family(catalogue.STATE_MESSAGE)
            message_info.add(1.0, message)
            families.append(message_info)
        return render_families(families)
