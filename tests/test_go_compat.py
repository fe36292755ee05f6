"""Drop-in replacement for prometheus-klipper-exporter: its names and label keys are served.

Scrapes real Moonraker (with the component) in front of the rich simulated printer and
fails on any Go-exporter family the printer should produce that is missing, or that
lacks one of the Go exporter's label keys. The family list lives in tests/go_families.py.
"""
from __future__ import annotations

import time
from typing import Dict, Set

import pytest
from tests.go_families import (ANY_HOST, GO_MOONRAKER_FAMILIES, GO_PRINTER_FAMILIES,
                               SIMULATOR_ABSENT)
from tests.scrape import label_keys, parse

# Made present by the fixture (SET_KINEMATIC_POSITION homes, QUERY_ENDSTOPS fills
# query_endstops.last_query; the MCU statistics arrive with the simulated MCUs' first
# stats report, ~5 s after they start, as on a board).
MADE_PRESENT = {"klipper_toolhead_homed_axes_info", "klipper_endstop_triggered",
                "klipper_mcu_awake"}

# Go families served by the Moonraker-side collectors that exist on any host.
GO_ANY_HOST_FAMILIES = {name: GO_MOONRAKER_FAMILIES[name][0] for name in ANY_HOST}


@pytest.fixture(scope="module")
def scraped(shared_klippy, shared_moonraker) -> Dict[str, Set[str]]:
    # G-code only once Moonraker finished its own Klippy init (our series are there).
    deadline = time.monotonic() + 30
    keys: Dict[str, Set[str]] = {}
    while "klipper_webhooks_state_info" not in keys:
        assert time.monotonic() < deadline, "printer series never appeared after ready"
        keys = label_keys(parse(shared_moonraker.metrics().text))
        time.sleep(0.05)
    # homed without motion (G28 is tested in test_live_printer.py)
    shared_klippy.gcode("SET_KINEMATIC_POSITION X=0 Y=0 Z=0\nQUERY_ENDSTOPS")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        keys = label_keys(parse(shared_moonraker.metrics().text))
        if MADE_PRESENT <= set(keys) and "klipper_webhooks_state_info" in keys:
            break
        time.sleep(0.1)
    return keys


def _check(scraped: Dict[str, Set[str]], families, absent) -> None:
    missing, bad_labels = [], []
    for name, labels in sorted(families.items()):
        if name in absent:
            continue
        if name not in scraped:
            missing.append(name)
        elif not set(labels) <= scraped[name]:
            bad_labels.append(f"{name}: has {sorted(scraped[name])}, Go has {list(labels)}")
    assert not missing, f"Go exporter families missing from the scrape: {missing}"
    assert not bad_labels, "Go exporter label keys missing:\n" + "\n".join(bad_labels)


def test_go_printer_families_are_served(scraped):
    _check(scraped, GO_PRINTER_FAMILIES, SIMULATOR_ABSENT - MADE_PRESENT)


def test_go_moonraker_families_are_served(scraped):
    _check(scraped, GO_ANY_HOST_FAMILIES, set())


def test_absent_list_is_honest(scraped):
    """A family listed as absent that shows up means the list is stale: keep it exact."""
    unexpected = sorted(n for n in SIMULATOR_ABSENT - MADE_PRESENT
                        if n in scraped)
    assert not unexpected, f"listed as absent but served: {unexpected}"
