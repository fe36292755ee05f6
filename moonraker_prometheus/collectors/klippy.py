"""Moonraker's connection to Klippy: always answers, even when Klippy is gone."""
from __future__ import annotations

from typing import Callable, Optional

from ..catalogue import klippy as catalogue
from ..exposition import Family, render_families
from .base import Collector


class KlippyCollector(Collector):
    """Moonraker's connection to Klippy and Klippy's state; present even when Klippy is down."""

    name = "klippy"
    metrics = catalogue.METRICS
    # Set by the component: whether the printer objects' state is in hand. Moonraker says
    # "ready" a moment (~0.5 s) before the printer collector's subscription answers; until
    # then this collector says "startup", so "ready" always comes with the printer series.
    printer_ready: Optional[Callable[[], bool]] = None

    def render(self) -> str:
        connection = self.server.lookup_component("klippy_connection")
        state = connection.state
        connected = Family(catalogue.CONNECTED)
        connected.add(1.0 if connection.is_connected() else 0.0)
        state_info = Family(catalogue.STATE)
        name = state.name.lower()
        message = getattr(state, "message", "")
        if name == "ready" and self.printer_ready is not None and not self.printer_ready():
            name, message = "startup", ("Klippy is ready; the exporter is subscribing to its "
                                        "printer objects (if this lasts, see Moonraker's log)")
        state_info.add(1.0, name)
        families = [connected, state_info]
        if message:
            message_info = Family(catalogue.STATE_MESSAGE)
            message_info.add(1.0, message)
            families.append(message_info)
        return render_families(families)
