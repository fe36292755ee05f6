"""The printer collector without Moonraker: plan, subscription, cache invalidation, lifecycle."""
from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any, Callable, Dict, Iterator, List, Sequence, Tuple

import pytest

from moonraker_prometheus.catalogue.build import F, bind
from moonraker_prometheus.catalogue.printer import BINDINGS
from moonraker_prometheus.catalogue.spec import ObjectKind
from moonraker_prometheus.collectors.printer import Plan, PrinterCollector, PrinterState
from simulator import until
from simulator.moonraker_standin import FakeApis, FakeServer, printer_components

pytestmark = pytest.mark.unit

OBJECTS = ["webhooks", "extruder", "extruder1", "heater_bed", "toolhead", "bed_mesh",
           "configfile", "temperature_sensor chamber", "gcode_macro FOO", "heaters"]


def make_state(status: Dict[str, Any]) -> PrinterState:
    return PrinterState(Plan(OBJECTS, BINDINGS), status)


def test_subscription_asks_only_for_needed_fields():
    plan = Plan(OBJECTS, BINDINGS)
    sub = plan.subscription
    assert "gcode_macro FOO" not in sub and "heaters" not in sub
    assert set(sub["heater_bed"]) == {"temperature", "target", "power"}
    assert "profiles" not in sub["bed_mesh"]  # saved profiles are never subscribed
    assert set(sub["bed_mesh"]) == {"profile_name", "probed_matrix", "mesh_matrix"}
    assert sub["configfile"] == ["settings"]
    assert "max_accel_to_decel" in sub["toolhead"] and "minimum_cruise_ratio" in sub["toolhead"]


def test_render_is_cached_until_a_relevant_field_changes():
    state = make_state({"heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0},
                        "extruder": {"temperature": 21.0, "target": 0.0}})
    body = state.render()
    assert state.render() is body
    # another subscriber's object, or a field we do not read: nothing re-renders
    assert not state.update({"gcode_macro FOO": {"x": 1}})
    assert not state.update({"heater_bed": {"unrelated": 5}})
    assert not state.update({"heater_bed": {"target": 0.0}})  # same value
    assert state.render() is body
    assert state.update({"heater_bed": {"target": 60.0}})
    body2 = state.render()
    assert "klipper_heater_bed_target 60.0" in body2
    assert 'klipper_extruder_temperature{extruder="extruder"} 21.0' in body2


def widgets(reads: List[Tuple[str, Any]]) -> List[Any]:
    """Bindings of a made-up kind (`widget NAME`, three numeric fields) whose readers record
    each value they read in `reads` as (field, value): what a render re-read. A
    reader given "boom" raises KeyError (a reader that breaks on what Klipper sent)."""
    def counted(family: str) -> Callable[[Any], Iterator[Tuple[Tuple[str, ...], float]]]:
        def read(value: Any) -> Iterator[Tuple[Tuple[str, ...], float]]:
            reads.append((family, value))
            if value == "boom":
                raise KeyError(value)
            if isinstance(value, (int, float)):
                yield (), float(value)
        return read
    kind = ObjectKind("widget", r"widget .+", label="widget")
    return [bind(kind, *(F(field, f"test_widget_{field}", f"Widget {field}.",
                           read=counted(field)) for field in ("speed", "load", "temp")))]


WIDGETS = ["widget a", "widget b"]
WIDGET_STATUS = {"widget a": {"speed": 1.0, "load": 2.0, "temp": 3.0},
                 "widget b": {"speed": 4.0, "load": 5.0, "temp": 6.0}}


def widget_state(reads: List[Tuple[str, Any]], status: Dict[str, Any] = WIDGET_STATUS
                 ) -> PrinterState:
    return PrinterState(Plan(WIDGETS, widgets(reads)), copy.deepcopy(status))


def fresh_render(pushes: Sequence[Dict[str, Any]]) -> str:
    """The body of a state that saw the pushes, rendered once from nothing."""
    state = widget_state([])
    for push in pushes:
        state.update(push)
    return state.render()


