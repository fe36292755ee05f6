"""Standalone HTTP server: one Merger per configured path, TLS/mTLS, basic auth, timeouts.

Slow clients cannot hold connections (header/body timeouts); a scrape answers within the
scrape timeout (Prometheus' X-Prometheus-Scrape-Timeout-Seconds when smaller); failed auth is
a 401 with WWW-Authenticate, never a dropped connection.
"""
from __future__ import annotations

import asyncio
import gzip
import logging
import os
import re
import ssl
from typing import Any, Dict, List, Optional

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets, bind_unix_socket
from tornado.web import Application, RequestHandler

from ..exposition import CONTENT_TYPE
from .config import Listener
from .merge import Merger
from .selfmetrics import SelfMetrics
from .sources import build_source
from .spec import SidecarConfig
from .webconfig import BasicAuth, TLSSettings, TooManyChecks, WebConfig

log = logging.getLogger(__name__)
_GZIP_IN_THREAD = 256 * 1024


def scrape_timeout(handler: RequestHandler, default: float) -> float:
    """Seconds to answer within: the scraper's X-Prometheus-Scrape-Timeout-Seconds less
    0.25 s for the way back, at most `default` (also used without a readable header) and
    at least 0.5 s."""
    header = handler.request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    try:
        asked = float(header) if header else default
    except ValueError:
        asked = default
    return max(0.5, min(default, asked - 0.25))


def gzip_accepted(header: str) -> bool:
    """Honours q-values: `gzip;q=0` means no."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            q = 1.0
            for p in params.split(";"):
                k, _, v = p.strip().partition("=")
                if k.strip() == "q":
                    try:
                        q = float(v)
                    except ValueError:
                        q = 0.0
            return q > 0
    return False


async def admitted(handler: RequestHandler, auth: Optional[BasicAuth],
                   tls: Optional[TLSSettings]) -> bool:
    """Whether the request may be served: its client certificate's SANs (when the TLS
    settings list allowed ones) and its basic auth credentials (when users are set).
    Otherwise the response is finished: 403, 429 (too many bcrypt checks pending, retry)
    or 401 with WWW-Authenticate."""
    if tls is not None and tls.client_allowed_sans:
        connection = handler.request.connection
        sock: Any = connection.stream.socket  # type: ignore[union-attr]  # an HTTP1Connection
        if not tls.san_allowed(sock.getpeercert()):
            handler.set_status(403)
            handler.finish("client certificate not allowed\n")
            return False
    try:
        allowed = not auth or await auth.allowed(handler.request.headers.get("Authorization"))
    except TooManyChecks:
        handler.set_status(429)
        handler.set_header("Retry-After", "1")
        handler.finish("too many password checks at once, try again\n")
        return False
    if not allowed:
        handler.set_status(401)
        handler.set_header("WWW-Authenticate", 'Basic realm="metrics", charset="UTF-8"')
        handler.finish("unauthorized\n")
        return False
    return True


class MetricsHandler(RequestHandler):
    def initialize(self, merger: Merger, auth: Optional[BasicAuth], tls: Optional[TLSSettings],
                   timeout: float, headers: Dict[str, str], own: SelfMetrics) -> None:
        self.merger = merger
        self.own = own
        self.auth = auth
        self.tls = tls
        self.timeout = timeout
        self.extra_headers = headers

    def set_default_headers(self) -> None:
        for k, v in getattr(self, "extra_headers", {}).items():
            self.set_header(k, v)

    async def get(self) -> None:
        if not await admitted(self, self.auth, self.tls):
            return
        params = {k: [v.decode("utf-8", "replace") for v in vs]
                  for k, vs in self.request.query_arguments.items()}
        # Concurrent scrapes share one run (the process metrics are rendered once for it).
        text = await self.merger.collect(self.own.render, scrape_timeout(self, self.timeout),
                                         params)
        body = text.encode("utf-8")
        if gzip_accepted(self.request.headers.get("Accept-Encoding", "")):
            if len(body) > _GZIP_IN_THREAD:
                body = await asyncio.get_running_loop().run_in_executor(None, gzip.compress, body)
            else:
                body = gzip.compress(body)
            self.set_header("Content-Encoding", "gzip")
        self.set_header("Vary", "Accept-Encoding")
        self.set_header("Content-Type", CONTENT_TYPE)
        self.finish(body)


def _listen(listener: Listener, app: Application, ctx: Optional[ssl.SSLContext],
            cfg: SidecarConfig) -> HTTPServer:
    server = HTTPServer(app, ssl_options=ctx, idle_connection_timeout=cfg.read_header_timeout,
                        body_timeout=cfg.read_header_timeout, max_header_size=16384,
                        max_body_size=65536)
    if listener.scheme.startswith("unix"):
        sockets = [bind_unix_socket(listener.path, mode=0o660)]
        log.warning("listening on %s://%s", listener.scheme, listener.path)
    else:
        sockets = bind_sockets(listener.port, listener.host)
        for s in sockets:
            host, port = s.getsockname()[:2]
            log.warning("listening on %s://%s:%d", listener.scheme, host, port)
    server.add_sockets(sockets)
    return server


class Sidecar:
    """Everything one standalone process serves."""

    def __init__(self, cfg: SidecarConfig, web: Optional[WebConfig] = None) -> None:
        self.cfg = cfg
        self.web = web or WebConfig()
        self.mergers: List[Merger] = []
        self.servers: List[HTTPServer] = []
        self.auths: List[BasicAuth] = []

    def start(self) -> None:
        cfg, web = self.cfg, self.web
        routes = []
        own = SelfMetrics()
        for ep in cfg.endpoints:
            merger = Merger([build_source(spec) for spec in ep.specs])
            merger.start()
            self.mergers.append(merger)
            users = dict(web.users)
            users.update(cfg.users)
            users.update(ep.users)
            if any(not u.startswith("$2") for u in users.values()):
                log.warning("%s: plaintext passwords in the config; prefer bcrypt hashes in "
                            "--web.config.file basic_auth_users", ep.path)
            auth = BasicAuth(users) if users else None
            if auth is not None:
                self.auths.append(auth)
            routes.append((re.escape(cfg.context_path + ep.path), MetricsHandler, {
                "merger": merger, "auth": auth, "tls": web.tls,
                "timeout": cfg.scrape_timeout, "headers": web.headers, "own": own}))
        app = Application(routes)
        for i, listener in enumerate(cfg.listen):
            ctx = None
            if listener.tls:
                assert listener.cert_file and listener.key_file
                ctx = TLSSettings(
                    listener.cert_file, listener.key_file, listener.client_ca_file,
                    "RequireAndVerifyClientCert" if listener.client_ca_file else "NoClientCert",
                ).context("web.listen[%d]" % i)
            elif web.tls is not None:
                ctx = web.tls.context("tls_server_config")
            self.servers.append(_listen(listener, app, ctx, cfg))

    async def stop(self) -> None:
        for server in self.servers:
            server.stop()
            await server.close_all_connections()
        for merger in self.mergers:
            await merger.close()
        for auth in self.auths:
            auth.close()
        for listener in self.cfg.listen:
            if listener.scheme.startswith("unix") and os.path.exists(listener.path):
                os.unlink(listener.path)
