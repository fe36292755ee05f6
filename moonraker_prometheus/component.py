"""The [prometheus] Moonraker component: options, endpoint, collector lifecycle."""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Dict, List, Sequence

from . import __version__
from .catalogue import exporter as self_metrics
from .collectors import COLLECTORS, module_names, resolve_modules
from .collectors.base import Collector
from .exposition import CONTENT_TYPE, Family
from .options import Options

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
        self._last_error: Dict[str, str] = {}
        logging.info(f"prometheus: moonraker-prometheus {__version__} loaded from "
                     f"{os.path.dirname(os.path.realpath(__file__))}")
        self.server.register_endpoint(
            METRICS_PATH, RequestType.GET, self._handle_metrics,
            transports=TransportType.HTTP, wrap_result=False,
            content_type=CONTENT_TYPE, auth_required=self.options.require_auth,
        )

    async def component_init(self) -> None:
        for collector in self.collectors.values():
            await collector.start()

    async def close(self) -> None:
        for collector in self.collectors.values():
            await collector.close()

    async def _handle_metrics(self, web_request: "WebRequest") -> str:
        return self.render(self._requested_modules(web_request))

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


def load_component(config: "ConfigHelper") -> PrometheusComponent:
    return PrometheusComponent(config)
