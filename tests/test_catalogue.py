"""The declarations are the single source of truth: valid, unique, documented, consistent."""
from __future__ import annotations

import os
import re
from collections import defaultdict
from typing import Dict, List

import pytest

from moonraker_prometheus import docs
from moonraker_prometheus.catalogue import cfs, exporter, mmu, units
from moonraker_prometheus.catalogue.printer import BINDINGS as PRINTER_BINDINGS
from moonraker_prometheus.catalogue.spec import COUNTER, INFO, Metric
from moonraker_prometheus.collectors import COLLECTORS

pytestmark = pytest.mark.unit

BINDINGS = PRINTER_BINDINGS + mmu.BINDINGS + cfs.BINDINGS
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

# How a HELP text may name each unit (compat names keep their unit-less names, so HELP must).
UNIT_WORDS = {
    units.CELSIUS: ("Celsius",),
    units.RATIO: ("0 to 1", "ratio", "fraction"),
    units.SECONDS: ("second",),
    units.MILLIMETERS: ("mm", "millimet"),
    units.BYTES_PER_SECOND: ("bytes per second", "bytes/s"),
    units.MM_PER_SECOND: ("mm/s",),
    units.MM_PER_MINUTE: ("mm/min",),
    units.MM_PER_SECOND_SQUARED: ("mm/s^2",),
    units.BYTES: ("bytes",),
    units.HERTZ: ("Hz", "hertz"),
    units.AMPERES: ("amperes",),
    units.RPM: ("revolutions per minute",),
    units.METERS: ("meters", "metres"),
    units.KILOBYTES: ("kB", "kilobytes"),
    units.PERCENT: ("percent", "%"),
    units.GRAMS: ("grams", " g"),
    units.CUBIC_MILLIMETERS: ("mm^3", "mm³"),
}

def all_metrics() -> List[Metric]:
    out: List[Metric] = []
    for collector in COLLECTORS:
        out.extend(collector.metrics)
    out.extend(exporter.METRICS)
    return out


def test_docs_match_declarations():
    with open(os.path.join(REPO, "docs", "metrics.md"), encoding="utf-8") as f:
        current = f.read()
    assert current == docs.render(), (
        "docs/metrics.md is stale: run "
        "`python -m moonraker_prometheus.docs > docs/metrics.md`")


def test_names_valid_and_declared_once():
    seen: Dict[str, int] = defaultdict(int)
    for metric in all_metrics():
        assert NAME_RE.fullmatch(metric.name), metric.name
        assert metric.name.startswith("klipper_"), metric.name
        seen[metric.name] += 1
    dupes = sorted(name for name, n in seen.items() if n > 1)
    assert not dupes, f"families declared by more than one collector: {dupes}"


def test_family_fed_by_several_kinds_is_declared_identically():
    by_name: Dict[str, List[Metric]] = defaultdict(list)
    for binding in BINDINGS:
        for metric in binding.metrics():
            by_name[metric.name].append(metric)
    for name, metrics in by_name.items():
        first = metrics[0]
        for other in metrics[1:]:
            assert (other.type, other.help, other.labels, other.unit, other.compat) == (
                first.type, first.help, first.labels, first.unit, first.compat), name


def test_labels_start_with_the_instance_label():
    for binding in BINDINGS:
        label = binding.kind.label
        for metric in binding.metrics():
            if label:
                assert metric.labels[:1] == (label,), (metric.name, metric.labels)
            assert len(set(metric.labels)) == len(metric.labels), metric.name


@pytest.mark.parametrize("metric", all_metrics(), ids=lambda m: m.name)
def test_naming_rules(metric: Metric):
    assert metric.help.strip(), f"{metric.name}: no HELP"
    if metric.type == INFO and not metric.compat:
        assert metric.name.endswith("_info"), metric.name
    if metric.compat:
        # Inherited names stay as they are; the unit must then be said in HELP.
        if metric.unit and not _has_unit_suffix(metric):
            words = UNIT_WORDS.get(metric.unit)
            assert words is not None, f"{metric.name}: add unit {metric.unit!r} to UNIT_WORDS"
            assert any(w.lower() in metric.help.lower() for w in words), (
                f"{metric.name}: HELP must name the unit ({metric.unit})")
        return
    if metric.type == COUNTER:
        assert metric.name.endswith("_total"), metric.name
    else:
        assert not metric.name.endswith("_total"), metric.name
    if metric.unit:
        assert _has_unit_suffix(metric), f"{metric.name}: new names end in their base unit"


def test_units_are_the_declared_constants():
    """One spelling per unit: every family's unit is one of catalogue/units.py's."""
    for metric in all_metrics():
        assert not metric.unit or metric.unit in units.UNITS, (metric.name, metric.unit)


def _has_unit_suffix(metric: Metric) -> bool:
    name = metric.name[:-len("_total")] if metric.name.endswith("_total") else metric.name
    return name.endswith("_" + metric.unit)


def test_compat_families_present():
    """Every Go-exporter printer and add-on family is declared under its name and labels."""
    from tests.go_families import GO_CFS_FAMILIES, GO_MMU_FAMILIES, GO_PRINTER_FAMILIES

    declared = {m.name: m for m in all_metrics()}
    for name, labels in {**GO_PRINTER_FAMILIES, **GO_MMU_FAMILIES, **GO_CFS_FAMILIES}.items():
        assert name in declared, f"missing Go exporter family {name}"
        metric = declared[name]
        assert metric.compat, f"{name} should be marked compat"
        assert set(labels) <= set(metric.labels), (name, labels, metric.labels)
