"""Families describing Moonraker's connection to Klippy (the `klippy` module)."""
from __future__ import annotations

from .build import gauge, info

CONNECTED = gauge(
    "klipper_klippy_connected",
    "1 when Moonraker holds a connection to Klippy's API socket, else 0.",
    source="klippy_connection.is_connected()", compat=True)
STATE = info(
    "klipper_klippy_state_info",
    "Klippy state as Moonraker sees it (disconnected, startup, ready, error, shutdown); "
    "ready only once the printer objects' state is in hand.",
    labels=("state",), source="klippy_connection.state, printer subscription", compat=True)
STATE_MESSAGE = info(
    "klipper_klippy_state_message_info",
    "Klippy's state message, which says why it is not ready (e.g. the shutdown reason).",
    labels=("message",), source="klippy_connection.state.message")

METRICS = (CONNECTED, STATE, STATE_MESSAGE)
