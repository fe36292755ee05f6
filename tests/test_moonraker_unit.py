"""Moonraker-side collectors against stand-in components (no Moonraker process).

Checks what the integration tests cannot reach on this host: values Moonraker does not know
render nothing (never 0), every declared family can be produced, the Go exporter's names and
label keys are declared as compat, and the background cache behaves.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Sequence, Set

import pytest

from moonraker_prometheus.catalogue import moonraker as catalogue
from moonraker_prometheus.collectors import COLLECTORS, GO_MODULE_ALIASES, resolve_modules
from moonraker_prometheus.collectors.base import (Collector, PeriodicRefresh, RenderCache,
                                                  render_stale_ahead)
from moonraker_prometheus.collectors.disk import DiskCollector
from moonraker_prometheus.collectors.history import HistoryCollector
from moonraker_prometheus.collectors.jobs import JobQueueCollector
from moonraker_prometheus.collectors.power import PowerCollector
from moonraker_prometheus.collectors.process import ProcessCollector
from moonraker_prometheus.collectors.sensors import SensorsCollector
from moonraker_prometheus.collectors.server import ServerCollector
from moonraker_prometheus.collectors.spoolman import SpoolmanCollector
from moonraker_prometheus.collectors.system import SystemCollector
from moonraker_prometheus.collectors.updates import UpdatesCollector, update_available
from simulator.moonraker_standin import (FakeApis, FakeServer, FakeUpdater, klippy_ready,
                                          known_components, printer_components,
                                          unknown_components)
from tests.go_families import GO_MOONRAKER_FAMILIES
from tests.promtool import promtool_check  # noqa: F401  (fixture)
from tests.render_guard import assert_renders_from_memory

pytestmark = pytest.mark.unit

# The collectors of Moonraker's own data: those whose families catalogue/moonraker.py
# declares (the table's others read Klippy: tests/test_printer_collector.py and others).
MOONRAKER_COLLECTORS = tuple(
    cls for cls in COLLECTORS
    if all(any(m is declared for declared in vars(catalogue).values()) for m in cls.metrics))

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def parse(text: str) -> List[Any]:
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, line
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


async def started(server: FakeServer, classes: Sequence[type] = MOONRAKER_COLLECTORS
                  ) -> List[Any]:
    collectors = [cls(server) for cls in classes]
    for collector in collectors:
        await collector.start()
    await asyncio.sleep(0.05)  # background refreshes run once
    return collectors


async def render_all(server: FakeServer, classes: Sequence[type] = MOONRAKER_COLLECTORS
                     ) -> Dict[str, str]:
    collectors = await started(server, classes)
    try:
        return {c.name: c.render() for c in collectors}
    finally:
        for c in collectors:
            await c.close()


# ----- tests -----

def test_go_families_declared_with_same_names_labels_and_module():
    by_name = {}
    module_of = {}
    for cls in COLLECTORS:
        for metric in cls.metrics:
            by_name[metric.name] = metric
            module_of[metric.name] = cls.name
    for name, (labels, go_module) in GO_MOONRAKER_FAMILIES.items():
        assert name in by_name, f"{name} is not declared"
        metric = by_name[name]
        assert metric.labels[:len(labels)] == labels, name
        assert metric.compat, f"{name} must be marked compat"
        known, unknown = resolve_modules([go_module])
        # the klippy module is served whatever the selection (component.ALWAYS_SERVED)
        assert not unknown and module_of[name] in known + ["klippy"], (name, go_module)


def test_go_module_names_map_to_these_collectors():
    for go_name in ("process_stats", "network_stats", "system_info", "server_info",
                    "job_queue", "directory_info", "history", "spoolman", "device_power"):
        known, unknown = resolve_modules([go_name])
        assert known and not unknown, go_name
    assert GO_MODULE_ALIASES["directory_info"] == "disk"


def test_each_collector_has_a_one_line_docstring_and_declares_its_metrics():
    for cls in COLLECTORS:
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, cls.__name__
        assert cls.metrics, cls.__name__


# What each Moonraker collector may serve while its components know nothing: what is always
# known (the clock, Moonraker's own components, the queue's length, a power device's
# existence and state string, Spoolman's connection facts). One row per collector.
ALWAYS_KNOWN: Dict[str, Set[str]] = {
    "server": {"klipper_component_info", "klipper_api_version_info",
               "klipper_moonraker_warnings"},
    "process": {"klipper_system_uptime"},
    "system": set(),
    "network": set(),
    "jobs": {"klipper_job_queue_length"},
    "history": {"klipper_current_job_info"},
    "disk": set(),
    "power": {"klipper_power_device_info", "klipper_power_device_state_info"},
    "sensors": {"klipper_moonraker_sensor_info"},
    "spoolman": {"klipper_spoolman_connected", "klipper_spoolman_active_spool_id",
                 "klipper_spoolman_pending_reports"},
    "updates": {"klipper_update_manager_component_info"},
}


class LookupServer(FakeServer):
    """A FakeServer that records the components looked up: found, and missing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.found: Set[str] = set()
        self.missing: Set[str] = set()

    def lookup_component(self, name: str, default: Any = None) -> Any:
        (self.found if name in self.components else self.missing).add(name)
        return super().lookup_component(name, default)


