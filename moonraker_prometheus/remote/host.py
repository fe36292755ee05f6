"""RemoteHost: the collectors' `Host`, fed by one websocket to a printer's Moonraker.

What the component reads in Moonraker's memory, the remote host keeps from Moonraker's
JSON-RPC API: fetched when the connection opens (`load`), kept current by Moonraker's
notifications (status pushes, Klippy's ready/shutdown/disconnect, proc_stats every second,
history, job queue, power, sensors, Spoolman, update manager, services) and refreshed in
the background every `REFRESH_SECONDS` (server info every `KLIPPY_POLL_SECONDS` while Klippy
is not ready: Moonraker sends no notification for startup or error). A probe reads memory
only. A host lives as long as its connection: a new connection gets a new host, so
nothing from before a disconnect is ever served.

What Moonraker's API does not give is absent here (see docs/remote.md, "In-process-only
data"): the event-loop watchdog's count, sensors' error state, updaters' refresh time.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Set, Tuple

from ..collectors.host import (ABSENT, UNKNOWN_TIME, CurrentJob, Host, PowerDevice,
                               ProcStats, QueuedJob, Sensor, StatusCallback, Updater)
from ..tasks import wait_ended, wait_event
from .client import Connection, ProbeFailure, RpcError

log = logging.getLogger(__name__)

REFRESH_SECONDS = 300.0  # system info, update status, proc_stats (uptime, throttling)
SPOOLMAN_SECONDS = 60.0  # Spoolman status (pending reports change without notification)
KLIPPY_POLL_SECONDS = 2.0  # server info while Klippy is not ready
HISTORY_PAGE = 100  # jobs per history page when counting outcomes
# History's outcomes are counted from its whole job list (Moonraker's API has no count by
# status): once per connection and per hour, and kept current between counts by the
# "finished" notifications (a deleted job is missed until the next count).
HISTORY_RECOUNT_SECONDS = 3600.0
# Fields the component gets from Moonraker's own subscriptions (job_state, the Klippy
# state message); asked for besides the collectors' plan.
EXTRA_FIELDS: Dict[str, List[str]] = {
    "webhooks": ["state", "state_message"],
    "print_stats": ["filename", "total_duration", "print_duration"],
}


def _check_answer(method: str, answer: Any, fields: Tuple[Tuple[str, type], ...]) -> None:
    """ProbeFailure("protocol") unless `answer` is an object with each of `fields` (name,
    type; a string not empty): what answers otherwise is not a working Moonraker, and its
    values would be placeholders."""
    if not isinstance(answer, dict):
        raise ProbeFailure("protocol", f"{method} answered {type(answer).__name__}, not an "
                                       "object: not Moonraker")
    for name, kind in fields:
        value = answer.get(name)
        if not isinstance(value, kind) or (kind is str and not value):
            raise ProbeFailure("protocol", f"{method} answered without {name}: not Moonraker")


_NOTHING: FrozenSet[str] = frozenset()


def _job_id(value: Any) -> Any:
    """History's job id: the API's hexadecimal string as the int the component reads."""
    if isinstance(value, str):
        try:
            return int(value, 16)
        except ValueError:
            return None
    return value if isinstance(value, int) else None


class _Loop:
    """`get_event_loop()` for the collectors: create_task (nothing remote blocks: no
    run_in_thread)."""

    @staticmethod
    def create_task(coro: Any) -> "asyncio.Task[Any]":
        return asyncio.get_running_loop().create_task(coro)


class RemoteHost(Host):
    """One Moonraker seen through `connection` (see the module docstring). `fallback_name`:
    the host name until Klippy's info gives one (the target's host)."""

    def __init__(self, connection: Connection, fallback_name: str) -> None:
        self.conn = connection
        self.fallback_name = fallback_name
        self._handlers: Dict[str, List[Callable[..., Any]]] = {}
        self._tasks: Set["asyncio.Task[Any]"] = set()
        self._callbacks: List[StatusCallback] = []
        self._subscription: Dict[str, Optional[Set[str]]] = {}
        # the fields a push may carry, by object: those subscribed (for an object
        # subscribed whole, those of its subscription answer); the memory bound drops others
        self._allowed: Dict[str, Set[str]] = {}
        # pushes not yet handed to the collectors, merged (see flush)
        self._pending: Dict[str, Dict[str, Any]] = {}
        self._pending_time = 0.0
        # the newest text of each client.LATEST_ONLY notification, decoded at the flush
        self._latest: Dict[str, str] = {}
        self.bounds = connection.bounds
        self.updated: Optional[float] = None  # monotonic time of the last data received
        self.unavailable: Dict[str, str] = {}  # JSON-RPC method -> Moonraker's error
        # Moonraker's data, None until fetched
        self.info: Dict[str, Any] = {}  # server.info
        self.klippy_info: Dict[str, Any] = {}  # printer.info
        self.components: Set[str] = set()
        self._klippy: Tuple[bool, str, str] = (False, "disconnected", "")
        self._webhooks: Dict[str, Any] = {}
        self._print_stats: Dict[str, Any] = {}
        self._proc: Optional[Dict[str, Any]] = None  # newest sample etc.
        self._uptime: Optional[Tuple[float, float]] = None  # (uptime, monotonic then)
        self._throttled: Optional[int] = None
        self._network: Optional[Dict[str, Any]] = None
        self._system: Optional[Dict[str, Any]] = None
        self._queue: Optional[Tuple[Any, Tuple[QueuedJob, ...]]] = None
        self._totals: Optional[Dict[str, Any]] = None
        self._current: Optional[Dict[str, Any]] = None
        self._outcomes: Optional[Dict[str, float]] = None  # counted, then kept current
        self._outcomes_counted = 0.0  # monotonic time of the last full count
        self._power: Optional[Dict[str, Dict[str, Any]]] = None
        self._sensors: Optional[Dict[str, Dict[str, Any]]] = None
        self._spoolman: Optional[Dict[str, Any]] = None
        self._updates: Optional[Dict[str, Any]] = None
        self._background: Optional["asyncio.Task[None]"] = None
        self._poll = asyncio.Event()

    # ----- the connection's life -----
    async def load(self) -> None:
        """Fetches what Moonraker knows now (server and Klippy info, then every source its
        components offer); RpcError/ProbeFailure when the basics fail."""
        await self._server_info()
        await self._klippy_info()
        await asyncio.gather(*(self._quietly(f) for f in self._sources()))

    def _sources(self) -> List[Callable[[], Any]]:
        found: List[Callable[[], Any]] = [self._proc_stats, self._system_info]
        optional = (("job_queue", self._job_queue), ("history", self._history),
                    ("power", self._power_devices), ("sensor", self._sensor_list),
                    ("spoolman", self._spoolman_status), ("update_manager", self._update_status))
        found += [fetch for component, fetch in optional if component in self.components]
        return found

    async def announce(self) -> None:
        """After the collectors are started: Klippy's ready event when Klippy is ready
        (awaited, as Moonraker awaits its handlers), then the background refresh."""
        if self._klippy[1] == "ready":
            await self._fire_awaited("server:klippy_ready")
        self._background = asyncio.get_running_loop().create_task(self._refresh_loop())

    async def close(self) -> None:
        """Stops background work (the connection is closed by its owner)."""
        tasks = [t for t in (self._background, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await wait_ended(*tasks)

    async def _refresh_loop(self) -> None:
        last_slow = last_spoolman = time.monotonic()
        while True:
            wait = REFRESH_SECONDS
            if "spoolman" in self.components:
                wait = SPOOLMAN_SECONDS
            if self._klippy[1] != "ready":
                wait = KLIPPY_POLL_SECONDS
            await wait_event(self._poll, wait)
            self._poll.clear()
            if self._klippy[1] != "ready":
                await self._quietly(self._server_info)
                await self._quietly(self._klippy_info)
            now = time.monotonic()
            if now - last_slow >= REFRESH_SECONDS:
                last_slow = now
                await self._quietly(self._server_info)
                await asyncio.gather(*(self._quietly(f) for f in self._sources()))
            elif "spoolman" in self.components and now - last_spoolman >= SPOOLMAN_SECONDS:
                last_spoolman = now
                await self._quietly(self._spoolman_status)

    async def _quietly(self, fetch: Callable[[], Any]) -> None:
        """A background fetch: a failure keeps the last value (logged at debug level; a
        connection that fails is reported by its owner)."""
        try:
            await fetch()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.debug("%s: %s failed: %s", self.fallback_name, fetch.__name__, e)

    def _later(self, fetch: Callable[[], Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(fetch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """Moonraker's answer; an error answer of Moonraker's own API (an endpoint an older
        Moonraker lacks, a component that failed) is kept in `unavailable` until the
        method answers again."""
        try:
            result = await self.conn.call(method, params)
        except RpcError as e:
            if not method.startswith("printer."):  # Klippy's: its state says why
                self.unavailable[method] = str(e.message or e.code)[:120]
            raise
        self.unavailable.pop(method, None)
        self.updated = time.monotonic()
        return result

    # ----- fetches -----
    async def _server_info(self) -> None:
        info = await self._call("server.info")
        _check_answer("server.info", info, (("klippy_connected", bool), ("klippy_state", str),
                                            ("components", list), ("moonraker_version", str)))
        self.info = info
        self.components = set(c for c in info.get("components") or () if isinstance(c, str))
        connected = bool(info.get("klippy_connected"))
        state = str(info.get("klippy_state") or "disconnected").lower()
        if not connected:
            state = "disconnected"
        was = self._klippy
        message = "Klippy Disconnected" if not connected else (
            self._webhooks.get("state_message") or self.klippy_info.get("state_message")
            or was[2])
        self._klippy = (connected, state, str(message or ""))
        if was[1] == "ready" and state != "ready" and not connected:
            self._lost_klippy()

    async def _klippy_info(self) -> None:
        if not self._klippy[0]:
            return
        try:
            info = await self._call("printer.info")
        except RpcError:
            return  # Klippy went away meanwhile
        _check_answer("printer.info", info, (("hostname", str), ("software_version", str)))
        if isinstance(info, dict):
            self.klippy_info = info
            connected, state, _ = self._klippy
            self._klippy = (connected, state, str(info.get("state_message") or ""))

    async def _proc_stats(self) -> None:
        stats = await self._call("machine.proc_stats")
        if not isinstance(stats, dict):
            return
        samples = stats.get("moonraker_stats")
        self._proc = {"newest": samples[-1] if isinstance(samples, list) and samples else None,
                      "cpu": stats.get("system_cpu_usage"),
                      "memory": stats.get("system_memory") or {},
                      "websockets": stats.get("websocket_connections")}
        uptime = stats.get("system_uptime")
        if isinstance(uptime, (int, float)):
            self._uptime = (float(uptime), time.monotonic())
        throttled = stats.get("throttled_state")
        bits = throttled.get("bits") if isinstance(throttled, dict) else None
        self._throttled = bits if isinstance(bits, int) else None
        if isinstance(stats.get("network"), dict):
            self._network = stats["network"]
        self._fire("proc_stats:proc_stat_update", {"cpu_temp": stats.get("cpu_temp")})

    async def _system_info(self) -> None:
        result = await self._call("machine.system_info")
        info = result.get("system_info") if isinstance(result, dict) else None
        if isinstance(info, dict):
            self._system = info

    async def _job_queue(self) -> None:
        result = await self._call("server.job_queue.status")
        if isinstance(result, dict):
            self._set_queue(result.get("queue_state"), result.get("queued_jobs"))

    def _set_queue(self, state: Any, jobs: Any) -> None:
        queued = tuple((str(job.get("job_id")), str(job.get("filename", "")),
                        job.get("time_added"))
                       for job in (jobs if isinstance(jobs, list) else ())
                       if isinstance(job, dict))
        self._queue = (state, queued)

    async def _history(self) -> None:
        totals = await self._call("server.history.totals")
        if isinstance(totals, dict) and isinstance(totals.get("job_totals"), dict):
            self._totals = totals["job_totals"]
        listed = await self._call("server.history.list", {"limit": 1, "order": "desc"})
        jobs = listed.get("jobs") if isinstance(listed, dict) else None
        job = jobs[0] if isinstance(jobs, list) and jobs else None
        self._current = job if isinstance(job, dict) and job.get("status") == "in_progress" \
            else None

    async def _power_devices(self) -> None:
        result = await self._call("machine.device_power.devices")
        devices = result.get("devices") if isinstance(result, dict) else None
        if isinstance(devices, list):
            self._power = {str(d.get("device")): d for d in devices if isinstance(d, dict)}

    async def _sensor_list(self) -> None:
        result = await self._call("server.sensors.list", {"extended": True})
        sensors = result.get("sensors") if isinstance(result, dict) else None
        if isinstance(sensors, dict):
            self._sensors = {str(k): dict(v) for k, v in sensors.items() if isinstance(v, dict)}

    async def _spoolman_status(self) -> None:
        result = await self._call("server.spoolman.status")
        if isinstance(result, dict):
            self._spoolman = result

    async def _update_status(self) -> None:
        result = await self._call("machine.update.status")
        if isinstance(result, dict) and isinstance(result.get("version_info"), dict):
            self._updates = result["version_info"]

    # ----- notifications -----
    def notify(self, method: str, params: Any) -> None:
        """A notification from Moonraker (the connection's on_notify)."""
        self.updated = time.monotonic()
        first = params[0] if isinstance(params, list) and params else None
        handler = _NOTIFICATIONS.get(method)
        if handler is not None:
            handler(self, first, params)

    def latest(self, method: str, raw: str) -> None:
        """A notification of which only the newest counts (client.LATEST_ONLY), as
        Moonraker's text: kept, and decoded and handled at the next flush."""
        self.updated = time.monotonic()
        self._latest[method] = raw

    def _on_status(self, status: Any, params: Any) -> None:
        """A status push: kept for the collectors until the next flush, each field's
        newest value (what a push carries beyond the subscription is counted and left
        out)."""
        if not isinstance(status, dict):
            return
        if "webhooks" in status or "print_stats" in status:
            self._remember(status)
        if not self._callbacks:
            return
        eventtime = params[1] if isinstance(params, list) and len(params) > 1 else 0.0
        self._pending_time = eventtime if isinstance(eventtime, (int, float)) else 0.0
        allowed, pending = self._allowed, self._pending
        for obj, fields in status.items():
            kept = pending.get(obj)
            if kept is not None and type(fields) is dict \
                    and fields.keys() <= allowed.get(obj, _NOTHING):
                kept.update(fields)  # the common case: an object already pushed
                continue
            if not isinstance(fields, dict):
                continue
            known = allowed.get(obj)
            if known is None:
                self.bounds.count("fields", "notify_status_update", len(fields) or 1)
                continue
            kept = pending.get(obj)
            if kept is None:
                kept = pending[obj] = {}
            if fields.keys() <= known:
                kept.update(fields)
            else:
                self.bounds.count("fields", "notify_status_update", len(fields.keys() - known))
                kept.update((k, v) for k, v in fields.items() if k in known)

    def flush(self) -> None:
        """Hands the status pushes received since the last flush to the collectors, merged
        into one (each field's newest value: the collectors keep the newest value of each
        field, so the state is the same as push by push, at a fraction of the work): a
        probe flushes before it renders. The kept LATEST_ONLY notifications are decoded
        and handled first."""
        if self._latest:
            latest, self._latest = self._latest, {}
            for method, raw in latest.items():
                try:
                    message = json.loads(raw)
                except ValueError:
                    log.debug("not JSON from Moonraker: %.80r", raw)
                    continue
                params = message.get("params") if isinstance(message, dict) else None
                handler = _NOTIFICATIONS.get(method)
                if handler is not None:
                    handler(self, params[0] if isinstance(params, list) and params
                            else None, params)
        if not self._pending:
            return
        status, self._pending = self._pending, {}
        for callback in list(self._callbacks):
            callback(status, self._pending_time)

    def _remember(self, status: Dict[str, Any]) -> None:
        for obj, mine in (("webhooks", self._webhooks), ("print_stats", self._print_stats)):
            fields = status.get(obj)
            if isinstance(fields, dict):
                mine.update((k, fields[k]) for k in EXTRA_FIELDS[obj] if k in fields)
        message = self._webhooks.get("state_message")
        if isinstance(status.get("webhooks"), dict) and isinstance(message, str):
            connected, state, _ = self._klippy
            if connected:
                self._klippy = (connected, state, message)

    def _on_klippy_ready(self, *_: Any) -> None:
        message = self._klippy[2]
        self._klippy = (True, "ready", message)

        async def ready() -> None:
            await self._klippy_info()
            await self._fire_awaited("server:klippy_ready")
        self._later(ready)

    def _on_klippy_shutdown(self, *_: Any) -> None:
        connected, message = self._klippy[0], self._klippy[2]
        self._klippy = (connected, "shutdown", self._webhooks.get("state_message") or message)
        self._fire("server:klippy_shutdown")
        self._later(self._klippy_info)
        self._poll.set()

    def _on_klippy_disconnected(self, *_: Any) -> None:
        self._klippy = (False, "disconnected", "Klippy Disconnected")
        self._lost_klippy()
        self._poll.set()

    def _lost_klippy(self) -> None:
        # Moonraker drops every subscription when Klippy goes; the collectors subscribe
        # again at the next ready.
        self._callbacks.clear()
        self._subscription.clear()
        self._allowed.clear()
        self._pending.clear()
        self._webhooks.clear()
        self._print_stats.clear()
        self._fire("server:klippy_disconnect")

    def _on_proc_stat(self, stats: Any, _: Any) -> None:
        if not isinstance(stats, dict):
            return
        proc = dict(self._proc or {})
        proc.update(newest=stats.get("moonraker_stats"), cpu=stats.get("system_cpu_usage"),
                    memory=stats.get("system_memory") or {},
                    websockets=stats.get("websocket_connections"))
        self._proc = proc
        if isinstance(stats.get("network"), dict):
            self._network = stats["network"]
        self._fire("proc_stats:proc_stat_update", stats)

    def _on_throttled(self, state: Any, _: Any) -> None:
        bits = state.get("bits") if isinstance(state, dict) else None
        if isinstance(bits, int):
            self._throttled = bits

    def _on_history(self, event: Any, _: Any) -> None:
        if not isinstance(event, dict):
            return
        job = event.get("job")
        action = event.get("action")
        if action == "added" and isinstance(job, dict):
            self._current = job
        elif action == "finished":
            self._current = None
            status = job.get("status") if isinstance(job, dict) else None
            if self._outcomes is not None and isinstance(status, str) \
                    and status != "in_progress":
                self._count_outcome(self._outcomes, status, "notify_history_changed")
        self._later(self._history_totals)
        self._fire("history:history_changed", event)

    def _count_outcome(self, counts: Dict[str, float], status: str, source: str) -> None:
        """One more job of `status`; a status beyond max_entries distinct ones is left
        out (the memory bound)."""
        if status not in counts and len(counts) >= self.bounds.max_entries:
            self.bounds.count("entries", source)
            return
        counts[status] = counts.get(status, 0.0) + 1.0

    async def _history_totals(self) -> None:
        totals = await self._call("server.history.totals")
        if isinstance(totals, dict) and isinstance(totals.get("job_totals"), dict):
            self._totals = totals["job_totals"]

    def _on_job_queue(self, event: Any, _: Any) -> None:
        if isinstance(event, dict) and isinstance(event.get("updated_queue"), list):
            self._set_queue(event.get("queue_state"), event["updated_queue"])
        elif isinstance(event, dict) and self._queue is not None:
            self._queue = (event.get("queue_state", self._queue[0]), self._queue[1])

    def _on_power(self, device: Any, _: Any) -> None:
        if isinstance(device, dict) and self._power is not None:
            name = str(device.get("device"))
            if name not in self._power:  # Moonraker's devices are fixed at its start
                self.bounds.count("fields", "notify_power_changed")
                return
            self._power = {**self._power, name: device}

    def _on_sensor(self, values: Any, _: Any) -> None:
        if not isinstance(values, dict) or self._sensors is None:
            return
        sensors = dict(self._sensors)
        for sid, measured in values.items():
            if sid in sensors and isinstance(measured, dict):
                sensor = dict(sensors[sid])
                known = sensor.get("values") or {}
                kept = {k: v for k, v in measured.items() if k in known}
                if len(kept) < len(measured):  # a sensor's values are fixed by its config
                    self.bounds.count("fields", "notify_sensor_update",
                                      len(measured) - len(kept))
                sensor["values"] = {**known, **kept}
                sensors[sid] = sensor
        self._sensors = sensors

    def _on_spoolman(self, status: Any, _: Any) -> None:
        if isinstance(status, dict) and self._spoolman is not None:
            self._spoolman = {**self._spoolman, "spoolman_connected":
                              bool(status.get("spoolman_connected"))}
        self._fire("spoolman:spoolman_status_changed", status)
        self._later(self._spoolman_status)

    def _on_active_spool(self, event: Any, _: Any) -> None:
        if isinstance(event, dict) and self._spoolman is not None:
            self._spoolman = {**self._spoolman, "spool_id": event.get("spool_id")}

    def _on_update_refreshed(self, status: Any, _: Any) -> None:
        if isinstance(status, dict) and isinstance(status.get("version_info"), dict):
            self._updates = status["version_info"]
        self._fire("update_manager:update_refreshed", status)

    def _on_update_response(self, response: Any, _: Any) -> None:
        self._fire("update_manager:update_response", response)

    def _on_service_state(self, changed: Any, _: Any) -> None:
        if isinstance(changed, dict) and self._system is not None:
            services = dict(self._system.get("service_state") or {})
            kept = {k: v for k, v in changed.items() if k in services}
            if len(kept) < len(changed):  # the services Moonraker watches are fixed
                self.bounds.count("fields", "notify_service_state_changed",
                                  len(changed) - len(kept))
            services.update(kept)
            self._system = {**self._system, "service_state": services}

    def _on_filelist(self, event: Any, _: Any) -> None:
        self._fire("file_manager:filelist_changed", event)

    # ----- events for the collectors -----
    def register_event_handler(self, event: str, callback: Callable[..., Any]) -> None:
        self._handlers.setdefault(event, []).append(callback)

    def _fire(self, event: str, *args: Any) -> None:
        for handler in self._handlers.get(event, ()):
            result = handler(*args)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _fire_awaited(self, event: str, *args: Any) -> None:
        for handler in self._handlers.get(event, ()):
            result = handler(*args)
            if inspect.isawaitable(result):
                await result

    def get_event_loop(self) -> Any:
        return _Loop()

    # ----- Klippy -----
    def klippy_state(self) -> Tuple[bool, str, str]:
        return self._klippy

    def klippy_ready(self) -> bool:
        return self._klippy[0] and self._klippy[1] == "ready"

    async def get_object_list(self) -> Optional[List[str]]:
        try:
            result = await self._call("printer.objects.list")
        except Exception:
            return None
        objects = result.get("objects") if isinstance(result, dict) else None
        return [o for o in objects if isinstance(o, str)] if isinstance(objects, list) \
            else None

    async def query_objects(self, objects: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        try:
            result = await self._call("printer.objects.query", {"objects": objects})
        except Exception:
            return None
        status = result.get("status") if isinstance(result, dict) else None
        return status if isinstance(status, dict) else None

    async def subscribe_objects(self, objects: Dict[str, Optional[List[str]]],
                                callback: Optional[StatusCallback]
                                ) -> Optional[Dict[str, Any]]:
        """Moonraker keeps one subscription per connection: each call subscribes to the
        union of every collector's fields (and EXTRA_FIELDS); the answer is cut to what
        this call asked for."""
        merged = self._subscription
        for obj, fields in (*EXTRA_FIELDS.items(), *objects.items()):
            if obj in merged and merged[obj] is None:
                continue  # every field already
            if fields is None:
                merged[obj] = None
            else:
                merged[obj] = {*(merged.get(obj) or ()), *fields}
        request = {obj: (None if fields is None else sorted(fields))
                   for obj, fields in merged.items()}
        try:
            result = await self._call("printer.objects.subscribe", {"objects": request})
        except Exception:
            return None
        status = result.get("status") if isinstance(result, dict) else None
        if not isinstance(status, dict):
            return None
        self._remember(status)
        self.flush()  # pushes older than this answer go before it
        self._allowed = {obj: set(fields) if fields is not None else set(
            status[obj] if isinstance(status.get(obj), dict) else ())
            for obj, fields in merged.items()}
        if callback is not None:
            self._callbacks.append(callback)
        return {obj: status[obj] for obj in objects if obj in status}

    def subscription_cache(self) -> Optional[Dict[str, Dict[str, Any]]]:
        return None

    # ----- Moonraker -----
    def identity(self) -> Tuple[str, str, str]:
        return (str(self.klippy_info.get("hostname") or self.fallback_name),
                str(self.klippy_info.get("software_version") or ""),
                str(self.info.get("moonraker_version") or ""))

    def server_info(self) -> Tuple[Tuple[Any, ...], Tuple[Any, ...], Any, Any, Optional[int]]:
        info = self.info
        warnings = info.get("warnings")
        return (tuple(info.get("components") or ()), tuple(info.get("failed_components") or ()),
                info.get("moonraker_version"),
                tuple(info["api_version"]) if isinstance(info.get("api_version"), list)
                else None,
                len(warnings) if isinstance(warnings, (list, dict)) else None)

    def proc_stats(self) -> Optional[ProcStats]:
        proc = self._proc
        if proc is None:
            return None
        memory = proc.get("memory")
        memory = memory if isinstance(memory, dict) else {}
        return ProcStats(proc.get("newest"), ABSENT, proc.get("cpu"), memory.get("total"),
                         memory.get("available"), memory.get("used"), self._throttled)

    def websocket_count(self) -> Optional[int]:
        count = (self._proc or {}).get("websockets", self.info.get("websocket_count"))
        return count if isinstance(count, int) else None

    def uptime(self) -> Optional[float]:
        if self._uptime is None:
            return None
        return self._uptime[0] + time.monotonic() - self._uptime[1]

    def network_stats(self) -> Optional[Dict[str, Any]]:
        return self._network

    def system_info(self) -> Optional[Dict[str, Any]]:
        return self._system

    def job_queue(self) -> Optional[Tuple[Any, Tuple[QueuedJob, ...]]]:
        return self._queue

    def history_totals(self) -> Optional[Dict[str, Any]]:
        return self._totals

    async def history_outcomes(self) -> Optional[Dict[str, float]]:
        """Counted from history's job list, a page at a time (see
        HISTORY_RECOUNT_SECONDS); between counts, the count kept current."""
        if "history" not in self.components:
            return None
        if self._outcomes is not None and \
                time.monotonic() - self._outcomes_counted < HISTORY_RECOUNT_SECONDS:
            return dict(self._outcomes)
        counts: Dict[str, float] = {}
        start = 0
        while True:
            page = await self._call("server.history.list",
                                    {"limit": HISTORY_PAGE, "start": start, "order": "asc"})
            jobs = page.get("jobs") if isinstance(page, dict) else None
            if not isinstance(jobs, list):
                return None
            for job in jobs:
                status = job.get("status") if isinstance(job, dict) else None
                if isinstance(status, str) and status != "in_progress":
                    self._count_outcome(counts, status, "server.history.list")
            if len(jobs) < HISTORY_PAGE:
                self._outcomes, self._outcomes_counted = counts, time.monotonic()
                return dict(counts)
            start += len(jobs)

    def current_job(self) -> Optional[CurrentJob]:
        job = self._current
        if job is None:
            return None
        filename = job.get("filename") or ""
        stats = self._print_stats if self._print_stats.get("filename") == filename else {}
        metadata = job.get("metadata")
        return CurrentJob(filename, _job_id(job.get("job_id")), job.get("start_time"),
                          stats.get("total_duration", job.get("total_duration")),
                          stats.get("print_duration"),
                          metadata if isinstance(metadata, dict) else {})

    async def disk_usage(self) -> Optional[Tuple[int, int, int]]:
        result = await self._call("server.files.get_directory",
                                  {"path": "gcodes", "extended": False})
        usage = result.get("disk_usage") if isinstance(result, dict) else None
        if not isinstance(usage, dict):
            return None
        return int(usage["total"]), int(usage["used"]), int(usage["free"])

    def power_devices(self) -> Optional[Tuple[PowerDevice, ...]]:
        if self._power is None:
            return None
        return tuple((name, str(d.get("type", "")), d.get("status"),
                      d.get("locked_while_printing")) for name, d in self._power.items())

    def sensors(self) -> Optional[Tuple[Sensor, ...]]:
        if self._sensors is None:
            return None
        return tuple((sid, str(s.get("friendly_name", sid)), str(s.get("type", "")),
                      tuple((s.get("values") or {}).items()),
                      tuple(s.get("parameter_info") or ()), None)
                     for sid, s in self._sensors.items())

    def spoolman(self) -> Optional[Tuple[bool, Any, Tuple[Tuple[Any, Any], ...]]]:
        status = self._spoolman
        if status is None:
            return None
        pending = tuple((p.get("spool_id"), p.get("filament_used"))
                        for p in status.get("pending_reports") or () if isinstance(p, dict))
        return bool(status.get("spoolman_connected")), status.get("spool_id"), pending

    async def spoolman_spools(self) -> Optional[List[Dict[str, Any]]]:
        if "spoolman" not in self.components:
            return None
        spools = await self._call("server.spoolman.proxy",
                                  {"request_method": "GET", "path": "/v1/spool"})
        if not isinstance(spools, list):
            raise RuntimeError("Spoolman's spool list through Moonraker: expected a list")
        return spools

    def updaters(self) -> Optional[List[Updater]]:
        if self._updates is None:
            return None
        return [(name, status.copy, UNKNOWN_TIME)
                for name, status in self._updates.items() if isinstance(status, dict)]


_NOTIFICATIONS: Dict[str, Callable[[RemoteHost, Any, Any], None]] = {
    "notify_status_update": RemoteHost._on_status,
    "notify_klippy_ready": RemoteHost._on_klippy_ready,
    "notify_klippy_shutdown": RemoteHost._on_klippy_shutdown,
    "notify_klippy_disconnected": RemoteHost._on_klippy_disconnected,
    "notify_proc_stat_update": RemoteHost._on_proc_stat,
    "notify_cpu_throttled": RemoteHost._on_throttled,
    "notify_history_changed": RemoteHost._on_history,
    "notify_job_queue_changed": RemoteHost._on_job_queue,
    "notify_power_changed": RemoteHost._on_power,
    "notify_sensor_update": RemoteHost._on_sensor,
    "notify_spoolman_status_changed": RemoteHost._on_spoolman,
    "notify_active_spool_set": RemoteHost._on_active_spool,
    "notify_update_refreshed": RemoteHost._on_update_refreshed,
    "notify_update_response": RemoteHost._on_update_response,
    "notify_service_state_changed": RemoteHost._on_service_state,
    "notify_filelist_changed": RemoteHost._on_filelist,
}
