"""Klippy's state says "ready" only when the printer series are served with it.

Moonraker reports ready a moment (~0.5 s) before the component's subscription to the
printer objects answers; in that window the state must not claim ready without them.
"""
from __future__ import annotations

import time

from tests.scrape import parse, value


def ready(series) -> bool:
    return value(series, "klipper_klippy_state_info", state="ready") == 1.0


def test_ready_state_always_comes_with_printer_series(moonraker, klippy):
    klippy.gcode("RESTART")
    deadline = time.monotonic() + 10
    while ready(parse(moonraker.metrics().text)):  # until the restart shows
        assert time.monotonic() < deadline, "the restart never showed"
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    ready_scrapes = 0
    while ready_scrapes < 20:
        assert time.monotonic() < deadline, "Klippy did not come back"
        series = parse(moonraker.metrics().text)
        if ready(series):
            assert value(series, "klipper_webhooks_state_info", state="ready") == 1.0, \
                "state says ready without the printer series"
            ready_scrapes += 1
        time.sleep(0.01)