def test_unknown_values_render_nothing_not_zeros():
    """Each collector, on unknown_components(): what it renders is always known. A
    collector that looks components up must find a stand-in there (one that reads the
    Server alone has FakeServer for one), and have a row in ALWAYS_KNOWN."""
    rendered = {}
    for cls in MOONRAKER_COLLECTORS:
        server = LookupServer(unknown_components(), version=None)
        rendered.update(asyncio.run(render_all(server, [cls])))
        assert server.found or not server.missing, (
            f"{cls.name}: no stand-in in simulator/moonraker_standin.py's unknown_components() for "
            f"{sorted(server.missing)}")
        assert cls.name in ALWAYS_KNOWN, f"{cls.name}: add its row to ALWAYS_KNOWN"
        emitted = {sample[0] for sample in parse(rendered[cls.name])}
        assert emitted <= ALWAYS_KNOWN[cls.name], (cls.name, emitted)
    assert 'klipper_power_device_state_info{device="plug",state="init"} 1.0' \
        in rendered["power"]
    assert "klipper_power_device_status" not in rendered["power"]
    assert 'remote_version=""' in rendered["updates"]
    assert "klipper_spoolman_active_spool_id -1.0" in rendered["spoolman"]


def test_components_absent_render_nothing():
    server = FakeServer({})
    rendered = asyncio.run(render_all(server))
    for name, text in rendered.items():
        if name != "server":
            assert text == "", (name, text)


def test_every_declared_family_can_be_produced_and_passes_promtool(tmp_path, promtool_check):
    server = FakeServer(known_components(tmp_path), warnings={"w": "a warning"},
                        failed=["broken"])
    collectors = [cls(server) for cls in MOONRAKER_COLLECTORS]

    async def run() -> Dict[str, str]:
        for c in collectors:
            await c.start()
        await asyncio.sleep(0.05)
        for handler in server.handlers.get("proc_stats:proc_stat_update", []):
            handler({"cpu_temp": 48.3})
        try:
            return {c.name: c.render() for c in collectors}
        finally:
            for c in collectors:
                await c.close()

    rendered = asyncio.run(run())
    body = "".join(rendered.values())
    for c in collectors:
        emitted = {s[0] for s in parse(rendered[c.name])}
        declared = {m.name for m in c.metrics}
        assert emitted <= declared, (c.name, emitted - declared)
        assert declared <= emitted, (c.name, declared - emitted)
    found = {name + labels: value for name, labels, value in parse(body)}
    assert found["klipper_system_cpu_temp"] == 48.3
    assert found['klipper_system_cpu_core_usage_ratio{cpu="cpu1"}'] == 0.15
    assert found["klipper_system_throttled_bits"] == float(0x50005)
    assert found['klipper_system_throttled_flag_info{flag="Under-Voltage Detected"}'] == 1.0
    assert found['klipper_system_throttled_flag_info{flag="Currently Throttled"}'] == 1.0
    assert found['klipper_history_jobs_total{status="completed"}'] == 2.0
    assert 'klipper_history_jobs_total{status="in_progress"}' not in found
    assert found["klipper_current_job_remaining_seconds"] == 575.0
    assert found["klipper_current_job_filament_total_meters"] == 1.5
    assert found["klipper_current_print_total_duration"] == 30.0
    assert found['klipper_spoolman_pending_filament_meters{spool_id="1"}'] == 0.0125
    assert found['klipper_update_manager_update_available{component="klipper"}'] == 1.0
    assert found['klipper_update_manager_commits_behind{component="klipper"}'] == 4.0
    assert found["klipper_update_manager_system_packages_upgradable"] == 2.0
    assert found["klipper_moonraker_warnings"] == 1.0
    promtool_check(body)


