"""Moonraker's connection to Klippy: always answers, even when Klippy is gone."""
from __future__ import annotations

from ..catalogue import klippy as catalogue
from ..exposition import Family, render_families
from .base import Collector


class KlippyCollector(Collector):
    """Moonraker's connection to Klippy and Klippy's state; present even when Klippy is down."""

    name = "klippy"
    metrics = catalogue.METRICS

    def render(self) -> str:
        connection = self.server.lookup_component("klippy_connection")
        state = connection.state
        connected = Family(catalogue.CONNECTED)
        connected.add(1.0 if connection.is_connected() else 0.0)
        state_info = Family(catalogue.STATE)
        state_info.add(1.0, state.name.lower())
        families = [connected, state_info]
        message = getattr(state, "message", "")
        if message:
            message_info = Family(catalogue.STATE_MESSAGE)
            message_info.add(1.0, message)
            families.append(message_info)
        return render_families(families)