def test_a_push_re_renders_only_what_reads_the_changed_field_and_stays_stale_until_then():
    """A push says the next render has work to do (stale(), the component then gives it
    a loop callback of its own) and that render reads the changed field only."""
    reads: List[Tuple[str, Any]] = []
    state = widget_state(reads)
    state.render()
    assert not state.stale()
    reads.clear()
    assert not state.update({"widget b": {"unrelated": 1}})
    assert not state.update({"widget b": {"speed": 4.0}})  # same value
    assert not state.stale()
    state.render()
    assert reads == []
    push = {"widget b": {"speed": 9.0}}
    assert state.update(push)
    assert state.stale()
    body = state.render()
    assert reads == [("speed", 9.0)] and not state.stale()
    assert 'test_widget_speed{widget="b"} 9.0' in body
    assert body == fresh_render([push])


def test_render_ahead_re_renders_a_family_at_a_time_and_render_then_reads_nothing():
    reads: List[Tuple[str, Any]] = []
    state = widget_state(reads)
    state.render()
    pushes = [{"widget a": {"speed": 7.0, "temp": 8.0}}, {"widget b": {"load": 9.0}}]
    for push in pushes:
        state.update(push)
    slices = []
    while state.stale():
        reads.clear()
        state.render_ahead(0)  # a deadline already passed: one family
        slices.append({family for family, _ in reads})
    assert sorted(map(sorted, slices)) == [["load"], ["speed"], ["temp"]]
    reads.clear()
    body = state.render()
    assert reads == []  # render() only joined what render_ahead() re-rendered
    assert body == fresh_render(pushes)


def test_a_reader_that_raises_leaves_its_family_stale_for_render_to_report():
    reads: List[Tuple[str, Any]] = []
    state = widget_state(reads)
    state.render()
    state.update({"widget a": {"speed": "boom", "load": 10.0}})
    with pytest.raises(KeyError):
        while state.stale():
            state.render_ahead(0)
    assert state.stale()
    with pytest.raises(KeyError):
        state.render()
    state.update({"widget a": {"speed": 11.0}})
    body = state.render()
    assert 'test_widget_speed{widget="a"} 11.0' in body
    assert 'test_widget_load{widget="a"} 10.0' in body