def test_update_available_needs_a_refresh_result():
    assert update_available({"version": "?", "remote_version": "?"}) is None
    assert update_available({"version": "v1", "remote_version": "v1"}) is False
    assert update_available({"version": "v1", "remote_version": "v2"}) is True
    assert update_available({"version": "v1", "remote_version": "v1",
                             "commits_behind_count": 2}) is True
    assert update_available({"package_count": 0}) is False


def test_updates_render_is_cached_and_never_refreshes(tmp_path):
    server = FakeServer(known_components(tmp_path))
    collector = UpdatesCollector(server)  # type: ignore[arg-type]
    updater = server.components["update_manager"].updaters["klipper"]
    refreshed = []
    updater.refresh = lambda: refreshed.append(1)  # a scrape must never call this
    first = collector.render()
    updater.status["remote_version"] = "v0.12.0-9"
    assert collector.render() == first  # cached
    for handler in server.handlers["update_manager:update_refreshed"]:
        handler({})
    assert 'remote_version="v0.12.0-9"' in collector.render()
    assert not refreshed


def test_periodic_refresh_keeps_last_value_reports_age_and_drops_old_values():
    calls: List[int] = []

    async def fetch() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("gone")
        return len(calls)

    async def run() -> None:
        refresher = PeriodicRefresh(FakeServer({}), "test", fetch, interval=3600,  # type: ignore[arg-type]
                                    max_age=0.2)
        assert refresher.current() is None and refresher.age() is None
        refresher.start()
        await asyncio.sleep(0.01)
        assert refresher.current() == 1 and refresher.ok
        refresher.trigger()
        await asyncio.sleep(0.01)
        assert refresher.ok is False and refresher.current() == 1  # kept after a failure
        assert refresher.age() is not None and refresher.age() >= 0.0
        await asyncio.sleep(0.25)
        assert refresher.current() is None  # older than max_age: dropped
        refresher.trigger()
        await asyncio.sleep(0.01)
        assert refresher.current() == 3 and refresher.ok
        await refresher.close()

    asyncio.run(run())


def test_history_refreshes_outcomes_when_a_job_finishes(tmp_path):
    components = known_components(tmp_path)
    table = components["history"].history_table
    server = FakeServer(components)

    async def run() -> None:
        collector = HistoryCollector(server)  # type: ignore[arg-type]
        await collector.start()
        await asyncio.sleep(0.01)
        assert 'klipper_history_jobs_total{status="completed"} 2.0' in collector.render()
        table.rows = [("completed", 3), ("cancelled", 1)]
        for handler in server.handlers["history:history_changed"]:
            handler({"action": "added"})
        await asyncio.sleep(0.01)
        assert 'klipper_history_jobs_total{status="completed"} 2.0' in collector.render()
        for handler in server.handlers["history:history_changed"]:
            handler({"action": "finished"})
        await asyncio.sleep(0.01)
        assert 'klipper_history_jobs_total{status="completed"} 3.0' in collector.render()
        await collector.close()

    asyncio.run(run())


def test_disk_usage_is_measured_in_the_background(tmp_path):
    server = FakeServer(known_components(tmp_path))

    async def run() -> None:
        collector = DiskCollector(server)  # type: ignore[arg-type]
        assert collector.render() == ""  # nothing measured yet: nothing, not zeros
        await collector.start()
        await asyncio.sleep(0.01)
        text = collector.render()
        assert "klipper_disk_usage_total " in text and "klipper_disk_usage_age_seconds" in text
        await collector.close()

    asyncio.run(run())


