"""HELP texts read as written: no template glitch, and a compat family names its twin."""
from __future__ import annotations

import gc
import importlib
import pkgutil
import re
from typing import Dict, List

import pytest

import moonraker_prometheus
from moonraker_prometheus.catalogue import exporter
from moonraker_prometheus.catalogue.spec import Metric
from moonraker_prometheus.catalogue.twins import TWINS, series
from moonraker_prometheus.collectors import COLLECTORS
from moonraker_prometheus.exposition import Declaration

pytestmark = pytest.mark.unit

REPEATED_WORD = re.compile(r"\b([A-Za-z]+)\s+\1\b", re.IGNORECASE)
# what joining template pieces leaves behind: two spaces, a space before punctuation (an
# ellipsis aside) or after an opening parenthesis, leading or trailing blanks
STRAY_SPACE = re.compile(r"\s{2,}|\s[,;:)]|\s\.(?!\.)|\(\s|^\s|\s$")


def every_declaration() -> List[Declaration]:
    """Every family declared anywhere in the package (catalogue, sidecar, ...): all modules
    are imported, then every live Declaration is collected."""
    for module in pkgutil.walk_packages(moonraker_prometheus.__path__,
                                        moonraker_prometheus.__name__ + "."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    found: Dict[str, Declaration] = {}
    for obj in gc.get_objects():
        if isinstance(obj, Declaration):
            found.setdefault(obj.name + "\0" + obj.help, obj)
    return sorted(found.values(), key=lambda d: d.name)


def component_metrics() -> Dict[str, Metric]:
    metrics = [m for collector in COLLECTORS for m in collector.metrics]
    return {m.name: m for m in metrics + list(exporter.METRICS)}


def test_the_scan_sees_every_part_of_the_package():
    names = {d.name for d in every_declaration()}
    assert "klipper_generic_heater_power" in names  # a printer object family
    assert "klipper_exporter_source_up" in names  # the sidecar's own health
    assert set(component_metrics()) <= names


def test_no_help_text_repeats_a_word():
    doubled = [(d.name, d.help) for d in every_declaration() if REPEATED_WORD.search(d.help)]
    assert not doubled, f"HELP with a word twice in a row: {doubled}"


def test_no_help_text_has_stray_spaces():
    glitches = [(d.name, d.help) for d in every_declaration() if STRAY_SPACE.search(d.help)]
    assert not glitches, f"HELP with stray spaces: {glitches}"


@pytest.mark.parametrize("compat_name", sorted(TWINS))
def test_compat_family_help_names_the_twin_to_prefer(compat_name: str):
    metrics = component_metrics()
    twin = TWINS[compat_name]
    assert metrics[compat_name].compat, f"{compat_name} is not a compat family"
    assert twin.family in metrics, f"{compat_name}: twin {twin.family} is not declared"
    assert not metrics[twin.family].compat, f"{twin.family} is itself a compat family"
    assert series(twin) in metrics[compat_name].help, (
        f"{compat_name}'s HELP does not name {series(twin)}")


def test_a_compat_family_with_a_same_source_twin_declares_it():
    """A compat family and a family under today's rules fed by the same source, whose name
    is the compat name plus a suffix (a unit, `_ratio`), are one quantity twice: the pair
    must be in catalogue.twins (and so in the HELP)."""
    metrics = list(component_metrics().values())
    found = sorted(
        (c.name, n.name) for c in metrics if c.compat for n in metrics
        if not n.compat and n.source == c.source and n.name.startswith(c.name + "_"))
    assert found, "the rule finds no pair: it no longer matches the declarations"
    undeclared = [(c, n) for c, n in found if TWINS.get(c, (None,))[0] != n]
    assert not undeclared, f"twins missing from catalogue/twins.py: {undeclared}"
