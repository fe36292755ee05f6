"""The [prometheus] Moonraker component: options, endpoint, collector lifecycle."""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from . import __version__
from .catalogue import exporter as self_metrics
from .collectors import COLLECTORS, EXPORTERS, module_names, resolve_modules
from .collectors.base import Collector
from .exposition import CONTENT_TYPE, Family
from .options import Options
from .sidecar import Merger, sources_from_sections

if TYPE_CHECKING:
    from moonraker.common import WebRequest
    from moonraker.confighelper import ConfigHelper

METRICS_PATH = "/server/metrics"
# Klippy's connection and state are the health signal: served whatever the selection.
ALWAYS_SERVED = ("klippy",)


class PrometheusComponent:
    def __init__(self, config: "ConfigHelper") -> None:
        from moonraker.common import RequestType, TransportType

        self.server = config.get_server()
        self.options = Options.load(config)
        for warning in self.options.warnings:
            self.server.add_warning(warning)
        self.collectors: Dict[str, Collector] = {
            cls.name: cls(self.server) for cls in COLLECTORS
        }
        # Klippy's state says "ready" only once the printer series are there too.
        klippy, printer = self.collectors["klippy"], self.collectors["printer"]
        klippy.printer_ready = printer.subscribed  # type: ignore[attr-defined]
        self._last_error: Dict[str, str] = {}
        self.mergers = self._load_exporters(config)
        logging.info(f"prometheus: moonraker-prometheus {__version__} loaded from "
                     f"{os.path.dirname(os.path.realpath(__file__))}")
        for group in self.mergers:
            path = f"{METRICS_PATH}/{group}" if group else METRICS_PATH
            self.server.register_endpoint(
                path, RequestType.GET, self._handle_group if group else self._handle_metrics,
                transports=TransportType.HTTP, wrap_result=False,
                content_type=CONTENT_TYPE, auth_required=self.options.require_auth,
            )

    def _load_exporters(self, config: "ConfigHelper") -> Dict[str, Optional[Merger]]:
        """Sidecar groups from [prometheus exporter NAME] sections ("" = /server/metrics)."""
        sections = [config.getsection(name)
                    for name in config.get_prefix_sections("prometheus exporter")]
        groups, warnings = sources_from_sections(sections)
        for warning in warnings:
            self.server.add_warning(warning)
        mergers: Dict[str, Optional[Merger]] = {"": None}
        for group, sources in sorted(groups.items()):
            mergers[group] = Merger(sources)
        return mergers

    async def component_init(self) -> None:
        for collector in self.collectors.values():
            await collector.start()
        for merger in self.mergers.values():
            if merger is not None:
                merger.start()

    async def close(self) -> None:
        for collector in self.collectors.values():
            await collector.close()
        for merger in self.mergers.values():
            if merger is not None:
                await merger.close()

    async def _handle_metrics(self, web_request: "WebRequest") -> str:
        modules = self._requested_modules(web_request)
        merger = self.mergers[""]
        if merger is None or EXPORTERS not in modules:
            return self.render(modules)
        # Concurrent scrapes with the same selection share one run of every source; our
        # own text is rendered once for them, when the sources have answered.
        return await merger.collect(local_text=lambda: self.render(modules),
                                    timeout=self.options.scrape_timeout,
                                    params=_forwardable(web_request.get_args()),
                                    variant=tuple(modules))

    async def _handle_group(self, web_request: "WebRequest") -> str:
        group = web_request.get_endpoint()[len(METRICS_PATH) + 1:]
        merger = self.mergers[group]
        assert merger is not None
        return await merger.collect(timeout=self.options.scrape_timeout,
                                    params=_forwardable(web_request.get_args()))

    def _requested_modules(self, web_request: "WebRequest") -> Sequence[str]:
        raw = web_request.get_str("modules", None)
        if raw is None:
            return self.options.modules
        known, unknown = resolve_modules(raw.split(","))
        if unknown or not known:
            raise self.server.error(
                f"Unknown module(s) in 'modules': {', '.join(unknown) or '(none given)'}; "
                f"known: {', '.join(module_names())}", 400)
        return known

    def render(self, modules: Sequence[str]) -> str:
        """Render the selected collectors, each isolated from the others' failures."""
        modules = [*ALWAYS_SERVED, *(m for m in modules if m not in ALWAYS_SERVED)]
        parts: List[str] = []
        success = Family(self_metrics.COLLECTOR_SUCCESS)
        duration = Family(self_metrics.COLLECTOR_DURATION)
        for name in modules:
            if name == EXPORTERS:
                continue  # merged by the sidecar after rendering
            start = time.perf_counter()
            try:
                parts.append(self.collectors[name].render())
                ok = 1.0
                self._last_error.pop(name, None)
            except Exception as e:
                ok = 0.0
                self._log_failure(name, e)
            success.add(ok, name)
            duration.add(time.perf_counter() - start, name)
        build = Family(self_metrics.BUILD_INFO)
        build.add(1.0, __version__)
        parts.extend((build.render(), success.render(), duration.render()))
        return "".join(parts)

    def _log_failure(self, name: str, error: Exception) -> None:
        """Log a collector failure once per distinct cause, not once per scrape."""
        cause = f"{type(error).__name__}: {error}"
        if self._last_error.get(name) != cause:
            self._last_error[name] = cause
            logging.exception(f"prometheus: collector '{name}' failed: {cause}")


def _forwardable(args: Dict[str, Any]) -> Dict[str, List[str]]:
    """Arguments a source with forward_url_params may pass on (never ours).

    Moonraker hands endpoints the query arguments merged with the fields of a JSON body,
    without saying which is which; query arguments are always strings, so only strings are
    forwarded (a JSON body's numbers, lists and objects never are).
    """
    return {k: [v] for k, v in args.items() if k != "modules" and isinstance(v, str)}


def load_component(config: "ConfigHelper") -> PrometheusComponent:
    return PrometheusComponent(config)
