"""Bench-only Moonraker component: how late does Moonraker's event loop run a 1 ms ticker?

Linked into the bench Moonraker's `components/` folder next to `prometheus` (as
`loop_monitor`) and loaded by a `[loop_monitor]` section. A task sleeps ~1 ms in a loop
and records how much later than asked it woke up: any callback that holds the loop (a
scrape rendering on it, for instance) shows up as lateness.

    GET /server/loop_monitor           {"max_lateness": s, "ticks": n, "p99_lateness": s, ...}
    GET /server/loop_monitor?reset=true  same, then start a new window
    GET /server/loop_monitor?ticker=false  stop the ticker (true: start it again), so that
                                           a CPU measurement counts Moonraker's work only
    GET /server/loop_monitor/profile?n=300&modules=a,b  cProfile of n component renders
    GET /server/loop_monitor/trace?start=true  cProfile everything on the loop from now;
        ?start=false[&sort=tottime&lines=40]  stop and report

Never part of the product: nothing in moonraker_prometheus imports it.
"""
from __future__ import annotations

import asyncio
import asyncio.events
import gc
import time
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    from moonraker.common import WebRequest
    from moonraker.confighelper import ConfigHelper

TICK = 0.001


def describe(handle: asyncio.events.Handle) -> str:
    """What a loop callback runs: the coroutine a task step resumes, or the callback."""
    callback = getattr(handle, "_callback", None)
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        where = f" at {frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}" if frame else ""
        return f"task {getattr(coro, '__qualname__', coro)!s}{where}"[:300]
    return repr(handle)[:300]