PRINTER_OBJECTS = {
    "webhooks": {"state": "ready"}, "heater_bed": {"temperature": 60.0, "target": 60.0},
    "extruder": {"temperature": 200.0, "target": 210.0, "power": 0.5},
    "mcu": {"last_stats": {"mcu_task_avg": 0.00002, "mcu_task_stddev": 0.00001}},
    "mmu": {"enabled": True, "num_gates": 2, "gate_status": [1, 2]},
    "box": {"state": "connect", "T1": {"state": "connect", "material_type": ["PLA"]}},
}


def every_collector(tmp_path: Any) -> Callable[[type], Callable[[], str]]:
    """make(cls) -> a fresh collector's render, on a server with every component known
    and Klippy ready with PRINTER_OBJECTS (a fresh collector has nothing cached)."""
    components = known_components(tmp_path)

    def make(cls: type) -> Callable[[], str]:
        apis = FakeApis(list(PRINTER_OBJECTS), PRINTER_OBJECTS)
        server = FakeServer({**components, **printer_components(apis)})
        server.components["klippy_connection"].state = SimpleNamespace(name="READY",
                                                                       message="")
        server.components["klippy_connection"].is_connected = lambda: True
        collector = cls(server)
        asyncio.run(klippy_ready(server))
        return collector.render
    return make


@pytest.mark.parametrize("cls", COLLECTORS, ids=lambda c: c.name)
def test_render_reads_memory_only(cls, tmp_path):
    """render() does no I/O (no file, socket or process) and never stalls the loop."""
    text = assert_renders_from_memory(lambda: every_collector(tmp_path)(cls))
    # each produced families, so the check saw work (disk: its background refresh, which
    # render() never waits for, is not started here)
    assert cls.name == "disk" or text


class ReadsAFile(ServerCollector):
    def render(self) -> str:
        with open(__file__, encoding="utf-8") as f:
            f.read(10)
        return super().render()


class Sleeps(ServerCollector):
    def render(self) -> str:
        time.sleep(0.05)
        return super().render()


class RunsACommand(ServerCollector):
    def render(self) -> str:
        import subprocess
        subprocess.run(["true"], check=False)
        return super().render()


@pytest.mark.parametrize("cls", (ReadsAFile, Sleeps, RunsACommand), ids=lambda c: c.__name__)
def test_memory_only_check_fails_on_io_or_a_stall(cls, tmp_path):
    """The check above can fail: a file read, a 50 ms sleep or a command during render."""
    with pytest.raises(AssertionError):
        assert_renders_from_memory(lambda: every_collector(tmp_path)(cls))


def test_collectors_follow_one_contract():
    """render() is every collector's one method: no collect() stub, nothing that raises."""
    for cls in COLLECTORS:
        assert not getattr(cls.render, "__isabstractmethod__", False), cls
        assert not hasattr(cls, "collect"), f"{cls.__name__} still has collect()"
        assert not asyncio.iscoroutinefunction(cls.render), cls
    with pytest.raises(TypeError):
        Collector(FakeServer({}))  # type: ignore[abstract]


class _Backlog(Collector):
    """A collector with `units` of re-rendering to do, one per render_ahead() call."""

    name = "backlog"

    def __init__(self, units: int, fail: bool = False) -> None:
        super().__init__(FakeServer({}))
        self.units, self.fail, self.turns = units, fail, []

    def render(self) -> str:
        return ""

    def stale(self) -> bool:
        return self.units > 0

    def render_ahead(self, deadline_ns: int) -> None:
        self.turns.append(_TICKS[0])
        if self.fail:
            raise ValueError("a reader broke")
        self.units -= 1


_TICKS = [0]


