"""The Moonraker process and the host's load, from proc_stats (Go module `process_stats`)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add, lookup

if TYPE_CHECKING:
    from moonraker.server import Server

# Raspberry Pi firmware get_throttled bits, as proc_stats names them.
THROTTLED_FLAGS = {
    1: "Under-Voltage Detected",
    1 << 1: "Frequency Capped",
    1 << 2: "Currently Throttled",
    1 << 3: "Temperature Limit Active",
    1 << 16: "Previously Under-Volted",
    1 << 17: "Previously Frequency Capped",
    1 << 18: "Previously Throttled",
    1 << 19: "Previously Temperature Limited",
}
_ABSENT = object()  # proc_stats without a watchdog (older Moonraker)


def boot_time() -> Optional[float]:
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None


class ProcessCollector(Collector):
    """Moonraker's memory, CPU, websockets, event-loop stalls; host CPU, memory, uptime."""

    name = "process"
    metrics = catalogue.PROCESS

    def __init__(self, server: "Server") -> None:
        super().__init__(server)
        # proc_stats keeps no CPU temperature: it only sends it with each stat update event.
        self.cpu_temp: Optional[float] = None
        server.register_event_handler("proc_stats:proc_stat_update", self._on_stat_update)
        self._moonraker = RenderCache()
        self._host = RenderCache()
        self._throttled = RenderCache()

    def _on_stat_update(self, stats: Dict[str, Any], *_: Any) -> None:
        if isinstance(stats, dict):
            self.cpu_temp = as_number(stats.get("cpu_temp"))

    def render(self) -> str:
        pstats = lookup(self.server, "proc_stats")
        wsm = lookup(self.server, "websockets")
        websockets = wsm.get_count() if wsm is not None and hasattr(wsm, "get_count") else None
        if pstats is None:
            return self._moonraker.text((None, websockets),
                                        lambda: self._render_moonraker(None, websockets))
        queue = getattr(pstats, "proc_stat_queue", None)
        newest = queue[-1] if queue else None  # a new dict every second
        key = (newest, websockets)
        text = self._moonraker.text(key, lambda: self._render_moonraker(newest, websockets))
        watchdog = getattr(pstats, "watchdog", None)
        memory: Dict[str, Any] = getattr(pstats, "memory_usage", None) or {}
        # proc_stats replaces cpu_usage every second but changes memory_usage in place.
        host = (getattr(watchdog, "blocked_count", None) if watchdog is not None else _ABSENT,
                self.cpu_temp, getattr(pstats, "cpu_usage", None),
                memory.get("total"), memory.get("available"), memory.get("used"))
        text += self._host.text(host, lambda: self._render_host(*host))
        uptime = Family(catalogue.SYSTEM_UPTIME)
        add(uptime, boot_time())
        text += uptime.render()
        if getattr(pstats, "vcgencmd", None) is not None:
            bits = getattr(pstats, "last_throttled", None)
            if isinstance(bits, int):
                text += self._throttled.text(bits, lambda: self._render_throttled(bits))
        return text

    @staticmethod
    def _render_moonraker(newest: Optional[Dict[str, Any]], websockets: Any) -> str:
        """Moonraker's memory and CPU (proc_stats' newest sample) and its websockets."""
        c = catalogue
        families: List[Family] = []
        if newest is not None:
            if newest.get("mem_units") == "kB":
                f = Family(c.MOONRAKER_MEMORY_KB)
                add(f, newest.get("memory"))
                families.append(f)
            f = Family(c.MOONRAKER_CPU_USAGE)
            add(f, newest.get("cpu_usage"))
            families.append(f)
        if websockets is not None:
            f = Family(c.MOONRAKER_WEBSOCKETS)
            add(f, websockets)
            families.append(f)
        return render_families(families)

    @staticmethod
    def _render_host(blocked: Any, cpu_temp: Optional[float],
                     cpu_usage: Optional[Dict[str, Any]], memory_total: Any,
                     memory_available: Any, memory_used: Any) -> str:
        """Event-loop stalls (proc_stats' watchdog), CPU temperature, CPU and memory use."""
        c = catalogue
        families: List[Family] = []
        if blocked is not _ABSENT:
            f = Family(c.EVENT_LOOP_BLOCKED)
            add(f, blocked)
            families.append(f)
        f = Family(c.SYSTEM_CPU_TEMP)
        add(f, cpu_temp)
        families.append(f)
        total = Family(c.SYSTEM_CPU)
        cores = Family(c.SYSTEM_CPU_CORE)
        for cpu, usage in (cpu_usage or {}).items():
            if cpu == "cpu":
                add(total, usage)
            elif as_number(usage) is not None:
                cores.add(usage / 100.0, cpu)
        families += [total, cores]
        for metric, value in ((c.SYSTEM_MEMORY_TOTAL, memory_total),
                              (c.SYSTEM_MEMORY_AVAILABLE, memory_available),
                              (c.SYSTEM_MEMORY_USED, memory_used)):
            f = Family(metric)
            add(f, value)
            families.append(f)
        return render_families(families)

    @staticmethod
    def _render_throttled(bits: int) -> str:
        """The Raspberry Pi's throttled bits, and one sample per flag set."""
        f = Family(catalogue.SYSTEM_THROTTLED_BITS)
        f.add(float(bits))
        flags = Family(catalogue.SYSTEM_THROTTLED_FLAG)
        for bit, flag in THROTTLED_FLAGS.items():
            if bits & bit:
                flags.add(1.0, flag)
        return render_families([f, flags])
