"""The text exposition: escaping keeps any UTF-8 name intact; output parses and lints."""
from __future__ import annotations

import math

import pytest
from prometheus_client.parser import text_string_to_metric_families

from moonraker_prometheus.catalogue.printer import BINDINGS
from moonraker_prometheus.catalogue.build import F, bind
from moonraker_prometheus.catalogue.spec import GAUGE, INFO, Metric, ObjectKind
from moonraker_prometheus.collectors.printer import Plan, PrinterState
from moonraker_prometheus.exposition import (Family, escape_label_value, format_labels,
                                             format_value, header)
from tests.promtool import assert_promtool_clean

pytestmark = pytest.mark.unit

ODD_NAMES = [
    "Électronique bay 2",
    'quote " inside',
    "back\\slash",
    "trailing space ",
    " leading space",
    "two  spaces",
    "new\nline",
    "日本語センサー",
    "emoji 🔥",
    "tab\there",
    "a,b=c{d}",
    "",
]


def _parse(body: str):
    return {f.name: f for f in text_string_to_metric_families(body)}


@pytest.mark.parametrize("name", ODD_NAMES)
def test_label_value_round_trip(name):
    metric = Metric("klipper_test_value", GAUGE, "Test.", ("sensor",))
    family = Family(metric)
    family.add(1.5, name)
    body = family.render()
    samples = _parse(body)["klipper_test_value"].samples
    assert [s.labels["sensor"] for s in samples] == [name]
    assert samples[0].value == 1.5


def test_escaping_rules():
    assert escape_label_value('a"b') == 'a\\"b'
    assert escape_label_value("a\\b") == "a\\\\b"
    assert escape_label_value("a\nb") == "a\\nb"
    assert escape_label_value("é ü 日本") == "é ü 日本"  # never deleted or transliterated
    assert format_labels(("a", "b"), ("x", 'y"')) == '{a="x",b="y\\""}'
    assert format_labels((), ()) == ""


def test_distinct_names_stay_distinct():
    metric = Metric("klipper_test_value", GAUGE, "Test.", ("sensor",))
    family = Family(metric)
    names = ["Hot End", "HotEnd", "hot_end", "Hot End ", "Hot-End"]
    for i, n in enumerate(names):
        family.add(float(i), n)
    samples = _parse(family.render())["klipper_test_value"].samples
    assert [s.labels["sensor"] for s in samples] == names


def test_format_value():
    assert format_value(1.0) == "1.0"
    assert format_value(0.1) == "0.1"
    assert format_value(float("nan")) == "NaN"
    assert format_value(math.inf) == "+Inf"
    assert format_value(-math.inf) == "-Inf"
    assert format_value(1e-7) == "1e-07"
    assert float(format_value(123456789012.0)) == 123456789012.0


def test_header_escapes_help_and_types_info_as_gauge():
    metric = Metric("klipper_x_info", INFO, "Back\\slash and\nnewline.", ("a",))
    head = header(metric)
    assert head == ("# HELP klipper_x_info Back\\\\slash and\\nnewline.\n"
                    "# TYPE klipper_x_info gauge\n")


def test_printer_render_with_odd_object_names_parses_and_lints():
    objects = [f"temperature_sensor {n}" for n in ODD_NAMES if n] + [
        "output_pin caselight", "fan_generic Ünïcode fan", "extruder", "extruder1"]
    plan = Plan(objects, BINDINGS)
    status = {obj: {"temperature": 21.5, "measured_min_temp": 20.0, "measured_max_temp": 22.0}
              for obj in objects if obj.startswith("temperature_sensor")}
    status["output_pin caselight"] = {"value": 0.5}
    status["fan_generic Ünïcode fan"] = {"speed": 0.25, "rpm": None}
    status["extruder"] = {"temperature": 200.0, "target": 210.0, "power": 0.5}
    status["extruder1"] = {"temperature": 20.0, "target": 0.0, "power": 0.0}
    body = PrinterState(plan, status).render()
    families = _parse(body)
    sensors = [s.labels["sensor"]
               for s in families["klipper_temperature_sensor_temperature"].samples]
    assert sensors == [n for n in ODD_NAMES if n]
    assert [s.labels["fan"] for s in families["klipper_generic_fan_speed"].samples] == [
        "Ünïcode fan"]
    assert "klipper_generic_fan_rpm" not in families  # rpm is null: no sample, not 0
    assert {s.labels["extruder"] for s in families["klipper_extruder_target"].samples} == {
        "extruder", "extruder1"}
    assert_promtool_clean(body)


def test_wrong_number_of_label_values_raises_instead_of_dropping_labels():
    metric = Metric("klipper_test_value", GAUGE, "Test.", ("sensor", "kind"))
    with pytest.raises(ValueError, match="label"):
        Family(metric).add(1.0, "only one")
    with pytest.raises(ValueError, match="label"):
        Family(metric).add(1.0, "a", "b", "c")


def test_a_reader_yielding_the_wrong_label_count_fails_the_render():
    """A printer reader yielding more label values than its family declares must fail
    (the collector reports success 0 and logs it), not drop the extra value."""
    kind = ObjectKind("thing", r"thing .+", label="thing")
    binding = bind(kind, F("", "klipper_thing_value", "Test.", labels=("axis",),
                           read=lambda status: [(("x", "extra"), 1.0)]))
    with pytest.raises(ValueError, match="label"):
        PrinterState(Plan(["thing a"], (binding,)), {"thing a": {"v": 1}}).render()