def test_sync_catches_dicts_moonraker_replaced_without_a_push():
    state = make_state({"heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}})
    cache = {"heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}}
    state.sync(cache)
    body = state.render()
    state.sync(cache)
    assert state.render() is body  # same dict: nothing to do
    cache["heater_bed"] = {"temperature": 20.0, "target": 60.0, "power": 0.0}
    state.sync(cache)
    assert "klipper_heater_bed_target 60.0" in state.render()


def test_absent_object_and_none_values_produce_nothing():
    state = make_state({"extruder": {"temperature": None, "target": 0.0}})
    body = state.render()
    assert "klipper_heater_bed" not in body
    assert "klipper_extruder_temperature" not in body
    assert "# HELP klipper_extruder_target" in body


def test_lifecycle_discovers_objects_at_every_ready_and_drops_series_when_down():
    apis = FakeApis(["webhooks", "heater_bed"],
                    {"webhooks": {"state": "ready"}, "heater_bed": {"target": 0.0}})
    server = FakeServer(printer_components(apis))
    collector = PrinterCollector(server)  # type: ignore[arg-type]
    assert collector.render() == ""
    asyncio.run(*server.fire("server:klippy_ready"))
    assert "klipper_heater_bed_target 0.0" in collector.render()
    apis.callbacks[0]({"heater_bed": {"target": 70.0}}, 1.0)
    assert "klipper_heater_bed_target 70.0" in collector.render()
    # shutdown / error: Moonraker no longer ready -> no printer series at all
    server.components["klippy_connection"].ready = False
    assert collector.render() == ""
    # disconnect, then a restart that added a sensor
    server.fire("server:klippy_disconnect")
    server.components["klippy_connection"].ready = True
    assert collector.render() == ""
    apis.objects.append("temperature_sensor new one")
    apis.status["temperature_sensor new one"] = {"temperature": 30.0}
    asyncio.run(*server.fire("server:klippy_ready"))
    assert len(apis.callbacks) == 2  # re-registered after the disconnect dropped it
    assert 'klipper_temperature_sensor_temperature{sensor="new one"} 30.0' in collector.render()
    assert "temperature_sensor new one" in apis.subscriptions[-1]


class FailingApis(FakeApis):
    """klippy_apis whose object list and subscription fail the first `failures` times each
    (Moonraker's `default` answer: Klippy busy, or gone and back); `on_list` is called at
    each listing."""

    def __init__(self, *args: Any, failures: int) -> None:
        super().__init__(*args)
        self.list_failures = self.subscribe_failures = failures
        self.on_list = lambda: None

    async def get_object_list(self, default=None):
        self.on_list()
        if self.list_failures:
            self.list_failures -= 1
            return default
        return await super().get_object_list(default)

    async def subscribe_objects(self, objects, callback=None, default=None):
        if self.subscribe_failures:
            self.subscribe_failures -= 1
            return default
        return await super().subscribe_objects(objects, callback, default)


def failing_printer(failures: int):
    apis = FailingApis(["webhooks", "heater_bed"], {"heater_bed": {"target": 0.0}},
                       failures=failures)
    server = FakeServer(printer_components(apis))
    return apis, server, PrinterCollector(server)  # type: ignore[arg-type]


def test_a_failed_listing_or_subscription_is_tried_again_while_klippy_stays_ready(
        monkeypatch, caplog):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.001,))
    caplog.set_level(logging.INFO)
    apis, server, collector = failing_printer(failures=2)

    async def run():
        await server.fire("server:klippy_ready")[0]
        await until(collector.subscribed)

    asyncio.run(run())
    assert "klipper_heater_bed_target 0.0" in collector.render()
    assert len(apis.callbacks) == 1  # the failed attempts registered no callback
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [  # one per cause, not one per attempt
        "prometheus: Klippy did not list its objects (printer); trying again in 0.001 s",
        "prometheus: the subscription to Klippy's objects failed (printer); trying again in "
        "0.001 s"]
    assert "prometheus: printer subscribed at attempt 5" in caplog.messages


def counted_listings(apis: FailingApis) -> List[int]:
    """A list growing by one at each object listing the collector asks Klippy for."""
    listings: List[int] = []
    apis.on_list = lambda: listings.append(1)
    return listings


async def no_more_listings(listings: List[int]) -> None:
    before = len(listings)
    await asyncio.sleep(0.05)  # ten retry intervals
    assert len(listings) == before


def test_moonraker_s_ready_event_does_not_wait_for_the_retries(monkeypatch):
    # Moonraker awaits every klippy_ready handler before it finishes connecting to Klippy
    # and before it reports a shutdown: retries must not hold it up.
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.005,))
    apis, server, collector = failing_printer(failures=1000)
    listings = counted_listings(apis)

    async def run():
        await asyncio.wait_for(server.fire("server:klippy_ready")[0], 1.0)
        await until(lambda: len(listings) >= 3)  # the retries go on without it
        server.fire("server:klippy_disconnect")  # a restart: the retries end
        await no_more_listings(listings)

    asyncio.run(run())
    assert not collector.subscribed()


def test_closing_the_collector_ends_its_retries(monkeypatch):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.005,))
    apis, server, collector = failing_printer(failures=1000)
    listings = counted_listings(apis)

    async def run():
        await server.fire("server:klippy_ready")[0]
        await until(lambda: len(listings) >= 2)
        await collector.close()  # Moonraker shutting down
        await no_more_listings(listings)

    asyncio.run(run())


def test_retrying_stops_when_klippy_is_no_longer_ready(monkeypatch):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.001,))
    apis, server, collector = failing_printer(failures=1)
    listings = counted_listings(apis)

    async def run():
        await server.fire("server:klippy_ready")[0]
        server.components["klippy_connection"].ready = False  # shut down after its ready
        await no_more_listings(listings)

    asyncio.run(run())
    assert not collector.subscribed() and listings == [1]
    assert apis.subscriptions == []  # one attempt, no retry


def test_a_retry_klippy_leaves_during_neither_subscribes_nor_says_it_did(monkeypatch, caplog):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.001,))
    caplog.set_level(logging.INFO)
    apis, server, collector = failing_printer(failures=1)
    listings = []

    def on_list():
        listings.append(1)
        if len(listings) == 2:  # Klippy goes while the retry lists its objects
            server.fire("server:klippy_disconnect")

    apis.on_list = on_list

    async def run():
        await server.fire("server:klippy_ready")[0]
        await until(lambda: len(listings) == 2)
        await asyncio.sleep(0.01)

    asyncio.run(run())
    assert not collector.subscribed() and apis.subscriptions == []
    assert not [m for m in caplog.messages if "subscribed at attempt" in m]
