"""The central exporter's HTTP side: `/probe?target=HOST:PORT[&modules=...]` and `/metrics`.

A probe is answered within the scrape timeout (Prometheus'
X-Prometheus-Scrape-Timeout-Seconds, less a quarter second, at most `scrape_timeout`). Only
listed targets are probed unless `allow_any_target`; an unlisted one is refused with 403
before anything is opened. Listed targets are never refused; `max_targets` bounds the
unlisted ones `allow_any_target` lets in. The listener's TLS, mutual TLS and basic auth
are the sidecar's (`sidecar.webconfig`, `sidecar.server.admitted`).
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import time
from typing import Dict, Optional, Sequence, Set, Tuple

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from ..collectors import module_names, resolve_modules
from ..exposition import CONTENT_TYPE, Family, render_families
from ..sidecar.selfmetrics import SelfMetrics
from ..sidecar.server import admitted, gzip_accepted, scrape_timeout
from ..sidecar.webconfig import BasicAuth, WebConfig
from . import metrics
from .client import LIMITS
from .config import TARGETS_FILE_ERRORS
from .target import Limits, Target, TargetSpec, normalize_target

log = logging.getLogger(__name__)

REAP_SECONDS = 30.0
# An unlisted target not probed for this long makes room for another when max_targets
# are connected (the least recently probed first); one probed since is kept, and the new
# one answers probe_success 0, reason max_targets: no reconnecting round robin.
EVICT_SECONDS = 60.0
# More listed targets than this gets a warning: one exporter was measured up to 1,000
# printers (37-46 % of a core, probe p99 6-16 ms: docs/remote.md, bench/README.md), not
# beyond.
LISTED_WARNING = 1000


class TargetsFileStatus:
    """The --targets-file's loads, for /metrics: failures by reason
    (config.TARGETS_FILE_ERRORS) and the last successful load's Unix time."""

    def __init__(self) -> None:
        self.errors: Dict[str, int] = {}
        self.success = False
        self.loaded_at: Optional[float] = None

    def loaded(self) -> None:
        """A load succeeded."""
        self.success = True
        self.loaded_at = time.time()

    def failed(self, reason: str) -> None:
        """A load failed (`reason`: one of config.TARGETS_FILE_ERRORS)."""
        self.success = False
        self.errors[reason] = self.errors.get(reason, 0) + 1

    def families(self) -> Sequence[Family]:
        """klipper_remote_targets_file_*."""
        errors = Family(metrics.TARGETS_FILE_ERRORS)
        for reason in TARGETS_FILE_ERRORS:
            errors.add(float(self.errors.get(reason, 0)), reason)
        success = Family(metrics.TARGETS_FILE_SUCCESS)
        success.add(1.0 if self.success else 0.0)
        families = [errors, success]
        if self.loaded_at is not None:
            stamp = Family(metrics.TARGETS_FILE_TIMESTAMP)
            stamp.add(self.loaded_at)
            families.append(stamp)
        return families


def _warn_if_many(listed: Dict[str, TargetSpec]) -> None:
    if len(listed) > LISTED_WARNING:
        log.warning("%d targets listed: one exporter was measured up to 1,000 printers "
                    "(37-46 %% of a core, probe p99 6-16 ms), not beyond; run one exporter per "
                    "1,000 printers at most (docs/remote.md)", len(listed))


