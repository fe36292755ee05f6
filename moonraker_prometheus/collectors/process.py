"""The Moonraker process and the host's load, from proc_stats (Go module `process_stats`)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, add, lookup

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

    def _on_stat_update(self, stats: Dict[str, Any], *_: Any) -> None:
        if isinstance(stats, dict):
            self.cpu_temp = as_number(stats.get("cpu_temp"))

    def render(self) -> str:
        c = catalogue
        families: List[Family] = []
        pstats = lookup(self.server, "proc_stats")
        if pstats is not None:
            queue = getattr(pstats, "proc_stat_queue", None)
            if queue:
                newest = queue[-1]
                if newest.get("mem_units") == "kB":
                    f = Family(c.MOONRAKER_MEMORY_KB)
                    add(f, newest.get("memory"))
                    families.append(f)
                f = Family(c.MOONRAKER_CPU_USAGE)
                add(f, newest.get("cpu_usage"))
                families.append(f)
        wsm = lookup(self.server, "websockets")
        if wsm is not None and hasattr(wsm, "get_count"):
            f = Family(c.MOONRAKER_WEBSOCKETS)
            add(f, wsm.get_count())
            families.append(f)
        if pstats is None:
            return render_families(families)
        watchdog = getattr(pstats, "watchdog", None)
        if watchdog is not None:
            f = Family(c.EVENT_LOOP_BLOCKED)
            add(f, getattr(watchdog, "blocked_count", None))
            families.append(f)
        f = Family(c.SYSTEM_CPU_TEMP)
        add(f, self.cpu_temp)
        families.append(f)
        cpu_usage: Dict[str, Any] = getattr(pstats, "cpu_usage", None) or {}
        total = Family(c.SYSTEM_CPU)
        cores = Family(c.SYSTEM_CPU_CORE)
        for cpu, usage in cpu_usage.items():
            if cpu == "cpu":
                add(total, usage)
            elif as_number(usage) is not None:
                cores.add(usage / 100.0, cpu)
        families += [total, cores]
        memory: Dict[str, Any] = getattr(pstats, "memory_usage", None) or {}
        for metric, key in ((c.SYSTEM_MEMORY_TOTAL, "total"),
                            (c.SYSTEM_MEMORY_AVAILABLE, "available"),
                            (c.SYSTEM_MEMORY_USED, "used")):
            f = Family(metric)
            add(f, memory.get(key))
            families.append(f)
        f = Family(c.SYSTEM_UPTIME)
        add(f, boot_time())
        families.append(f)
        if getattr(pstats, "vcgencmd", None) is not None:
            bits = getattr(pstats, "last_throttled", None)
            if isinstance(bits, int):
                f = Family(c.SYSTEM_THROTTLED_BITS)
                f.add(float(bits))
                flags = Family(c.SYSTEM_THROTTLED_FLAG)
                for bit, flag in THROTTLED_FLAGS.items():
                    if bits & bit:
                        flags.add(1.0, flag)
                families += [f, flags]
        return render_families(families)