def test_stale_collectors_render_ahead_in_loop_callbacks_of_their_own():
    """Each slice of re-rendering runs after the loop has run other callbacks (a ticker
    here), never in the scrape's first callback nor in the one that renders the response;
    a fresh collector costs no loop turn."""
    async def scrape(collectors):
        async def ticker():
            while True:
                _TICKS[0] += 1
                await asyncio.sleep(0)
        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0)
        started = _TICKS[0]
        spent = await render_stale_ahead(collectors, 1)
        ended = _TICKS[0]
        task.cancel()
        return started, ended, spent

    backlog, fresh = _Backlog(3), _Backlog(0)
    started, ended, spent = asyncio.run(scrape([fresh, backlog]))
    assert backlog.units == 0 and fresh.turns == []
    assert list(spent) == ["backlog"] and spent["backlog"] > 0  # part of its duration
    ticks = [started, *backlog.turns, ended]  # `ended`: when the scrape would render
    assert all(b > a for a, b in zip(ticks, ticks[1:])), ticks
    assert ended - started == 4


def test_what_a_push_makes_stale_during_the_last_turn_is_rendered_ahead_too():
    async def scrape(collector):
        async def push():  # lands in the loop turn after the first slice
            await asyncio.sleep(0)
            collector.units += 1
        task = asyncio.ensure_future(push())
        await render_stale_ahead([collector], 1)
        await task

    backlog = _Backlog(1)
    asyncio.run(scrape(backlog))
    assert len(backlog.turns) == 2 and not backlog.stale()


def test_a_render_ahead_that_raises_ends_its_turn_and_leaves_the_error_to_render():
    broken, after = _Backlog(2, fail=True), _Backlog(1)
    asyncio.run(render_stale_ahead([broken, after], 1))
    assert len(broken.turns) == 1 and broken.stale() and after.units == 0


def test_a_failing_updater_is_logged_once_and_the_others_served(tmp_path, caplog):
    server = FakeServer(known_components(tmp_path))
    broken = FakeUpdater({}, time.time())
    broken.get_update_status = lambda: {}["missing"]  # type: ignore[method-assign]
    server.components["update_manager"].updaters["broken"] = broken
    collector = UpdatesCollector(server)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        text = collector.render()
        collector._cache.invalidate()
        collector.render()
    assert 'component="klipper"' in text and 'component="broken"' not in text
    logged = [r for r in caplog.records if "broken" in r.getMessage()]
    assert len(logged) == 1 and "KeyError" in logged[0].getMessage()


def test_render_cache_follows_its_key_invalidation_and_age():
    renders: List[str] = []

    def render() -> str:
        renders.append("x")
        return f"text {len(renders)}"

    cache = RenderCache()
    source = {"a": 1}
    assert cache.text(source, render) == "text 1"
    assert cache.text(source, render) == "text 1"  # same object: cached
    assert cache.text({"a": 1}, render) == "text 1"  # an equal key: cached
    assert cache.text({"a": 2}, render) == "text 2"  # another value: rendered again
    assert cache.text(("x", 1.5), render) == "text 3"
    assert cache.text(("x", 1.5), render) == "text 3"
    cache.invalidate()
    assert cache.text(("x", 1.5), render) == "text 4"
    aged = RenderCache(max_age=0.0)
    assert aged.text(None, render) == "text 5"
    time.sleep(0.001)
    assert aged.text(None, render) == "text 6"


def _system_info() -> Dict[str, Any]:
    return {"cpu_info": {"cpu_count": 4}, "available_services": ["klipper"],
            "service_state": {"klipper": {"active_state": "active", "sub_state": "running"}}}


