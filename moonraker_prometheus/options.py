"""The [prometheus] section: every option validated when Moonraker loads the component.

A bad value never stops Moonraker: it becomes a Moonraker warning naming the option and
the reason, and the option's default is used.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, List, Tuple

from .collectors import module_names, resolve_modules

if TYPE_CHECKING:
    from moonraker.confighelper import ConfigHelper


# Seconds within which the component answers a scrape of /server/metrics (or of a group's
# /server/metrics/NAME), merged sources included: the default of [prometheus]
# scrape_timeout, and its upper bound. Prometheus' scrape timeout is 10 s by default and at
# most the scrape interval (often 5 s); Moonraker's endpoints never see the
# X-Prometheus-Scrape-Timeout-Seconds header, so the default is set to answer inside the
# smaller of the two with time to spare. Each merged source's fetch is bounded by its own
# `timeout` too (sidecar.spec.DEFAULT_FETCH_TIMEOUT_S).
DEFAULT_SCRAPE_DEADLINE_S = 4.0
MAX_SCRAPE_DEADLINE_S = 120.0


@dataclass
class Options:
    require_auth: bool = True
    scrape_timeout: float = DEFAULT_SCRAPE_DEADLINE_S
    modules: Tuple[str, ...] = field(default_factory=lambda: tuple(module_names()))
    printer_name: str = field(default_factory=socket.gethostname)
    # What a sidecar merge does to Moonraker's process (docs/architecture.md, "What the
    # component changes in Moonraker"): cyclic GC deferred while it runs, malloc_trim after.
    merge_defer_gc: bool = True
    merge_malloc_trim: bool = True
    warnings: List[str] = field(default_factory=list)

    @classmethod
    def load(cls, config: "ConfigHelper") -> "Options":
        opts = cls()
        opts.require_auth = opts._read(
            config, "require_auth", lambda: config.getboolean("require_auth", True), True)
        timeout = opts._read(config, "scrape_timeout",
                             lambda: config.getfloat("scrape_timeout", DEFAULT_SCRAPE_DEADLINE_S),
                             DEFAULT_SCRAPE_DEADLINE_S)
        if not 0 < timeout <= MAX_SCRAPE_DEADLINE_S:  # also refuses nan
            opts.warnings.append(
                f"[{config.get_name()}]: option 'scrape_timeout': must be above 0 and at most "
                f"{MAX_SCRAPE_DEADLINE_S:g} seconds, got {timeout:g} (using the default: "
                f"{DEFAULT_SCRAPE_DEADLINE_S:g})")
            timeout = DEFAULT_SCRAPE_DEADLINE_S
        opts.scrape_timeout = timeout
        name = opts._read(config, "printer_name",
                          lambda: config.get("printer_name", opts.printer_name),
                          opts.printer_name).strip()
        if name:
            opts.printer_name = name
        else:
            opts.warnings.append(f"[{config.get_name()}]: option 'printer_name' is empty "
                                 f"(using the host name: {opts.printer_name})")
        opts.merge_defer_gc = opts._read(
            config, "merge_defer_gc", lambda: config.getboolean("merge_defer_gc", True), True)
        opts.merge_malloc_trim = opts._read(
            config, "merge_malloc_trim", lambda: config.getboolean("merge_malloc_trim", True),
            True)
        requested = opts._read(
            config, "modules", lambda: config.getlist("modules", None, separator=","), None)
        if requested is not None:
            known, unknown = resolve_modules(requested)
            if unknown:
                opts.warnings.append(
                    f"[{config.get_name()}]: option 'modules': unknown module(s) "
                    f"{', '.join(unknown)}; known: {', '.join(module_names())}")
            if known:
                opts.modules = tuple(known)
        return opts

    def _read(self, config: "ConfigHelper", option: str, getter: Callable[[], Any],
              default: Any) -> Any:
        try:
            return getter()
        except config.error as e:
            self.warnings.append(f"{e} (using the default: {default})")
            return default
