"""Moonraker-side collectors against stand-in components (no Moonraker process).

Checks what the integration tests cannot reach on this host: values Moonraker does not know
render nothing (never 0), every declared family can be produced, the Go exporter's names and
label keys are declared as compat, and the background cache behaves.
"""
from __future__ import annotations

import asyncio
import re
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

import pytest

from moonraker_prometheus.catalogue import moonraker as catalogue
from moonraker_prometheus.collectors import COLLECTORS, GO_MODULE_ALIASES, resolve_modules
from moonraker_prometheus.collectors.base import PeriodicRefresh
from moonraker_prometheus.collectors.disk import DiskCollector
from moonraker_prometheus.collectors.history import HistoryCollector
from moonraker_prometheus.collectors.jobs import JobQueueCollector
from moonraker_prometheus.collectors.network import NetworkCollector
from moonraker_prometheus.collectors.power import PowerCollector
from moonraker_prometheus.collectors.process import ProcessCollector
from moonraker_prometheus.collectors.sensors import SensorsCollector
from moonraker_prometheus.collectors.server import ServerCollector
from moonraker_prometheus.collectors.spoolman import SpoolmanCollector
from moonraker_prometheus.collectors.system import SystemCollector
from moonraker_prometheus.collectors.updates import UpdatesCollector, update_available
from tests.promtool import promtool_check  # noqa: F401  (fixture)

MOONRAKER_COLLECTORS = (ServerCollector, ProcessCollector, SystemCollector, NetworkCollector,
                        JobQueueCollector, HistoryCollector, DiskCollector, PowerCollector,
                        SensorsCollector, SpoolmanCollector, UpdatesCollector)

# go-exporter-metrics.md, sections "Moonraker process and host" and "Server, job queue, disk,
# history, power, Spoolman": name -> (label keys, Go module).
GO_FAMILIES: Dict[str, Any] = {
    "klipper_moonraker_memory_kb": ((), "process_stats"),
    "klipper_moonraker_cpu_usage": ((), "process_stats"),
    "klipper_moonraker_websocket_connections": ((), "process_stats"),
    "klipper_system_cpu_temp": ((), "process_stats"),
    "klipper_system_cpu": ((), "process_stats"),
    "klipper_system_memory_total": ((), "process_stats"),
    "klipper_system_memory_available": ((), "process_stats"),
    "klipper_system_memory_used": ((), "process_stats"),
    "klipper_system_uptime": ((), "process_stats"),
    "klipper_system_throttled_bits": ((), "process_stats"),
    "klipper_system_throttled_flag_info": (("flag",), "process_stats"),
    "klipper_network_bandwidth": (("interface",), "network_stats"),
    "klipper_system_cpu_count": ((), "system_info"),
    "klipper_service_available": (("service",), "system_info"),
    "klipper_service_state_info": (("service", "state"), "system_info"),
    "klipper_service_sub_state_info": (("service", "sub_state"), "system_info"),
    "klipper_component_info": (("component",), "server_info"),
    "klipper_component_failed_info": (("failed_component",), "server_info"),
    "klipper_moonraker_version_info": (("version",), "server_info"),
    "klipper_api_version_info": (("version",), "server_info"),
    "klipper_job_queue_length": ((), "job_queue"),
    "klipper_job_queue_state_info": (("state",), "job_queue"),
    "klipper_disk_usage_total": ((), "directory_info"),
    "klipper_disk_usage_used": ((), "directory_info"),
    "klipper_disk_usage_available": ((), "directory_info"),
    "klipper_power_device_info": (("device", "type"), "device_power"),
    "klipper_power_device_status": (("device",), "device_power"),
    "klipper_power_device_state_info": (("device", "state"), "device_power"),
    "klipper_spoolman_connected": ((), "spoolman"),
    "klipper_spoolman_active_spool_id": ((), "spoolman"),
    "klipper_spoolman_pending_reports": ((), "spoolman"),
    "klipper_spoolman_spool_info": (
        ("spool_id", "filament_name", "material", "color", "vendor"), "spoolman"),
}
for _d in ("rx", "tx"):
    for _f in ("bytes", "packets", "errs", "drop"):
        GO_FAMILIES[f"klipper_network_{_d}_{_f}"] = (("interface",), "network_stats")
