"""Klippy's state says "ready" only when the printer series are served with it.

Moonraker reports ready a moment (~0.5 s) before the component's subscription to the
printer objects answers; in that window the state must not claim ready without them.
"""
from __future__ import annotations

import time

from tests.scrape import parse, value


def ready(series) -> bool:
    return value(series, "klipper_klippy_state_info", state="ready") == 1.0


def state(series) -> str:
    """Klippy's state and message as the component serves them, for a failure's message."""
    found = ["%s%s %s" % (name, dict(labels), v) for (name, labels), v in series.items()
             if name.startswith("klipper_klippy_")]
    return ", ".join(sorted(found)) or "no klipper_klippy_ series"


def test_ready_state_always_comes_with_printer_series(moonraker, klippy):
    klippy.gcode("RESTART")
    deadline = time.monotonic() + 10
    while ready(parse(moonraker.metrics().text)):  # until the restart shows
        assert time.monotonic() < deadline, "the restart never showed"
        time.sleep(0.01)
    deadline = time.monotonic() + 30
    ready_scrapes = 0
    while ready_scrapes < 20:
        series = parse(moonraker.metrics().text)
        assert time.monotonic() < deadline, (
            "Klippy did not come back within 30 s; last served: %s\n"
            "klippy log tail:\n%s\nmoonraker log tail:\n%s"
            % (state(series), klippy.log_tail(), moonraker.log_tail()))
        if ready(series):
            assert value(series, "klipper_webhooks_state_info", state="ready") == 1.0, \
                "state says ready without the printer series"
            ready_scrapes += 1
        time.sleep(0.01)
