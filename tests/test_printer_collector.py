"""The printer collector without Moonraker: plan, subscription, cache invalidation, lifecycle."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict

import pytest

from moonraker_prometheus.catalogue.printer import BINDINGS
from moonraker_prometheus.collectors.printer import Entry, Plan, PrinterCollector, PrinterState
from tests.fakes import FakeApis, FakeServer, printer_components, until

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


def test_only_entries_reading_the_changed_field_are_re_rendered():
    state = make_state({"extruder": {"temperature": 21.0, "target": 0.0},
                        "extruder1": {"temperature": 22.0, "target": 0.0}})
    state.render()
    before = list(state.texts)
    state.update({"extruder1": {"target": 200.0}})
    changed = [i for i, (a, b) in enumerate(zip(before, state.texts)) if a is not b]
    assert len(changed) == 1
    entry = state.plan.entries[changed[0]]
    assert entry.obj == "extruder1" and entry.field.path == "target"


def test_a_push_makes_only_its_family_blocks_stale_until_the_next_render():
    """A push re-renders its entries' family blocks only, and says so (stale()) until the
    next render: the component then gives that render a loop callback of its own."""
    state = make_state({"extruder": {"temperature": 21.0, "target": 0.0},
                        "heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}})
    body = state.render()
    assert not state.stale()
    blocks = list(state.blocks)
    state.update({"extruder": {"target": 200.0}})
    assert state.stale()
    body2 = state.render()
    assert not state.stale()
    assert body2 != body and 'klipper_extruder_target{extruder="extruder"} 200.0' in body2
    rebuilt = [f for f, (a, b) in enumerate(zip(blocks, state.blocks)) if a is not b]
    assert [state.plan.families[f][0].split()[2] for f in rebuilt] == ["klipper_extruder_target"]


def test_render_ahead_rebuilds_stale_blocks_a_slice_at_a_time_and_render_then_only_joins():
    status = {"extruder": {"temperature": 21.0, "target": 0.0, "power": 0.0},
              "extruder1": {"temperature": 22.0, "target": 0.0, "power": 0.0},
              "heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}}
    state = make_state(status)
    state.render()
    state.update({"extruder": {"target": 200.0, "power": 0.5}, "heater_bed": {"target": 60.0}})
    stale = len(state.stale_blocks)
    assert stale >= 3
    state.render_ahead(0)  # a deadline already passed: one block
    assert len(state.stale_blocks) == stale - 1
    while state.stale():
        state.render_ahead(0)
    texts = list(state.texts)
    body = state.render()
    assert all(a is b for a, b in zip(texts, state.texts))  # render() re-rendered nothing
    fresh = make_state(status)
    fresh.update({"extruder": {"target": 200.0, "power": 0.5}, "heater_bed": {"target": 60.0}})
    assert body == fresh.render()


def test_a_block_whose_entry_raises_stays_stale_for_render_to_report(monkeypatch):
    state = make_state({"heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}})
    state.render()
    state.update({"heater_bed": {"target": 60.0}})
    stale = set(state.stale_blocks)
    broken = state.plan.entries[next(i for i, t in enumerate(state.texts) if t is None)]
    render = Entry.render
    monkeypatch.setattr(Entry, "render", lambda self, status: (
        {}["broken"] if self is broken else render(self, status)))
    with pytest.raises(KeyError):
        while state.stale():
            state.render_ahead(0)
    assert state.stale_blocks and state.stale_blocks <= stale
    with pytest.raises(KeyError):
        state.render()


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


def test_moonraker_s_ready_event_does_not_wait_for_the_retries(monkeypatch):
    # Moonraker awaits every klippy_ready handler before it finishes connecting to Klippy
    # and before it reports a shutdown: retries must not hold it up.
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (60.0,))
    apis, server, collector = failing_printer(failures=1000)

    async def run():
        await asyncio.wait_for(server.fire("server:klippy_ready")[0], 1.0)
        retrying = collector._retrying
        assert retrying is not None and not retrying.done()
        server.fire("server:klippy_disconnect")  # a restart: the retries end
        await asyncio.wait([retrying], timeout=1.0)
        assert retrying.cancelled()

    asyncio.run(run())
    assert not collector.subscribed()


def test_closing_the_collector_ends_its_retries(monkeypatch):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (60.0,))
    apis, server, collector = failing_printer(failures=1000)

    async def run():
        await server.fire("server:klippy_ready")[0]
        retrying = collector._retrying
        await collector.close()  # Moonraker shutting down
        await asyncio.wait([retrying], timeout=1.0)
        assert retrying.cancelled()

    asyncio.run(run())


def test_retrying_stops_when_klippy_is_no_longer_ready(monkeypatch):
    monkeypatch.setattr(PrinterCollector, "RETRY_SECONDS", (0.001,))
    apis, server, collector = failing_printer(failures=1)

    async def run():
        await server.fire("server:klippy_ready")[0]
        server.components["klippy_connection"].ready = False  # shut down after its ready
        await until(lambda: collector._retrying.done())

    asyncio.run(run())
    assert not collector.subscribed() and apis.list_failures == 0
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