# Moonraker changes much of what the collectors read in place (dicts, lists, attributes):
# each row changes one such input the way Moonraker does and names a sample that must
# then be served. A collector whose cache key misses that input serves the old text.
IN_PLACE_CHANGES = [
    (ServerCollector, lambda s, c: s.components.update(extra=object()),
     'klipper_component_info{component="extra"} 1.0'),
    (ServerCollector, lambda s, c: s.failed_components.append("gone"),
     'klipper_component_failed_info{failed_component="gone"} 1.0'),
    (ServerCollector, lambda s, c: s.warnings.update(w2="another"),
     "klipper_moonraker_warnings 2.0"),
    (ProcessCollector, lambda s, c: c["proc_stats"].memory_usage.update(available=300),
     "klipper_system_memory_available 300.0"),
    (ProcessCollector, lambda s, c: c["proc_stats"].proc_stat_queue.append(
        {"time": 2.0, "cpu_usage": 7.5, "memory": 51300, "mem_units": "kB"}),
     "klipper_moonraker_cpu_usage 7.5"),
    (ProcessCollector, lambda s, c: setattr(c["proc_stats"].watchdog, "blocked_count", 5),
     "klipper_moonraker_event_loop_blocked_total 5.0"),
    (ProcessCollector, lambda s, c: setattr(c["proc_stats"], "last_throttled", 1),
     "klipper_system_throttled_bits 1.0"),
    (ProcessCollector, lambda s, c: s.fire("proc_stats:proc_stat_update", {"cpu_temp": 61.0}),
     "klipper_system_cpu_temp 61.0"),
    (SystemCollector, lambda s, c: c["machine"].get_system_info()["service_state"]["klipper"]
     .update(active_state="failed"),
     'klipper_service_state_info{service="klipper",state="failed"} 1.0'),
    (SystemCollector, lambda s, c: c["machine"].get_system_info()["available_services"]
     .append("crowsnest"), 'klipper_service_available{service="crowsnest"} 1.0'),
    (JobQueueCollector, lambda s, c: c["job_queue"].queued_jobs.update(
        {"0002": SimpleNamespace(filename="two.gcode", time_added=5.0)}),
     "klipper_job_queue_length 2.0"),
    (JobQueueCollector, lambda s, c: setattr(c["job_queue"], "queue_state", "ready"),
     'klipper_job_queue_state_info{state="ready"} 1.0'),
    (HistoryCollector, lambda s, c: c["history"].job_totals.update(total_jobs=4),
     "klipper_total_jobs 4.0"),
    (HistoryCollector, lambda s, c: c["history"].current_job.metadata.update(
        layer_height=0.3), "klipper_current_print_layer_height 0.3"),
    (HistoryCollector, lambda s, c: setattr(c["job_state"], "get_last_stats", lambda: {
        "filename": "cube.gcode", "total_duration": 40.0, "print_duration": 35.0}),
     "klipper_current_print_total_duration 40.0"),
    (PowerCollector, lambda s, c: setattr(c["power"].devices["plug"], "state", "off"),
     'klipper_power_device_status{device="plug"} 0.0'),
    (PowerCollector, lambda s, c: setattr(c["power"].devices["plug"],
                                          "locked_while_printing", False),
     'klipper_power_device_locked_while_printing{device="plug"} 0.0'),
    (SensorsCollector, lambda s, c: c["sensor"].sensors["room"].last_measurements.update(
        temperature=22.0), "22.0"),
    (SensorsCollector, lambda s, c: setattr(c["sensor"].sensors["room"], "error_state",
                                            "Timeout"), 'error="Timeout"'),
    (SpoolmanCollector, lambda s, c: c["spoolman"].pending_reports.update({1: 20.0}),
     'klipper_spoolman_pending_filament_meters{spool_id="1"} 0.02'),
    (SpoolmanCollector, lambda s, c: setattr(c["spoolman"], "spool_id", 2),
     "klipper_spoolman_active_spool_id 2.0"),
    (SpoolmanCollector, lambda s, c: setattr(c["spoolman"], "ws_connected", False),
     "klipper_spoolman_connected 0.0"),
]


@pytest.mark.parametrize("cls, change, expected", IN_PLACE_CHANGES,
                         ids=[f"{row[0].name}-{i}" for i, row in enumerate(IN_PLACE_CHANGES)])
def test_a_cached_collector_follows_what_moonraker_changes_in_place(
        cls, change, expected, tmp_path):
    components = known_components(tmp_path)
    info = _system_info()
    components["machine"] = SimpleNamespace(get_system_info=lambda: info)
    server = FakeServer(components, warnings={"w": "a warning"}, failed=["broken"])
    collector = cls(server)
    first = collector.render()
    assert expected not in first
    if cls.name not in ("process", "history"):  # their uptime / age lines move every render
        assert collector.render() is first  # nothing changed: the cached text itself
    change(server, components)
    assert expected in collector.render()
