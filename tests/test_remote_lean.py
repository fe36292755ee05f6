"""The central exporter's lean paths for many printers (issue 20, speed and scale): proc_stats
decoded only when a probe reads it, and loaded state kept out of the cyclic GC's walks with
the cycles of closed connections still freed."""
from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any, List, Optional

import pytest

from moonraker_prometheus.remote.client import Connection
from moonraker_prometheus.remote.host import RemoteHost
from moonraker_prometheus.remote.target import FrozenState

pytestmark = pytest.mark.unit


class NoTransport:
    """No socket under it: the Connection reads every message as it comes."""

    def get_extra_info(self, name: str) -> None:
        return None


class QuietSocket:
    """The websocket a Connection writes to: nothing is sent in these tests."""

    transport = NoTransport()

    async def close(self) -> None:
        pass


def proc_stat(cpu: float, compact: bool = True) -> str:
    message = {"jsonrpc": "2.0", "method": "notify_proc_stat_update",
               "params": [{"moonraker_stats": {"time": cpu, "cpu_usage": cpu,
                                               "memory": 1000, "mem_units": "kB"},
                           "cpu_temp": 40.0 + cpu, "websocket_connections": 3,
                           "system_cpu_usage": {"cpu": cpu},
                           "system_memory": {"total": 100, "available": 50, "used": 50}}]}
    return json.dumps(message, separators=(",", ":") if compact else None)


def test_only_the_newest_proc_stats_is_decoded_at_the_flush_and_served():
    """1,000 printers send 1,000 proc_stats a second and each is probed every 15 s: the
    text is kept as it comes (the data's age counts from it) and only the newest is
    decoded, at the flush a probe does before it renders."""
    fired: List[Any] = []

    async def run() -> None:
        conn = Connection(QuietSocket(), lambda *_: None, 10.0)  # type: ignore[arg-type]
        host = RemoteHost(conn, "printer")
        conn._on_notify, conn._on_latest = host.notify, host.latest
        host.register_event_handler("proc_stats:proc_stat_update", fired.append)
        host._proc = {"newest": None}
        for cpu, compact in ((1.0, True), (2.0, False), (3.0, True)):
            conn.on_message(proc_stat(cpu, compact))
        assert host.updated is not None and conn.messages == 3
        assert fired == [] and host.proc_stats().newest is None  # not decoded yet
        host.flush()
        stats = host.proc_stats()
        assert stats.newest["cpu_usage"] == 3.0 and stats.cpu_usage == {"cpu": 3.0}
        assert host.websocket_count() == 3
        assert [f["cpu_temp"] for f in fired] == [43.0]  # once, the newest
        host.flush()
        assert len(fired) == 1
        # another form of the same notification (keys in another order) is decoded at once
        other = json.dumps({"method": "notify_proc_stat_update", "jsonrpc": "2.0",
                            "params": json.loads(proc_stat(4.0))["params"]})
        conn.on_message(other)
        assert host.proc_stats().newest["cpu_usage"] == 4.0 and len(fired) == 2
        conn._watcher.cancel()

    asyncio.run(run())


class Cycle:
    """A closed connection's objects that only the cyclic GC frees."""

    def __init__(self) -> None:
        self.me = self


def test_a_closed_connections_cycles_are_freed_by_the_reclaim_after_a_freeze():
    state = FrozenState()
    state.RECLAIM_SECONDS = 0.05
    try:
        async def run() -> "weakref.ref[Cycle]":
            cycle = Cycle()
            ref = weakref.ref(cycle)
            state.loaded()  # the target's state, cycle included, out of the GC's walks
            del cycle
            gc.collect()
            assert ref() is not None  # frozen: a full collection does not reach it
            state.ended()
            await asyncio.sleep(0.2)  # the reclaim RECLAIM_SECONDS after the end
            return ref

        ref = asyncio.run(run())
        assert state.reclaims == 1 and ref() is None
        assert gc.get_freeze_count() > 0  # what lives is frozen again
    finally:
        gc.unfreeze()
