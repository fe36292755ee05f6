"""The collectors of one Moonraker and the body of a scrape: what the component's
/server/metrics and the central exporter's /probe both serve."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple, Union

from ..catalogue import exporter as self_metrics
from ..exposition import Family
from . import COLLECTORS, EXPORTERS
from .base import Collector, RenderCache
from .host import Host, host_of
from .klippy import KlippyCollector
from .printer import PrinterCollector

if TYPE_CHECKING:
    from moonraker.server import Server

# Klippy's connection and state are the health signal: served whatever the selection.
ALWAYS_SERVED = ("klippy",)


class Renderer:
    """Every collector, built on one host, and the render of a scrape's selection.

    `server`: the Moonraker read (a Host, or Moonraker's Server in process); `version`:
    moonraker-prometheus's version; `printer_name`: the `printer` label of
    klipper_printer_info (None: the host name the host reports).
    """

    def __init__(self, server: Union["Server", Host], version: str,
                 printer_name: Optional[str] = None) -> None:
        self.host = host_of(server)
        self.version = version
        self.printer_name = printer_name
        printer = PrinterCollector(self.host)
        # Klippy's state says "ready" only once the printer series are there too.
        built: Dict[str, Collector] = {
            printer.name: printer,
            KlippyCollector.name: KlippyCollector(self.host, printer_ready=printer.subscribed),
        }
        self.collectors: Dict[str, Collector] = {
            cls.name: built[cls.name] if cls.name in built else cls(self.host)
            for cls in COLLECTORS
        }
        # Collectors whose re-render can be long (see Collector.renders_ahead)
        self.may_be_stale = [c for c in self.collectors.values() if c.renders_ahead]
        self._last_error: Dict[str, str] = {}
        self._info = RenderCache()
        self._success = RenderCache()

    async def start(self) -> None:
        """Starts every collector's background work."""
        for collector in self.collectors.values():
            await collector.start()

    async def close(self) -> None:
        """Stops every collector's background work."""
        for collector in self.collectors.values():
            await collector.close()

    def render(self, modules: Sequence[str], ahead: Optional[Dict[str, int]] = None) -> str:
        """The selected collectors' families, then the exporter's own (build and printer
        info, each collector's success and duration). Each collector is isolated from the
        others' failures. `ahead`: nanoseconds collectors (by name) spent rendering ahead of
        this call, added to their durations (see render_stale_ahead). Text, as every layer
        below the HTTP edge speaks: the HTTP handler encodes the body once, as it writes it.
        """
        modules = [*ALWAYS_SERVED, *(m for m in modules if m != EXPORTERS
                                     and m not in ALWAYS_SERVED)]
        parts: List[str] = []
        failed: List[str] = []
        durations: List[int] = []
        clock = time.perf_counter_ns  # whole nanoseconds: short, quickly written values
        for name in modules:
            start = clock()
            try:
                parts.append(self.collectors[name].render())
            except Exception as e:
                failed.append(name)
                self._log_failure(name, e)
            durations.append(clock() - start)
        if ahead:
            durations = [d + ahead.get(name, 0) for name, d in zip(modules, durations)]
        if self._last_error:
            for name in modules:
                if name not in failed:
                    self._last_error.pop(name, None)
        key = (tuple(modules), tuple(failed))
        duration = Family(self_metrics.COLLECTOR_DURATION)
        for name, nanoseconds in zip(modules, durations):
            duration.add(nanoseconds / 1e9, name)
        parts += (self._info_text(), self._success.text(key, lambda: _successes(*key)),
                  duration.render())
        return "".join(parts)

    def _info_text(self) -> str:
        """klipper_exporter_build_info, and klipper_printer_info: the printer's name, host
        and software versions (the host's identity: Moonraker's host info, app args and
        Klippy info)."""
        key = self.host.identity()
        return self._info.text(key, lambda: self._render_info(*key))

    def _render_info(self, hostname: str, klippy_version: str, moonraker_version: str) -> str:
        build = Family(self_metrics.BUILD_INFO)
        build.add(1.0, self.version)
        printer = Family(self_metrics.PRINTER_INFO)
        printer.add(1.0, self.printer_name or hostname, hostname, klippy_version,
                    moonraker_version, self.version)
        return build.render() + printer.render()

    def _log_failure(self, name: str, error: Exception) -> None:
        """Log a collector failure once per distinct cause, not once per scrape."""
        cause = f"{type(error).__name__}: {error}"
        if self._last_error.get(name) != cause:
            self._last_error[name] = cause
            logging.exception(f"prometheus: collector '{name}' failed: {cause}")


def _successes(modules: Tuple[str, ...], failed: Tuple[str, ...]) -> str:
    """klipper_exporter_collector_success: 1 per collector rendered, 0 per failed one."""
    success = Family(self_metrics.COLLECTOR_SUCCESS)
    for name in modules:
        success.add(0.0 if name in failed else 1.0, name)
    return success.render()