class Exporter:
    """The targets: those listed (`listed`, address -> spec, replaced by `relist` when the
    targets file changes; never refused) and, with `allow_any`, any address a probe names,
    at most `max_targets` of those at once. `targets_file`: the --targets-file's loads."""

    def __init__(self, listed: Dict[str, TargetSpec], version: str, limits: Limits,
                 allow_any: bool = False, max_targets: int = 100,
                 targets_file: Optional[TargetsFileStatus] = None) -> None:
        self.listed = dict(listed)
        self.version = version
        self.limits = limits
        self.allow_any = allow_any
        self.max_targets = max_targets
        self.targets_file = targets_file
        self.targets: Dict[str, Target] = {}
        self.refused: Dict[str, int] = {}
        self.over_max = 0  # probes answered reason max_targets
        self.evicted = 0
        self._closing: Set["asyncio.Task[None]"] = set()
        self._reaper: Optional["asyncio.Task[None]"] = None
        _warn_if_many(self.listed)

    def start(self) -> None:
        """Starts forgetting idle targets (on the running loop)."""
        self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def close(self) -> None:
        """Closes every target's connection."""
        if self._reaper is not None:
            self._reaper.cancel()
        for target in list(self.targets.values()):
            await target.close()
        self.targets.clear()

    async def relist(self, listed: Dict[str, TargetSpec]) -> None:
        """New listed targets; connections of targets no longer allowed are closed, and
        those whose settings changed reconnect."""
        self.listed = dict(listed)
        _warn_if_many(self.listed)
        for address, target in list(self.targets.items()):
            spec = listed.get(address)
            if spec is None and self.allow_any:
                continue
            if spec is None or spec.settings() != target.spec.settings():
                del self.targets[address]
                await target.close()

    async def _reap(self) -> None:
        """Forgets targets nobody probed for a while (their connection closed itself)."""
        while True:
            await asyncio.sleep(REAP_SECONDS)
            for address, target in list(self.targets.items()):
                if target.idle():
                    del self.targets[address]
                    await target.close()

    def refuse(self, code: int) -> None:
        """Counts a refused probe by its HTTP status (klipper_remote_probes_refused_total)."""
        key = str(code)
        self.refused[key] = self.refused.get(key, 0) + 1

    def target(self, address: str) -> Target:
        """The Target of a normalized address, made at its first probe; KeyError when it is
        not allowed, OverflowError when it is unlisted and `max_targets` unlisted targets
        were each probed within EVICT_SECONDS (else the least recently probed of them is
        disconnected to make room)."""
        target = self.targets.get(address)
        if target is not None:
            return target
        spec = self.listed.get(address)
        if spec is None:
            if not self.allow_any:
                raise KeyError(address)
            spec = TargetSpec(address)
            unlisted = [t for a, t in self.targets.items() if a not in self.listed]
            if len(unlisted) >= self.max_targets:
                oldest = min(unlisted, key=lambda t: t.last_probe)
                if time.monotonic() - oldest.last_probe < EVICT_SECONDS:
                    self.over_max += 1
                    raise OverflowError(address)
                self._evict(oldest)
        target = self.targets[address] = Target(spec, self.version, self.limits)
        return target

    def _evict(self, target: Target) -> None:
        self.evicted += 1
        log.warning("%s: disconnected to make room for another unlisted target "
                    "(max_targets %d)", target.spec.address, self.max_targets)
        del self.targets[target.spec.address]
        task = asyncio.get_running_loop().create_task(target.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def render(self) -> str:
        """Each target's connection families (for /metrics)."""
        connected = Family(metrics.TARGET_CONNECTED)
        error = Family(metrics.TARGET_ERROR)
        age = Family(metrics.TARGET_AGE)
        connects = Family(metrics.TARGET_CONNECTS)
        requests = Family(metrics.TARGET_REQUESTS)
        probes = Family(metrics.TARGET_PROBES)
        limited = Family(metrics.TARGET_LIMITED)
        for address, target in sorted(self.targets.items()):
            connected.add(1.0 if target.renderer is not None else 0.0, address)
            if target.failure is not None:
                error.add(1.0, address, target.failure.reason)
            data_age = target.data_age()
            if data_age is not None:
                age.add(data_age, address)
            connects.add(float(target.connections), address)
            requests.add(float(target.requests_sent()), address)
            probes.add(float(target.probes), address)
            for limit in LIMITS:
                limited.add(float(target.bounds.limited.get(limit, 0)), address, limit)
        refused = Family(metrics.PROBES_REFUSED)
        for code in ("400", "403"):
            refused.add(float(self.refused.get(code, 0)), code)
        over = Family(metrics.PROBES_OVER_MAX)
        over.add(float(self.over_max))
        evicted = Family(metrics.TARGETS_EVICTED)
        evicted.add(float(self.evicted))
        files = self.targets_file.families() if self.targets_file is not None else ()
        return render_families([connected, error, age, connects, requests, probes, limited,
                                refused, over, evicted, *files])


class _Handler(RequestHandler):
    def initialize(self, exporter: Exporter, web: WebConfig, auth: Optional[BasicAuth],
                   timeout: float, own: SelfMetrics) -> None:
        self.exporter = exporter
        self.web = web
        self.auth = auth
        self.timeout = timeout
        self.own = own

    def set_default_headers(self) -> None:
        web = getattr(self, "web", None)
        for k, v in (web.headers.items() if web is not None else ()):
            self.set_header(k, v)

    def _send(self, text: str) -> None:
        body = text.encode("utf-8")  # the HTTP edge: every layer below speaks str
        if gzip_accepted(self.request.headers.get("Accept-Encoding", "")):
            # level 1: a body is compressed at each probe (1,000 printers every 15 s: 67
            # a second); a 37 kB probe took 1.0 ms (8.5 kB) at level 1, 2.0 ms at 5 (7.5 kB)
            body = gzip.compress(body, compresslevel=1)
            self.set_header("Content-Encoding", "gzip")
        self.set_header("Vary", "Accept-Encoding")
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(body)

    def _refuse(self, code: int, message: str) -> None:
        self.exporter.refuse(code)
        self.set_status(code)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(message + "\n")


class ProbeHandler(_Handler):
    """GET /probe?target=HOST:PORT[&modules=...]: 400 or 403 when refused, else the
    target's families and the probe's own (status 200 even when the target is down, or
    when it is unlisted and there is no room for it: probe_success 0, reason
    max_targets)."""

    async def get(self) -> None:
        if not await admitted(self, self.auth, self.web.tls):
            return
        raw = self.get_query_arguments("target")
        if len(raw) != 1:
            self._refuse(400, "give exactly one target=HOST:PORT")
            return
        address = normalize_target(raw[0])
        if address is None:
            self._refuse(400, "target must be HOST:PORT (no scheme, path or credentials)")
            return
        requested = [m for value in self.get_query_arguments("modules")
                     for m in value.split(",")]
        modules: Sequence[str] = module_names()
        if requested:
            known, unknown = resolve_modules(requested)
            if unknown or not known:
                self._refuse(400, f"unknown module(s) in 'modules': "
                                  f"{', '.join(unknown) or '(none given)'}; known: "
                                  f"{', '.join(module_names())}")
                return
            modules = known
        try:
            target = self.exporter.target(address)
        except KeyError:
            self._refuse(403, f"target {address} is not listed (see --target, "
                              f"--targets-file, --allow-any-target)")
            return
        except OverflowError:
            log.debug("%s: refused, max_targets %d unlisted targets", address,
                      self.exporter.max_targets)
            self._send(over_max_targets())
            return
        body = await target.probe(modules, scrape_timeout(self, self.timeout))
        self._send(body)


def over_max_targets() -> str:
    """The answer to a probe of an unlisted target with no room (Exporter.target)."""
    success = Family(metrics.PROBE_SUCCESS)
    success.add(0.0)
    reason = Family(metrics.PROBE_FAILURE)
    reason.add(1.0, "max_targets")
    return render_families([success, reason])


class OwnMetricsHandler(_Handler):
    """GET /metrics: the exporter's process and each target's connection."""

    async def get(self) -> None:
        if not await admitted(self, self.auth, self.web.tls):
            return
        self._send(self.own.render() + self.exporter.render())


class LandingHandler(_Handler):
    """GET /: what is served where (no data)."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish("moonraker-prometheus remote exporter: /probe?target=HOST:PORT, /metrics\n")


def listen(exporter: Exporter, web: WebConfig, address: str, scrape_timeout: float = 9.5
           ) -> Tuple[HTTPServer, Optional[BasicAuth]]:
    """Serves /probe and /metrics on `address` (HOST:PORT, ":PORT" for every interface);
    returns the HTTP server and its basic auth (to close). OSError when the address cannot
    be bound, ConfigError when the TLS files cannot be loaded."""
    host, _, port = address.rpartition(":")
    auth = BasicAuth(web.users) if web.users else None
    options = {"exporter": exporter, "web": web, "auth": auth, "timeout": scrape_timeout,
               "own": SelfMetrics()}
    app = Application([(r"/probe", ProbeHandler, options),
                       (r"/metrics", OwnMetricsHandler, options),
                       (r"/", LandingHandler, options)])
    ctx = web.tls.context("tls_server_config") if web.tls is not None else None
    server = HTTPServer(app, ssl_options=ctx, idle_connection_timeout=60.0,
                        body_timeout=10.0, max_header_size=16384, max_body_size=65536)
    sockets = bind_sockets(int(port), host.strip("[]") or None)
    for s in sockets:
        bound = s.getsockname()
        log.warning("listening on %s://%s:%d", "https" if ctx else "http", bound[0], bound[1])
    server.add_sockets(sockets)
    return server, auth
