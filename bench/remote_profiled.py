"""Bench-only wrapper: the central exporter (`python -m moonraker_prometheus.remote ARGS`)
with what it does to its own loop measured, for bench/bench_remote_scale.py.

Measured between SIGUSR1 (starts a window) and SIGUSR2 (ends it and writes JSON to
$BENCH_REMOTE_STATS): the cyclic GC's pauses (`gc.callbacks`: count and longest per
generation, total seconds), the loop's lag (a task asks to wake every TICK seconds; how
much later it woke: the longest and the 99th percentile), and the exporter's CPU seconds
(process time). With $BENCH_REMOTE_PROFILE set, cProfile runs over the window too and its
stats are dumped there (pstats format; it slows the exporter: not for the CPU figures).
The exporter's code is imported from $BENCH_EXPORTER_ROOT (default: this checkout), so
that an older commit's exporter (a git worktree) runs under the same measurement.
Never part of the product: nothing in moonraker_prometheus imports it.
"""
from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import signal
import sys
import time
from typing import Any, Dict, List, Optional

ROOT = os.environ.get("BENCH_EXPORTER_ROOT") or os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from moonraker_prometheus.remote import __main__ as remote_main  # noqa: E402

TICK = 0.01  # seconds: the lag monitor's wake-up period


class Window:
    """The measurements since the last SIGUSR1."""

    def __init__(self) -> None:
        self.profile: Optional[cProfile.Profile] = None
        self.reset()
        gc.callbacks.append(self._gc)

    def reset(self) -> None:
        self.started = time.monotonic()
        self.cpu = time.process_time()
        self.gc_count = [0, 0, 0]
        self.gc_longest = [0.0, 0.0, 0.0]
        self.gc_total = 0.0
        self.gc_start = 0.0
        self.lags: List[float] = []

    def _gc(self, phase: str, info: Dict[str, Any]) -> None:
        if phase == "start":
            self.gc_start = time.perf_counter()
            return
        took = time.perf_counter() - self.gc_start
        generation = info["generation"]
        self.gc_count[generation] += 1
        self.gc_longest[generation] = max(self.gc_longest[generation], took)
        self.gc_total += took

    def start(self) -> None:
        self.reset()
        path = os.environ.get("BENCH_REMOTE_PROFILE")
        if path:
            self.profile = cProfile.Profile()
            self.profile.enable()

    def stop(self) -> None:
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(os.environ["BENCH_REMOTE_PROFILE"])
            self.profile = None
        lags = sorted(self.lags) or [0.0]
        report = {"seconds": time.monotonic() - self.started,
                  "cpu_seconds": time.process_time() - self.cpu,
                  "gc_count": self.gc_count, "gc_longest_ms": [t * 1000 for t in
                                                                self.gc_longest],
                  "gc_total_ms": self.gc_total * 1000,
                  "lag_max_ms": lags[-1] * 1000,
                  "lag_p99_ms": lags[min(len(lags) - 1, int(0.99 * len(lags)))] * 1000,
                  "gc_tracked": len(gc.get_objects())}
        with open(os.environ.get("BENCH_REMOTE_STATS", os.devnull), "w",
                  encoding="utf-8") as f:
            json.dump(report, f)

    async def lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + TICK
            await asyncio.sleep(TICK)
            self.lags.append(max(0.0, loop.time() - asked))


def main() -> int:
    window = Window()
    serve = remote_main._serve

    async def measured(*args: Any) -> int:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, window.start)
        loop.add_signal_handler(signal.SIGUSR2, window.stop)
        ticker = loop.create_task(window.lag())
        try:
            return await serve(*args)
        finally:
            ticker.cancel()

    remote_main._serve = measured  # type: ignore[assignment]  # the bench's own loop hooks
    return remote_main.main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
