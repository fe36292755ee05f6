"""The [prometheus] Moonraker component: options, endpoint, collector lifecycle."""
from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from .collectors import EXPORTERS, module_names, resolve_modules
from .collectors.base import render_stale_ahead
from .collectors.renderer import Renderer
from .exposition import CONTENT_TYPE
from .options import Options
from .sidecar import Merger, build_source, config_from_sections
from .sidecar import merge

if TYPE_CHECKING:
    from moonraker.common import WebRequest
    from moonraker.confighelper import ConfigHelper

METRICS_PATH = "/server/metrics"
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
        # The collectors read Moonraker's components in process (collectors.host)
        self.renderer = Renderer(self.server, version, self.options.printer_name)
        self.collectors = self.renderer.collectors
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
        hooked = _hook_routes(self.server, paths)
        if not hooked:
            logging.warning(
                "prometheus: this Moonraker's HTTP router is not the one the component knows: "
                "a repeated ?modules= argument reaches the component as its last value only "
                "(give modules as one comma-separated value), and 'Authorization: APIKEY' is "
                "not accepted (send the key in the X-Api-Key header)")
        logging.info("prometheus: changes to Moonraker: " + _changes(hooked, self.mergers))

    def _load_exporters(self, config: "ConfigHelper") -> Dict[str, Optional[Merger]]:
        """Sidecar groups from [prometheus exporter NAME] sections ("" = /server/metrics)."""
        sections = [config.getsection(name)
                    for name in config.get_prefix_sections("prometheus exporter")]
        cfg = config_from_sections(sections)
        for warning in cfg.warnings:
            self.server.add_warning(warning)
        mergers: Dict[str, Optional[Merger]] = {"": None}
        for endpoint in sorted(cfg.endpoints, key=lambda e: e.path):  # path: the group
            mergers[endpoint.path] = Merger([build_source(s) for s in endpoint.specs],
                                            defer_gc=self.options.merge_defer_gc,
                                            malloc_trim=self.options.merge_malloc_trim)
        return mergers

    async def component_init(self) -> None:
        await self.renderer.start()
        for merger in self.mergers.values():
            if merger is not None:
                merger.start()

    async def close(self) -> None:
        await self.renderer.close()
        for merger in self.mergers.values():
            if merger is not None:
                await merger.close()

    async def _handle_metrics(self, web_request: "WebRequest") -> str:
        modules = self._requested_modules(web_request)
        merger = self.mergers[""]
        if merger is None or EXPORTERS not in modules:
            return await self._render_fresh(modules)
        # Concurrent scrapes with the same selection share one run of every source; our
        # own text is rendered once for them, when the sources have answered.
        return await merger.collect(local_text=lambda: self._render_fresh(modules),
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

    async def _render_fresh(self, modules: Sequence[str]) -> str:
        """render(), after the printer objects changed since the last scrape (Klippy pushes
        every 250 ms) are re-rendered (~0.4 ms on a live printer, more on the first scrape
        after Klippy is ready) in short loop callbacks of their own (render_stale_ahead)."""
        ahead = await render_stale_ahead(
            [c for c in self.renderer.may_be_stale if c.name in modules],
            RENDER_AHEAD_SLICE_NS)
        return self.render(modules, ahead)

    def render(self, modules: Sequence[str], ahead: Optional[Dict[str, int]] = None) -> str:
        """The selected collectors' families and the exporter's own (see Renderer.render)."""
        return self.renderer.render(modules, ahead)


def _changes(hooked: bool, mergers: Dict[str, Optional[Merger]]) -> str:
    """What the component does to Moonraker beyond serving its routes, for the start log line
    (docs/architecture.md, "What the component changes in Moonraker"); `hooked`: what
    _hook_routes() returned."""
    changes = ["metrics routes first in the router, own handler class" if hooked
               else "none to the router (Moonraker's handler class kept)"]
    active = [m for m in mergers.values() if m is not None]
    if not active:
        changes.append("no sidecar merges (no [prometheus exporter] section), so cyclic GC "
                       "and malloc untouched")
    else:
        changes.append("cyclic GC deferred during merges" if active[0].defer_gc
                       else "cyclic GC left alone during merges (merge_defer_gc: False)")
        if not active[0].malloc_trim:
            changes.append("no malloc_trim after merges (merge_malloc_trim: False)")
        else:
            changes.append("malloc_trim after merges" if merge.HAS_MALLOC_TRIM
                           else "no malloc_trim after merges (not glibc)")
    changes.append("Tornado's log records of the sidecar's own fetches dropped")
    return "; ".join(changes)


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
    class MetricsRequestHandler(base):
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
