"""The Moonraker process and the host's load, from proc_stats (Go module `process_stats`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import ABSENT, Host

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


class ProcessCollector(Collector):
    """Moonraker's memory, CPU, websockets, event-loop stalls; host CPU, memory, uptime."""

    name = "process"
    metrics = catalogue.PROCESS

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        # proc_stats keeps no CPU temperature: it only sends it with each stat update event.
        self.cpu_temp: Optional[float] = None
        self.host.register_event_handler("proc_stats:proc_stat_update", self._on_stat_update)
        self._moonraker = RenderCache()
        self._load = RenderCache()
        self._throttled = RenderCache()

    def _on_stat_update(self, stats: Dict[str, Any], *_: Any) -> None:
        if isinstance(stats, dict):
            self.cpu_temp = as_number(stats.get("cpu_temp"))

    def render(self) -> str:
        websockets = self.host.websocket_count()
        pstats = self.host.proc_stats()
        if pstats is None:
            return self._moonraker.text((None, websockets),
                                        lambda: self._render_moonraker(None, websockets))
        newest = pstats.newest  # a new dict every second
        key = (newest, websockets)
        text = self._moonraker.text(key, lambda: self._render_moonraker(newest, websockets))
        load = (pstats.blocked, self.cpu_temp, pstats.cpu_usage, pstats.memory_total,
                pstats.memory_available, pstats.memory_used)
        text += self._load.text(load, lambda: self._render_host(*load))
        uptime = Family(catalogue.SYSTEM_UPTIME)
        add_if_number(uptime, self.host.uptime())
        text += uptime.render()
        bits = pstats.throttled
        if bits is not None:
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
                add_if_number(f, newest.get("memory"))
                families.append(f)
            f = Family(c.MOONRAKER_CPU_USAGE)
            add_if_number(f, newest.get("cpu_usage"))
            families.append(f)
        if websockets is not None:
            f = Family(c.MOONRAKER_WEBSOCKETS)
            add_if_number(f, websockets)
            families.append(f)
        return render_families(families)

    @staticmethod
    def _render_host(blocked: Any, cpu_temp: Optional[float],
                     cpu_usage: Optional[Dict[str, Any]], memory_total: Any,
                     memory_available: Any, memory_used: Any) -> str:
        """Event-loop stalls (proc_stats' watchdog), CPU temperature, CPU and memory use."""
        c = catalogue
        families: List[Family] = []
        if blocked is not ABSENT:
            f = Family(c.EVENT_LOOP_BLOCKED)
            add_if_number(f, blocked)
            families.append(f)
        f = Family(c.SYSTEM_CPU_TEMP)
        add_if_number(f, cpu_temp)
        families.append(f)
        total = Family(c.SYSTEM_CPU)
        cores = Family(c.SYSTEM_CPU_CORE)
        for cpu, usage in (cpu_usage or {}).items():
            if cpu == "cpu":
                add_if_number(total, usage)
            elif as_number(usage) is not None:
                cores.add(usage / 100.0, cpu)
        families += [total, cores]
        for metric, value in ((c.SYSTEM_MEMORY_TOTAL, memory_total),
                              (c.SYSTEM_MEMORY_AVAILABLE, memory_available),
                              (c.SYSTEM_MEMORY_USED, memory_used)):
            f = Family(metric)
            add_if_number(f, value)
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