for _n in ("total_jobs", "total_time", "total_print_time", "total_filament_used",
           "longest_job", "longest_print"):
    GO_FAMILIES[f"klipper_{_n}"] = ((), "history")
for _n in ("object_height", "first_layer_height", "layer_height", "total_duration"):
    GO_FAMILIES[f"klipper_current_print_{_n}"] = ((), "history")
for _n in ("remaining_weight", "used_weight", "remaining_length", "used_length"):
    GO_FAMILIES[f"klipper_spoolman_{_n}"] = (("spool_id",), "spoolman")

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def parse(text: str) -> List[Any]:
    out = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, line
            out.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return out


# ----- stand-in Moonraker -----

class FakeLoop:
    def create_task(self, coro: Any) -> "asyncio.Task[Any]":
        return asyncio.get_event_loop().create_task(coro)

    async def run_in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)


class FakeServer:
    def __init__(self, components: Dict[str, Any], warnings: Optional[Dict[str, str]] = None,
                 failed: Optional[List[str]] = None, version: Optional[str] = "v0.11.0") -> None:
        self.components = dict(components)
        self.failed_components = failed or []
        self.warnings = warnings if warnings is not None else {}
        self.handlers: Dict[str, List[Callable[..., Any]]] = {}
        self.version = version

    def lookup_component(self, name: str, default: Any = None) -> Any:
        return self.components.get(name, default)

    def register_event_handler(self, event: str, callback: Callable[..., Any]) -> None:
        self.handlers.setdefault(event, []).append(callback)

    def get_event_loop(self) -> FakeLoop:
        return FakeLoop()

    def get_app_args(self) -> Dict[str, Any]:
        return {"software_version": self.version}

    def get_api_version(self) -> Any:
        return (1, 5, 0)


class FakeCursor:
    def __init__(self, rows: List[Any]) -> None:
        self.rows = rows

    async def fetchall(self) -> List[Any]:
        return self.rows


class FakeTable:
    def __init__(self, rows: List[Any]) -> None:
        self.rows = rows

    async def execute(self, sql: str, params: Any = ()) -> FakeCursor:
        assert "GROUP BY status" in sql
        return FakeCursor(self.rows)


class FakeUpdater:
    def __init__(self, status: Dict[str, Any], last_refresh_time: float) -> None:
        self.status = status
        self.last_refresh_time = last_refresh_time

    def get_update_status(self) -> Dict[str, Any]:
        return dict(self.status)


def unknown_components() -> Dict[str, Any]:
    """Components that exist but know nothing yet (first seconds after start, odd hosts)."""
    return {
        "proc_stats": SimpleNamespace(
            proc_stat_queue=[{"time": 1.0, "cpu_usage": None, "memory": None,
                              "mem_units": None}],
            cpu_usage={}, memory_usage={}, last_net_stats={}, vcgencmd=None,
            last_throttled=0, watchdog=None),
        "machine": SimpleNamespace(get_system_info=lambda: {}),
        "job_queue": SimpleNamespace(queued_jobs={}, queue_state=None),
        "history": SimpleNamespace(
            job_totals={}, history_table=None, current_job_id=None,
            current_job=SimpleNamespace(filename="a.gcode", metadata={}, start_time=None,
                                        total_duration=None)),
        "job_state": SimpleNamespace(get_last_stats=lambda: {}),
        "file_manager": SimpleNamespace(get_directory=lambda root="gcodes": ""),
        "power": SimpleNamespace(devices={"plug": SimpleNamespace(
            name="plug", type="tplink_smartplug", state="init", locked_while_printing=None)}),
        "sensor": SimpleNamespace(sensors={"room": SimpleNamespace(
            name="room", type="mqtt", last_measurements={}, param_info=[],
            error_state=None)}),
        "spoolman": SimpleNamespace(spoolman_url="", ws_connected=False, spool_id=None,
                                    pending_reports={}),
        "update_manager": SimpleNamespace(updaters={"klipper": FakeUpdater(
            {"configured_type": "git_repo", "version": "?", "remote_version": "?",
             "commits_behind": []}, 0.0)}),
    }