class LoopMonitor:
    def __init__(self, config: "ConfigHelper") -> None:
        from moonraker.common import RequestType, TransportType

        self.server = config.get_server()
        self.tick = config.getfloat("tick", TICK)
        self._reset()
        self._task = None
        self._patch_handles()
        self.server.register_endpoint(
            "/server/loop_monitor", RequestType.GET, self._handle,
            transports=TransportType.HTTP | TransportType.WEBSOCKET)
        self.server.register_endpoint(
            "/server/loop_monitor/profile", RequestType.GET, self._handle_profile,
            transports=TransportType.HTTP)
        self.server.register_endpoint(
            "/server/loop_monitor/trace", RequestType.GET, self._handle_trace,
            transports=TransportType.HTTP)

    def _reset(self) -> None:
        # The callback running now (the request that reset the window, which built the last
        # report: sorting its samples takes a millisecond or two) is the monitor's own work
        # and must not open the new window as its longest callback.
        self.skip_current = True
        self.window_start = time.monotonic()
        self.max_lateness = 0.0
        self.ticks = 0
        self.late: List[float] = []
        self.max_callback = 0.0
        self.max_callback_cpu = 0.0
        self.slowest_callback = ""
        self.slowest_gc = 0.0  # of which garbage collection (seconds)
        self.slowest_cpu_callback = ""  # the callback that used the most CPU time
        self.slowest_cpu_gc = 0.0
        self.gc_in_callback = 0.0
        self._gc_start = 0.0
        self.gc_time = [0.0, 0.0, 0.0]  # seconds spent in garbage collection per generation
        self.gc_runs = [0, 0, 0]
        self.callbacks = 0
        self.long_callbacks: List[float] = []  # callbacks over 0.2 ms

    def _patch_handles(self) -> None:
        original = asyncio.events.Handle._run
        monitor = self
        clock = time.perf_counter
        cpu_clock = time.thread_time

        def _run(handle: asyncio.events.Handle) -> None:
            monitor.gc_in_callback = 0.0
            start, cpu_start = clock(), cpu_clock()
            original(handle)
            elapsed = clock() - start
            cpu = cpu_clock() - cpu_start
            if monitor.skip_current:
                monitor.skip_current = False
                return
            monitor.callbacks += 1
            if cpu > monitor.max_callback_cpu:
                monitor.max_callback_cpu = cpu
                monitor.slowest_cpu_callback = describe(handle)
                monitor.slowest_cpu_gc = monitor.gc_in_callback
            if elapsed > 0.0002 and len(monitor.long_callbacks) < 100000:
                monitor.long_callbacks.append(elapsed)
            if elapsed > monitor.max_callback:
                monitor.max_callback = elapsed
                monitor.slowest_callback = describe(handle)
                monitor.slowest_gc = monitor.gc_in_callback
        asyncio.events.Handle._run = _run  # type: ignore[assignment]
        self._original_run = original

        def on_gc(phase: str, info: Dict[str, int]) -> None:
            if phase == "start":
                monitor._gc_start = clock()
            else:
                spent = clock() - monitor._gc_start
                monitor.gc_in_callback += spent
                monitor.gc_time[info["generation"]] += spent
                monitor.gc_runs[info["generation"]] += 1
        gc.callbacks.append(on_gc)
        self._on_gc = on_gc

    async def component_init(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        tick = self.tick
        while True:
            asked = time.monotonic()
            await asyncio.sleep(tick)
            lateness = time.monotonic() - asked - tick
            self.ticks += 1
            if lateness > self.max_lateness:
                self.max_lateness = lateness
            if len(self.late) < 200000:
                self.late.append(lateness)

    def report(self) -> Dict[str, Any]:
        late = sorted(self.late)
        p = (lambda q: late[min(len(late) - 1, int(q * len(late)))] if late else 0.0)
        return {"max_lateness": self.max_lateness, "ticks": self.ticks,
                "p50_lateness": p(0.5), "p99_lateness": p(0.99),
                "window": time.monotonic() - self.window_start, "tick": self.tick,
                "max_callback": self.max_callback, "slowest_callback": self.slowest_callback,
                "max_callback_cpu": self.max_callback_cpu,
                "slowest_callback_gc": self.slowest_gc,
                "gc_seconds": self.gc_time, "gc_runs": self.gc_runs,
                "slowest_cpu_callback": self.slowest_cpu_callback,
                "slowest_cpu_callback_gc": self.slowest_cpu_gc,
                "callbacks": self.callbacks,
                "callbacks_over_1ms": sum(1 for d in self.long_callbacks if d > 0.001),
                "callbacks_over_2ms": sum(1 for d in self.long_callbacks if d > 0.002)}

    async def _handle(self, web_request: "WebRequest") -> Dict[str, Any]:
        result = self.report()
        if web_request.get_boolean("reset", False):
            self._reset()
        ticker = web_request.get_boolean("ticker", None)
        if ticker is False and self._task is not None:
            self._task.cancel()  # its ~1000 wake-ups a second would count as Moonraker's CPU
            self._task = None
        elif ticker and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        return result

    async def _handle_profile(self, web_request: "WebRequest") -> Dict[str, Any]:
        """cProfile `n` renders of the prometheus component inside this Moonraker."""
        import cProfile
        import io
        import pstats

        n = web_request.get_int("n", 300)
        modules = web_request.get_str("modules", "")
        component = self.server.lookup_component("prometheus")
        selected = [m for m in modules.split(",") if m] or list(component.options.modules)
        start = time.perf_counter()
        for _ in range(n):
            component.render(selected)
        plain = (time.perf_counter() - start) / n
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            component.render(selected)
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        return {"render_seconds": plain, "modules": selected, "stats": out.getvalue()}

    async def _handle_trace(self, web_request: "WebRequest") -> Dict[str, Any]:
        """start=true: cProfile everything on the loop from now; start=false: stop, report."""
        import cProfile
        import io
        import pstats

        if web_request.get_boolean("start", True):
            self._profiler = cProfile.Profile()
            self._profiler.enable()
            return {}
        self._profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(self._profiler, stream=out)
        stats.sort_stats(web_request.get_str("sort", "tottime")).print_stats(
            web_request.get_int("lines", 40))
        return {"stats": out.getvalue()}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        asyncio.events.Handle._run = self._original_run  # type: ignore[assignment]
        gc.callbacks.remove(self._on_gc)


def load_component(config: "ConfigHelper") -> LoopMonitor:
    return LoopMonitor(config)
