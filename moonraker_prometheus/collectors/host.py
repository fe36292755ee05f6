"""What the collectors read from one Moonraker: the `Host` interface, and `MoonrakerHost`,
its in-process implementation on Moonraker's own components.

The catalogue and the collectors exist once; they reach a Moonraker only through a `Host`.
The component gives them a `MoonrakerHost` (Moonraker's `Server` and its components, in the
same process); the central exporter (`moonraker_prometheus.remote`) gives them a host fed
by a websocket to the printer's Moonraker. Every method except the `async` ones reads
memory only: they run on the scrape path (see `Collector.render`). A method answers None
where the Moonraker has no such component (or, remotely, has not answered yet): the
collector then serves none of its families, never zeros.
"""
from __future__ import annotations

import abc
import shutil
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, NamedTuple, Optional, Tuple

if TYPE_CHECKING:
    from moonraker.server import Server

# A value the host knows its Moonraker does not have (proc_stats without a watchdog).
ABSENT: Any = object()
# A refresh time the host cannot know (Moonraker's API does not report it): the updater is
# taken as refreshed, and its refresh time is not served.
UNKNOWN_TIME: Any = object()

StatusCallback = Callable[[Dict[str, Any], float], None]
# (job id, file name, time added) per queued job, in queue order
QueuedJob = Tuple[str, str, Any]
# (device name, type, state, locked_while_printing) per [power] device
PowerDevice = Tuple[str, str, Any, Any]
# (sensor id, name, type, ((parameter, value), ...), (parameter info, ...), error state)
Sensor = Tuple[str, str, str, Tuple[Any, ...], Tuple[Any, ...], Any]
# (updater name, a function returning its status dict, last refresh time (epoch seconds))
Updater = Tuple[str, Callable[[], Dict[str, Any]], Any]


class ProcStats(NamedTuple):
    """Moonraker's proc_stats: its newest sample of Moonraker's own CPU and memory (a dict
    with `cpu_usage`, `memory`, `mem_units`; replaced by a new dict every second), the
    event-loop watchdog's blocked count (ABSENT without a watchdog), the host's CPU usage
    per cpu (percent), memory total, available and used (kB), and the Raspberry Pi's
    throttled bits (None where there is no vcgencmd)."""
    newest: Optional[Dict[str, Any]]
    blocked: Any
    cpu_usage: Optional[Dict[str, Any]]
    memory_total: Any
    memory_available: Any
    memory_used: Any
    throttled: Optional[int]


class CurrentJob(NamedTuple):
    """The job in progress: file name, history job id (an int), start time (epoch s), total
    and print durations (s, live from Klippy's print_stats where known) and the file's
    metadata (dict)."""
    filename: str
    job_id: Any
    start_time: Any
    total_duration: Any
    print_duration: Any
    metadata: Dict[str, Any]