def known_components(tmp_path: Any) -> Dict[str, Any]:
    """Components that know everything: every declared family can appear."""
    now = time.time()
    return {
        "proc_stats": SimpleNamespace(
            proc_stat_queue=[{"time": now, "cpu_usage": 2.5, "memory": 51200,
                              "mem_units": "kB"}],
            cpu_usage={"cpu": 12.5, "cpu0": 10.0, "cpu1": 15.0},
            memory_usage={"total": 1000, "available": 400, "used": 600},
            last_net_stats={"eth0": {"rx_bytes": 10, "tx_bytes": 20, "rx_packets": 1,
                                     "tx_packets": 2, "rx_errs": 0, "tx_errs": 0,
                                     "rx_drop": 0, "tx_drop": 0, "bandwidth": 3.5}},
            vcgencmd=object(), last_throttled=0x50005,
            watchdog=SimpleNamespace(blocked_count=2)),
        "websockets": SimpleNamespace(get_count=lambda: 3),
        "machine": SimpleNamespace(get_system_info=lambda: {
            "cpu_info": {"cpu_count": 4},
            "available_services": ["klipper", "moonraker"],
            "service_state": {"klipper": {"active_state": "active", "sub_state": "running"},
                              "moonraker": {"active_state": "active",
                                            "sub_state": "running"}},
            "distribution": {"name": "Debian GNU/Linux 12", "kernel_version": "6.1.0"},
            "python": {"version": (3, 9, 2, "final", 0)}}),
        "job_queue": SimpleNamespace(queue_state="paused", queued_jobs={
            "0001": SimpleNamespace(filename="cube.gcode", time_added=now)}),
        "history": SimpleNamespace(
            job_totals={"total_jobs": 3, "total_time": 100.0, "total_print_time": 90.0,
                        "total_filament_used": 1234.5, "longest_job": 50.0,
                        "longest_print": 45.0},
            history_table=FakeTable([("completed", 2), ("cancelled", 1),
                                     ("in_progress", 1)]),
            current_job_id=10,
            current_job=SimpleNamespace(
                filename="cube.gcode", start_time=now - 30, total_duration=0.0,
                metadata={"object_height": 20.0, "first_layer_height": 0.3,
                          "layer_height": 0.2, "estimated_time": 600,
                          "filament_total": 1500.0, "filament_weight_total": 4.5})),
        "job_state": SimpleNamespace(get_last_stats=lambda: {
            "filename": "cube.gcode", "total_duration": 30.0, "print_duration": 25.0}),
        "file_manager": SimpleNamespace(get_directory=lambda root="gcodes": str(tmp_path)),
        "power": SimpleNamespace(devices={"plug": SimpleNamespace(
            name="plug", type="tplink_smartplug", state="on", locked_while_printing=True)}),
        "sensor": SimpleNamespace(sensors={"room": SimpleNamespace(
            name="Room", type="mqtt", last_measurements={"temperature": 21.5},
            param_info=[{"name": "temperature", "units": "C"}],
            error_state="MQTT Disconnected")}),
        "spoolman": SimpleNamespace(
            spoolman_url="http://spoolman.invalid/api", ws_connected=True, spool_id=1,
            pending_reports={1: 12.5}, http_client=FakeHttp()),
        "update_manager": SimpleNamespace(updaters={
            "klipper": FakeUpdater({"configured_type": "git_repo", "version": "v0.12.0-1",
                                    "remote_version": "v0.12.0-5", "commits_behind_count": 4,
                                    "is_valid": True}, now),
            "system": FakeUpdater({"configured_type": "system", "package_count": 2,
                                   "package_list": ["a", "b"]}, now)}),
    }


