"""The [prometheus] Moonraker component: options, endpoint, collector lifecycle."""
from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from .catalogue import exporter as self_metrics
from .collectors import COLLECTORS, EXPORTERS, module_names, resolve_modules
from .collectors.base import Collector, RenderCache, render_stale_ahead
from .exposition import CONTENT_TYPE, Family
from .options import Options
from .sidecar import Merger, sources_from_sections

if TYPE_CHECKING:
    from moonraker.common import WebRequest
    from moonraker.confighelper import ConfigHelper

METRICS_PATH = "/server/metrics"
# Klippy's connection and state are the health signal: served whatever the selection.
ALWAYS_SERVED = ("klippy",)
# The longest stretch of re-rendering a scrape does in one loop callback (see render_stale_ahead).
RENDER_AHEAD_SLICE_NS = 400_000


class PrometheusComponent:
    def __init__(self, config: "ConfigHelper", version: str) -> None:
        """`version`: moonraker-prometheus's version (the package's `__version__`)."""
        from moonraker.common import RequestType, TransportType

        self.server = config.get_server()
        self.version = version
        self.options = Options.load(config)
        for warning in self.options.warnings:
            self.server.add_warning(warning)
        self.collectors: Dict[str, Collector] = {
            cls.name: cls(self.server) for cls in COLLECTORS
        }
        # Klippy's state says "ready" only once the printer series are there too.
        klippy, printer = self.collectors["klippy"], self.collectors["printer"]
        klippy.printer_ready = printer.subscribed  # type: ignore[attr-defined]
        # Collectors whose re-render can be long (see Collector.stale)
        self._may_be_stale = [c for c in self.collectors.values()
                              if type(c).stale is not Collector.stale]
        self._last_error: Dict[str, str] = {}
        self._info = RenderCache()
        self._success = RenderCache()
        self._encoded_parts: Dict[str, Tuple[str, bytes]] = {}
        self.mergers = self._load_exporters(config)
        logging.info(f"prometheus: moonraker-prometheus {version} loaded from "
                     f"{os.path.dirname(os.path.realpath(__file__))}")
        paths = [f"{METRICS_PATH}/{group}" if group else METRICS_PATH for group in self.mergers]
        for group, path in zip(self.mergers, paths):
            self.server.register_endpoint(
                path, RequestType.GET, self._handle_group if group else self._handle_metrics,
                transports=TransportType.HTTP, wrap_result=False,
                content_type=CONTENT_TYPE, auth_required=self.options.require_auth,
            )
        if not _hook_routes(self.server, paths):
            logging.warning(
                "prometheus: this Moonraker's HTTP router is not the one the component knows: "
                "a repeated ?modules= argument reaches the component as its last value only "
                "(give modules as one comma-separated value), and 'Authorization: APIKEY' is "
                "not accepted (send the key in the X-Api-Key header)")

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

    async def _handle_metrics(self, web_request: "WebRequest") -> Union[bytes, str]:
        modules = self._requested_modules(web_request)
        merger = self.mergers[""]
        if merger is None or EXPORTERS not in modules:
            # Printer objects changed since the last scrape (Klippy pushes every 250 ms):
            # their re-render (~0.4 ms on a live printer, more on the first scrape after
            # Klippy is ready) runs first, in short loop callbacks of its own.
            ahead = await render_stale_ahead(
                [c for c in self._may_be_stale if c.name in modules], RENDER_AHEAD_SLICE_NS)
            return self.render(modules, ahead)
        # Concurrent scrapes with the same selection share one run of every source; our
        # own text is rendered once for them, when the sources have answered.
        return await merger.collect(local_text=lambda: self.render(modules).decode("utf-8"),
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

    def render(self, modules: Sequence[str], ahead: Optional[Dict[str, int]] = None) -> bytes:
        """The selected collectors' families, then the exporter's own (build and printer
        info, each collector's success and duration), UTF-8 encoded. Each collector is
        isolated from the others' failures. `ahead`: nanoseconds collectors (by name) spent
        rendering ahead of this call, added to their durations (see render_stale_ahead).

        A collector's text is encoded once per change (`_encoded`): one label value outside
        ASCII (a sensor named "Électronique") makes encoding a text cost ~1 µs per kB.
        """
        modules = [*ALWAYS_SERVED, *(m for m in modules if m != EXPORTERS
                                     and m not in ALWAYS_SERVED)]
        parts: List[bytes] = []
        failed: List[str] = []
        durations: List[int] = []
        clock = time.perf_counter_ns  # whole nanoseconds: short, quickly written values
        for name in modules:
            start = clock()
            try:
                parts.append(self._encoded(name, self.collectors[name].render()))
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
        parts += (self._encoded(" info", self._info_text()),
                  self._encoded(" success", self._success.text(key, lambda: _successes(*key))),
                  duration.render().encode())
        return b"".join(parts)

    def _encoded(self, slot: str, text: str) -> bytes:
        """`text` UTF-8 encoded; encoded again only when `slot` is given another string
        object than last time (a cached text is the same object)."""
        cached = self._encoded_parts.get(slot)
        if cached is not None and cached[0] is text:
            return cached[1]
        data = text.encode("utf-8")
        self._encoded_parts[slot] = (text, data)
        return data

    def _info_text(self) -> str:
        """klipper_exporter_build_info, and klipper_printer_info: the printer's name, host
        and software versions (Moonraker's host info, app args and Klippy info)."""
        klippy_version = self.server.get_klippy_info().get("software_version", "")
        moonraker_version = self.server.get_app_args().get("software_version", "")
        key = (str(self.server.get_host_info()["hostname"]), str(klippy_version or ""),
               str(moonraker_version or ""))
        return self._info.text(key, lambda: self._render_info(*key))

    def _render_info(self, hostname: str, klippy_version: str, moonraker_version: str) -> str:
        build = Family(self_metrics.BUILD_INFO)
        build.add(1.0, self.version)
        printer = Family(self_metrics.PRINTER_INFO)
        printer.add(1.0, self.options.printer_name, hostname, klippy_version,
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


def _hook_routes(server: Any, paths: Sequence[str]) -> bool:
    """Adapt what prometheus-klipper-exporter's Prometheus jobs send to what Moonraker reads.

    - `params: {modules: [a, b]}` arrives as `?modules=a&modules=b`, and Moonraker hands an
      endpoint callback only the last value of a repeated argument: the values are joined
      with commas before Moonraker parses the arguments, so every module is served.
    - `authorization: {type: APIKEY, credentials: KEY}` arrives as `Authorization: APIKEY
      KEY`, which Moonraker answers with 401: it becomes the `X-Api-Key: KEY` header Moonraker
      checks (the key is still validated by Moonraker's [authorization]).
    - A GET with a JSON body: Moonraker merges the body's fields into the arguments; only
      the query's arguments are kept (`modules`, and what forward_url_params passes on).

    Two costs of a scrape that buy nothing are removed as well: Tornado hashes every GET
    response into an ETag (SHA-1 over the whole body: no scraper sends If-None-Match), and
    the router tries every rule registered before ours (about 80 path patterns) before it
    reaches a metrics path; the metrics routes are moved to the front of the rule list
    (their patterns match these exact paths only, so no other route is shadowed).

    Moonraker has no public hook for either, so the Tornado handler class of each path's
    route is replaced by a subclass. Moonraker's router (`application.mutable_router`,
    `pattern_to_rule`, `parse_args`, `prepare`) is internal API, verified on Moonraker 0.10
    and 0.11 by the test suite. Returns False, changing nothing, when a route or handler is
    not as expected.
    """
    import inspect

    import tornado.web

    app = server.lookup_component("application", None)
    rules = getattr(getattr(app, "mutable_router", None), "pattern_to_rule", None)
    if not isinstance(rules, dict):
        return False
    found = []
    for path in paths:
        matches = [rule for pattern, rule in rules.items()
                   if isinstance(pattern, str) and pattern.endswith(path)]
        if len(matches) != 1:
            return False
        target = getattr(matches[0], "target", None)
        if not (inspect.isclass(target) and issubclass(target, tornado.web.RequestHandler)
                and callable(getattr(target, "parse_args", None))):
            return False
        found.append((matches[0], target))
    router_rules = app.mutable_router.rules
    for rule, target in found:
        rule.target = _metrics_handler(target)
        if rule in router_rules:
            router_rules.remove(rule)
            router_rules.insert(0, rule)
    return True


def _metrics_handler(base: type) -> type:
    class MetricsRequestHandler(base):  # type: ignore[misc, valid-type]
        def compute_etag(self) -> None:
            return None

        async def prepare(self) -> None:
            headers = self.request.headers
            scheme, _, key = headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "apikey" and key.strip() and "X-Api-Key" not in headers:
                headers["X-Api-Key"] = key.strip()
                del headers["Authorization"]
            await super().prepare()

        def parse_args(self) -> Dict[str, Any]:
            # Moonraker merges a body's fields (JSON or form) into the arguments; a scrape
            # is a GET whose arguments are its query, so the body is dropped before Moonraker
            # parses: it neither selects modules nor reaches forward_url_params backends.
            request = self.request
            request.arguments = {k: list(v) for k, v in request.query_arguments.items()}
            request.body_arguments = {}
            request.headers.pop("Content-Type", None)
            args = super().parse_args()
            values = request.query_arguments.get("modules", [])
            if len(values) > 1:
                args["modules"] = ",".join(
                    self.decode_argument(v, name="modules") for v in values)
            return args

    return MetricsRequestHandler


def _forwardable(args: Dict[str, Any]) -> Dict[str, List[str]]:
    """Arguments a source with forward_url_params may pass on (never ours).

    The metrics routes' handler (`_metrics_handler`) keeps only the query's arguments; where
    that hook could not be installed, Moonraker hands endpoints the query arguments merged
    with a JSON body's fields, and only strings (what a query holds) are forwarded.
    """
    return {k: [v] for k, v in args.items() if k != "modules" and isinstance(v, str)}