class Host(abc.ABC):
    """One Moonraker, as the collectors read it. Events are Moonraker's event names
    (`server:klippy_ready`, `proc_stats:proc_stat_update`, ...) with Moonraker's arguments."""

    # ----- lifecycle -----
    @abc.abstractmethod
    def register_event_handler(self, event: str, callback: Callable[..., Any]) -> None:
        """Call `callback` on Moonraker's `event` (awaited when it is a coroutine)."""

    @abc.abstractmethod
    def get_event_loop(self) -> Any:
        """An object with `create_task(coro)` (Moonraker's event loop in process)."""

    # ----- Klippy -----
    @abc.abstractmethod
    def klippy_state(self) -> Tuple[bool, str, str]:
        """(connected to Klippy, Klippy's state in lower case, its message or "")."""

    @abc.abstractmethod
    def klippy_ready(self) -> bool:
        """Whether Klippy is connected and ready."""

    @abc.abstractmethod
    async def get_object_list(self) -> Optional[List[str]]:
        """Klippy's printer object names; None on failure."""

    @abc.abstractmethod
    async def query_objects(self, objects: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """One query of printer objects ({object: [fields] or None}); None on failure."""

    @abc.abstractmethod
    async def subscribe_objects(self, objects: Dict[str, Optional[List[str]]],
                                callback: Optional[StatusCallback]
                                ) -> Optional[Dict[str, Any]]:
        """Subscribe to printer object fields; returns their status now (None on failure).
        `callback(status, eventtime)` then gets every push, until Klippy disconnects (it
        is given once per connection; None: already given)."""

    @abc.abstractmethod
    def subscription_cache(self) -> Optional[Dict[str, Dict[str, Any]]]:
        """Moonraker's merged subscription state, when the host shares one with other
        subscribers (see PrinterState.sync); None otherwise."""

    # ----- Moonraker -----
    @abc.abstractmethod
    def identity(self) -> Tuple[str, str, str]:
        """(host name, Klippy's software version, Moonraker's software version); "" where
        unknown."""

    @abc.abstractmethod
    def server_info(self) -> Tuple[Tuple[Any, ...], Tuple[Any, ...], Any, Any, Optional[int]]:
        """(loaded components, failed components, Moonraker version, API version tuple,
        number of warnings or None)."""

    @abc.abstractmethod
    def proc_stats(self) -> Optional[ProcStats]:
        """Moonraker's process and host statistics (None without proc_stats)."""

    @abc.abstractmethod
    def websocket_count(self) -> Optional[int]:
        """Moonraker's open websockets."""

    @abc.abstractmethod
    def uptime(self) -> Optional[float]:
        """Seconds since the printer host booted (CLOCK_BOOTTIME)."""

    @abc.abstractmethod
    def network_stats(self) -> Optional[Dict[str, Any]]:
        """{interface: {rx_bytes, tx_bytes, ..., bandwidth}} (a dict replaced on change)."""

    @abc.abstractmethod
    def system_info(self) -> Optional[Dict[str, Any]]:
        """The machine component's system info (cpu_info, distribution, python,
        available_services, service_state)."""

    @abc.abstractmethod
    def job_queue(self) -> Optional[Tuple[Any, Tuple[QueuedJob, ...]]]:
        """(queue state, queued jobs)."""

    @abc.abstractmethod
    def history_totals(self) -> Optional[Dict[str, Any]]:
        """History's job totals (None without history)."""

    @abc.abstractmethod
    async def history_outcomes(self) -> Optional[Dict[str, float]]:
        """Jobs in history per final status ("in_progress" left out); None where history
        cannot count them."""

    @abc.abstractmethod
    def current_job(self) -> Optional[CurrentJob]:
        """The job in progress, if any."""

    @abc.abstractmethod
    async def disk_usage(self) -> Optional[Tuple[int, int, int]]:
        """(total, used, free) bytes of the gcodes root's file system; None without one."""

    @abc.abstractmethod
    def power_devices(self) -> Optional[Tuple[PowerDevice, ...]]:
        """The [power] devices."""

    @abc.abstractmethod
    def sensors(self) -> Optional[Tuple[Sensor, ...]]:
        """Moonraker's [sensor] sections."""

    @abc.abstractmethod
    def spoolman(self) -> Optional[Tuple[bool, Any, Tuple[Tuple[Any, Any], ...]]]:
        """(connected to Spoolman, active spool id, ((spool id, mm used not yet
        reported), ...))."""

    @abc.abstractmethod
    async def spoolman_spools(self) -> Optional[List[Dict[str, Any]]]:
        """Spoolman's spool list; None without Spoolman."""

    @abc.abstractmethod
    def updaters(self) -> Optional[List[Updater]]:
        """The update manager's updaters."""


def lookup(server: "Server", name: str) -> Any:
    """A Moonraker component, or None when it is not loaded (optional components)."""
    return server.lookup_component(name, None)


def boot_time() -> Optional[float]:
    """Seconds since this host booted (CLOCK_BOOTTIME); None where there is no such clock."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return None


OUTCOME_QUERY = ("SELECT status, COUNT(*) FROM job_history WHERE instance_id = ? "
                 "GROUP BY status")
SPOOLMAN_CONNECT_TIMEOUT = 2.0
SPOOLMAN_REQUEST_TIMEOUT = 5.0


class MoonrakerHost(Host):
    """The host inside Moonraker: its `Server` and components, read in place."""

    def __init__(self, server: "Server") -> None:
        self.server = server

    def register_event_handler(self, event: str, callback: Callable[..., Any]) -> None:
        self.server.register_event_handler(event, callback)

    def get_event_loop(self) -> Any:
        return self.server.get_event_loop()

    def klippy_state(self) -> Tuple[bool, str, str]:
        connection = self.server.lookup_component("klippy_connection")
        state = connection.state
        return (connection.is_connected(), state.name.lower(),
                getattr(state, "message", ""))

    def klippy_ready(self) -> bool:
        return self.server.lookup_component("klippy_connection").is_ready()

    async def get_object_list(self) -> Optional[List[str]]:
        return await self.server.lookup_component("klippy_apis").get_object_list(
            default=None)

    async def query_objects(self, objects: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        return await self.server.lookup_component("klippy_apis").query_objects(
            objects, default=None)

    async def subscribe_objects(self, objects: Dict[str, Optional[List[str]]],
                                callback: Optional[StatusCallback]
                                ) -> Optional[Dict[str, Any]]:
        return await self.server.lookup_component("klippy_apis").subscribe_objects(
            objects, callback, default=None)

    def subscription_cache(self) -> Optional[Dict[str, Dict[str, Any]]]:
        connection = self.server.lookup_component("klippy_connection")
        get_cache = getattr(connection, "get_subscription_cache", None)
        return None if get_cache is None else get_cache()

    def identity(self) -> Tuple[str, str, str]:
        server = self.server
        klippy_version = server.get_klippy_info().get("software_version", "")
        moonraker_version = server.get_app_args().get("software_version", "")
        return (str(server.get_host_info()["hostname"]), str(klippy_version or ""),
                str(moonraker_version or ""))

    def server_info(self) -> Tuple[Tuple[Any, ...], Tuple[Any, ...], Any, Any, Optional[int]]:
        server: Any = self.server
        # Moonraker changes these lists and dicts in place: the key holds their contents.
        components = tuple(getattr(server, "components", {}) or {})
        failed = tuple(getattr(server, "failed_components", []) or [])
        version = None
        if hasattr(server, "get_app_args"):
            version = server.get_app_args().get("software_version")
        api = server.get_api_version() if hasattr(server, "get_api_version") else None
        warnings = getattr(server, "warnings", None)
        count = len(warnings) if isinstance(warnings, (dict, list)) else None
        return components, failed, version, api, count

    def proc_stats(self) -> Optional[ProcStats]:
        pstats = lookup(self.server, "proc_stats")
        if pstats is None:
            return None
        queue = getattr(pstats, "proc_stat_queue", None)
        watchdog = getattr(pstats, "watchdog", None)
        memory: Dict[str, Any] = getattr(pstats, "memory_usage", None) or {}
        throttled = None
        if getattr(pstats, "vcgencmd", None) is not None:
            bits = getattr(pstats, "last_throttled", None)
            throttled = bits if isinstance(bits, int) else None
        # proc_stats replaces cpu_usage every second but changes memory_usage in place.
        return ProcStats(queue[-1] if queue else None,
                         getattr(watchdog, "blocked_count", None) if watchdog is not None
                         else ABSENT,
                         getattr(pstats, "cpu_usage", None), memory.get("total"),
                         memory.get("available"), memory.get("used"), throttled)

    def websocket_count(self) -> Optional[int]:
        wsm = lookup(self.server, "websockets")
        return wsm.get_count() if wsm is not None and hasattr(wsm, "get_count") else None

    def uptime(self) -> Optional[float]:
        return boot_time()

    def network_stats(self) -> Optional[Dict[str, Any]]:
        net = getattr(lookup(self.server, "proc_stats"), "last_net_stats", None)
        return net if isinstance(net, dict) else None

    def system_info(self) -> Optional[Dict[str, Any]]:
        machine = lookup(self.server, "machine")
        if machine is None:
            return None
        return machine.get_system_info() or {}

    def job_queue(self) -> Optional[Tuple[Any, Tuple[QueuedJob, ...]]]:
        queue = lookup(self.server, "job_queue")
        if queue is None:
            return None
        jobs: Dict[str, Any] = getattr(queue, "queued_jobs", None) or {}
        # The queue is a dict changed in place; a queued job's fields never change.
        return (getattr(queue, "queue_state", None),
                tuple((job_id, str(getattr(job, "filename", "")),
                       getattr(job, "time_added", None)) for job_id, job in jobs.items()))

    def history_totals(self) -> Optional[Dict[str, Any]]:
        history = lookup(self.server, "history")
        if history is None:
            return None
        return getattr(history, "job_totals", None) or {}

    async def history_outcomes(self) -> Optional[Dict[str, float]]:
        table = getattr(lookup(self.server, "history"), "history_table", None)
        if table is None:
            return None  # Moonraker before 0.10's SQL history: no cheap way to count
        # The database component runs the query on its own thread.
        cursor = await table.execute(OUTCOME_QUERY, ("default",))
        counts: Dict[str, float] = {}
        for row in await cursor.fetchall():
            status, count = row[0], row[1]
            if isinstance(status, str) and status != "in_progress":
                counts[status] = float(count)
        return counts

    def current_job(self) -> Optional[CurrentJob]:
        history = lookup(self.server, "history")
        job = getattr(history, "current_job", None)
        if job is None:
            return None
        filename = getattr(job, "filename", "") or ""
        # History updates the job's durations only when it finishes; job_state keeps
        # Klippy's print_stats as pushed, so read the live values there.
        stats: Dict[str, Any] = {}
        job_state = lookup(self.server, "job_state")
        if job_state is not None and hasattr(job_state, "get_last_stats"):
            last = job_state.get_last_stats() or {}
            if last.get("filename") == filename:
                stats = last
        return CurrentJob(filename, getattr(history, "current_job_id", None),
                          getattr(job, "start_time", None),
                          stats.get("total_duration", getattr(job, "total_duration", None)),
                          stats.get("print_duration"),
                          getattr(job, "metadata", None) or {})

    async def disk_usage(self) -> Optional[Tuple[int, int, int]]:
        fm = lookup(self.server, "file_manager")
        path = fm.get_directory("gcodes") if fm is not None else ""
        if not path:
            return None  # no gcodes root registered (yet): nothing to report
        usage = await self.server.get_event_loop().run_in_thread(shutil.disk_usage, path)
        return usage.total, usage.used, usage.free

    def power_devices(self) -> Optional[Tuple[PowerDevice, ...]]:
        power = lookup(self.server, "power")
        if power is None:
            return None
        devices: Dict[str, Any] = getattr(power, "devices", None) or {}
        # A device object's state changes in place: the tuple holds what is rendered.
        return tuple((str(getattr(dev, "name", name)), str(getattr(dev, "type", "")),
                      getattr(dev, "state", None), getattr(dev, "locked_while_printing", None))
                     for name, dev in list(devices.items()))

    def sensors(self) -> Optional[Tuple[Sensor, ...]]:
        component = lookup(self.server, "sensor")
        if component is None:
            return None
        sensors: Dict[str, Any] = getattr(component, "sensors", None) or {}
        # A sensor's measurements dict and error state change in place: copied.
        return tuple((str(sid), str(getattr(sensor, "name", sid)),
                      str(getattr(sensor, "type", "")),
                      tuple((getattr(sensor, "last_measurements", None) or {}).items()),
                      tuple(getattr(sensor, "param_info", None) or ()),
                      getattr(sensor, "error_state", None))
                     for sid, sensor in list(sensors.items()))

    def spoolman(self) -> Optional[Tuple[bool, Any, Tuple[Tuple[Any, Any], ...]]]:
        spoolman = lookup(self.server, "spoolman")
        if spoolman is None:
            return None
        pending: Dict[Any, Any] = getattr(spoolman, "pending_reports", None) or {}
        # pending_reports is changed in place: its items are copied.
        return (bool(getattr(spoolman, "ws_connected", False)),
                getattr(spoolman, "spool_id", None), tuple(pending.items()))

    async def spoolman_spools(self) -> Optional[List[Dict[str, Any]]]:
        spoolman = lookup(self.server, "spoolman")
        base_url = getattr(spoolman, "spoolman_url", None)
        if spoolman is None or not base_url:
            return None
        client = getattr(spoolman, "http_client", None) or lookup(self.server, "http_client")
        response = await client.get(
            f"{base_url}/v1/spool", enable_cache=False,
            connect_timeout=SPOOLMAN_CONNECT_TIMEOUT,
            request_timeout=SPOOLMAN_REQUEST_TIMEOUT)
        if response.has_error():
            raise RuntimeError(f"GET {base_url}/v1/spool: HTTP {response.status_code} "
                               f"{response.error}")
        spools = response.json()
        if not isinstance(spools, list):
            raise RuntimeError(f"GET {base_url}/v1/spool: expected a list")
        return spools

    def updaters(self) -> Optional[List[Updater]]:
        manager = lookup(self.server, "update_manager")
        if manager is None:
            return None
        updaters: Dict[str, Any] = getattr(manager, "updaters", None) or {}
        return [(name, updater.get_update_status,
                 getattr(updater, "last_refresh_time", None))
                for name, updater in list(updaters.items())]


def host_of(source: Any) -> Host:
    """`source` itself when it is a Host, else Moonraker's `Server` read in process."""
    return source if isinstance(source, Host) else MoonrakerHost(source)

