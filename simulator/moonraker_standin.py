"""The one stand-in Moonraker server for unit tests and benchmarks (no Moonraker process).

`FakeServer(components)` answers what the collectors ask a Moonraker `Server`:
`lookup_component`, `register_event_handler` (kept in `handlers`, one list per event;
`fire()` calls them), `get_event_loop`, `get_app_args`, `get_api_version`, and the
`components`, `failed_components` and `warnings` attributes. `FakeConnection` and
`FakeApis` stand in for `klippy_connection` and `klippy_apis`; `printer_components()`
gives both; `klippy_ready(server)` fires Klippy's ready event as Moonraker does.

Fixed inputs, shared by the unit tests, bench/bench_render_ab.py and
scripts/compare_outputs.py (which loads this file by its path, so it imports nothing of the
package): `known_components()` (Moonraker components that know everything, so every declared
family can appear),
`unknown_components()` (the same components knowing nothing yet), and
`recorded_printer()` (the object list and status of the simulated printer, recorded from
a live Klippy into simulator/printer_status.json).
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional, Tuple


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

    def fire(self, event: str, *args: Any) -> List[Any]:
        """Call every handler of `event`; returns what they returned (coroutines too)."""
        return [handler(*args) for handler in self.handlers.get(event, [])]

    def get_event_loop(self) -> FakeLoop:
        return FakeLoop()

    def get_app_args(self) -> Dict[str, Any]:
        return {"software_version": self.version}

    def get_api_version(self) -> Any:
        return (1, 5, 0)

    def get_host_info(self) -> Dict[str, Any]:
        return {"hostname": "printer-1"}

    def get_klippy_info(self) -> Dict[str, Any]:
        return {"software_version": "v0.12.0-test"}


class FakeConnection:
    """klippy_connection: ready or not, and Moonraker's subscription cache."""

    def __init__(self) -> None:
        self.ready = True
        self.cache: Dict[str, Dict[str, Any]] = {}

    def is_ready(self) -> bool:
        return self.ready

    def get_subscription_cache(self) -> Dict[str, Dict[str, Any]]:
        return self.cache


class FakeApis:
    """klippy_apis: an object list and a status; records subscriptions and callbacks."""

    def __init__(self, objects: List[str], status: Dict[str, Any]) -> None:
        self.objects, self.status = objects, status
        self.callbacks: List[Any] = []
        self.subscriptions: List[Dict[str, Any]] = []

    async def get_object_list(self, default=None):
        return list(self.objects)

    async def subscribe_objects(self, objects, callback=None, default=None):
        self.subscriptions.append(dict(objects))
        if callback is not None:
            self.callbacks.append(callback)
        return {k: dict(v) for k, v in self.status.items()}


def printer_components(apis: FakeApis) -> Dict[str, Any]:
    return {"klippy_apis": apis, "klippy_connection": FakeConnection()}


async def klippy_ready(server: FakeServer) -> None:
    """Fires Moonraker's `server:klippy_ready` and awaits its handlers, as Moonraker does."""
    for result in server.fire("server:klippy_ready"):
        if asyncio.iscoroutine(result):
            await result


# ----- stand-in Moonraker components -----

class FakeCursor:
    def __init__(self, rows: List[Any]) -> None:
        self.rows = rows

    async def fetchall(self) -> List[Any]:
        return self.rows


class FakeTable:
    """history's job_history table: answers the outcome count query with `rows`."""

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
    """Moonraker's http_client as Spoolman's component uses it: one spool list."""

    async def get(self, url: str, **kwargs: Any) -> FakeResponse:
        assert url.endswith("/v1/spool")
        return FakeResponse()


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


def known_components(gcodes_dir: Any) -> Dict[str, Any]:
    """Components that know everything: every declared family can appear (`gcodes_dir`:
    the folder the file manager's gcodes root is; times are relative to time.time())."""
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
        "file_manager": SimpleNamespace(get_directory=lambda root="gcodes": str(gcodes_dir)),
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


# Happy Hare's and Creality CFS's objects, which the simulated printer has not.
ADDON_OBJECTS: Dict[str, Any] = {
    "mmu": {"enabled": True, "num_gates": 2, "gate_status": [1, 2]},
    "box": {"state": "connect", "T1": {"state": "connect", "material_type": ["PLA"]}},
}

RECORDED_STATUS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "printer_status.json")


def recorded_printer() -> Tuple[List[str], Dict[str, Any]]:
    """(object list, status of every object) of the simulated printer (simulator/printer.cfg
    on Klipper, extruder heating, after G28 and a move), recorded once from a live Klippy
    with `objects/list` and `objects/query`; its data folder's path reads /home/pi."""
    with open(RECORDED_STATUS, encoding="utf-8") as f:
        recorded = json.load(f)
    return recorded["objects"], recorded["status"]