class FakeResponse:
    status_code = 200
    error = None

    def has_error(self) -> bool:
        return False

    def json(self) -> Any:
        return [{"id": 1, "filament": {"name": "PLA Black", "material": "PLA",
                                       "color_hex": "000000", "vendor": {"name": "Acme"}},
                 "remaining_weight": 500.0, "used_weight": 500.0,
                 "remaining_length": 160000.0, "used_length": 160000.0}]


class FakeHttp:
    async def get(self, url: str, **kwargs: Any) -> FakeResponse:
        assert url.endswith("/v1/spool")
        return FakeResponse()


async def started(server: FakeServer) -> List[Any]:
    collectors = [cls(server) for cls in MOONRAKER_COLLECTORS]  # type: ignore[arg-type]
    for collector in collectors:
        await collector.start()
    await asyncio.sleep(0.05)  # background refreshes run once
    return collectors


async def render_all(server: FakeServer) -> Dict[str, str]:
    collectors = await started(server)
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
    for name, (labels, go_module) in GO_FAMILIES.items():
        assert name in by_name, f"{name} is not declared"
        metric = by_name[name]
        assert metric.labels[:len(labels)] == labels, name
        assert metric.compat, f"{name} must be marked compat"
        known, unknown = resolve_modules([go_module])
        assert not unknown and module_of[name] in known, (name, go_module)


def test_go_module_names_map_to_these_collectors():
    for go_name in ("process_stats", "network_stats", "system_info", "server_info",
                    "job_queue", "directory_info", "history", "spoolman", "device_power"):
        known, unknown = resolve_modules([go_name])
        assert known and not unknown, go_name
    assert GO_MODULE_ALIASES["directory_info"] == "disk"


def test_each_collector_has_a_one_line_docstring_and_declares_its_metrics():
    for cls in MOONRAKER_COLLECTORS:
        doc = (cls.__doc__ or "").strip()
        assert doc and "\n" not in doc, cls.__name__
        assert cls.metrics, cls.__name__


def test_unknown_values_render_nothing_not_zeros():
    server = FakeServer(unknown_components(), version=None)
    rendered = asyncio.run(render_all(server))
    allowed = {
        # Always known: the clock, Moonraker's own components, empty queue length, the
        # power device's existence and its state string, the Spoolman connection facts.
        "server": {"klipper_component_info", "klipper_api_version_info",
                   "klipper_moonraker_warnings"},
        "process": {"klipper_system_uptime"},
        "jobs": {"klipper_job_queue_length"},
        "power": {"klipper_power_device_info", "klipper_power_device_state_info"},
        "sensors": {"klipper_moonraker_sensor_info"},
        "spoolman": {"klipper_spoolman_connected", "klipper_spoolman_active_spool_id",
                     "klipper_spoolman_pending_reports"},
        "history": {"klipper_current_job_info"},
        "updates": {"klipper_update_manager_component_info"},
    }
    for name, text in rendered.items():
        emitted = {sample[0] for sample in parse(text)}
        assert emitted <= allowed.get(name, set()), (name, emitted)
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


@pytest.mark.parametrize("cls", MOONRAKER_COLLECTORS)
def test_render_reads_memory_only(cls, tmp_path):
    """render() is synchronous: it never returns a coroutine and never awaits."""
    server = FakeServer(known_components(tmp_path))
    collector = cls(server)  # type: ignore[arg-type]
    assert isinstance(collector.render(), str)
    assert not asyncio.iscoroutinefunction(cls.render)
