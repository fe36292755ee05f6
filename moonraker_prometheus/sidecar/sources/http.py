"""HTTP(S) and Unix-socket backends via Tornado's simple client (no extra dependency).

The configured URL keeps its query string. Every failure maps to a reason (reasons.py): timeout,
connect, tls, http_status, oversize, error. The body limit counts decompressed bytes (gzip bombs):
reading stops at the limit and the connection is closed, so no more than `max_bytes` of a
body is ever held.
"""
from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import re
import socket
import ssl
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.httputil import HTTPInputError
from tornado.iostream import StreamBufferFullError
from tornado.netutil import Resolver
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from .. import reasons
from ..spec import FLAG, MAPPING, SECRET, TEXT, Option, SourceSpec, SpecError, redact_url
from .base import Fetched, FetchError, Params, Source, consume_outcome

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Options of both HTTP kinds: request headers, credentials, forwarded scrape parameters.
_REQUEST_OPTIONS = (
    Option("headers", MAPPING, {}, secret=True),
    Option("username", SECRET),
    Option("password", SECRET),
    Option("bearer_token", SECRET),
    Option("forward_url_params", FLAG, False),
)


class _UnixResolver(Resolver):
    """Resolves every host to one Unix socket (Tornado connects AF_UNIX streams as-is)."""

    def initialize(self, socket_path: str) -> None:
        self.socket_path = socket_path

    async def resolve(self, host: str, port: int, family: int = socket.AF_UNSPEC) -> List[Any]:
        return [(socket.AF_UNIX, self.socket_path)]

    def close(self) -> None:
        pass


class _TooBig(HTTPInputError):
    """Raised from the body callback: Tornado closes the connection and reads no further."""


# Tornado's own messages about a fetch's failure (INFO "Malformed HTTP message", ERROR
# "Reached maximum read buffer size", ...) would repeat at every scrape; the merger logs each
# source's failure once per cause instead. The filter drops only records emitted while one of
# our fetches runs (Tornado's stream callbacks inherit the fetching task's context).
_IN_FETCH: "contextvars.ContextVar[bool]" = contextvars.ContextVar("sidecar_fetch",
                                                                    default=False)


class _OwnFetchNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _IN_FETCH.get()


# Tornado 6.4 (Moonraker 0.9.3's pin) logs a body callback's refusal on tornado.application
# ("Uncaught exception", "Exception in callback"); 6.5 on tornado.general.
for _logger in ("tornado.general", "tornado.application"):
    logging.getLogger(_logger).addFilter(_OwnFetchNoise())


class _Body:
    """One response body, never more than `limit` bytes (decoded); Tornado's callbacks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: List[bytes] = []
        self.size = 0
        self.over = False  # the limit was reached: reading stopped
        self.until_close = False  # neither Content-Length nor chunked: ends with the connection

    def header(self, line: str) -> None:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if line.startswith("HTTP/"):
            self.until_close = True  # until a framing header says otherwise
        elif name == "content-length":
            self.until_close = False
            if value.strip().isdigit() and int(value) > self.limit:
                self.over = True
                raise _TooBig()  # refused before a byte of the body is read
        elif name == "transfer-encoding":
            self.until_close = False

    def chunk(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self.over = True
            self.chunks.clear()
            raise _TooBig()
        self.chunks.append(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data

    def oversize(self, error: BaseException) -> bool:
        """Whether `error` is the limit: ours, or Tornado's buffer for a close-ended body
        (which Tornado reports only as a closed connection)."""
        return self.over or isinstance(error, StreamBufferFullError) or (
            self.until_close and self.size == 0
            and isinstance(error, (HTTPClientError, OSError)) and "closed" in str(error).lower())


def _failure(error: BaseException, timeout: float) -> FetchError:
    """Maps a Tornado/OS error to a reason label."""
    if isinstance(error, HTTPTimeoutError):
        return FetchError(reasons.TIMEOUT, "no answer within %g s" % timeout)
    if isinstance(error, ssl.SSLError):
        return FetchError(reasons.TLS, str(error))
    if isinstance(error, HTTPClientError) and error.code != 599:
        return FetchError(reasons.HTTP_STATUS, "HTTP %d" % error.code)
    if isinstance(error, (OSError, HTTPClientError)):
        return FetchError(reasons.CONNECT, str(error))
    return FetchError(reasons.ERROR, "%s: %s" % (type(error).__name__, error))


def _check_request(spec: SourceSpec) -> None:
    for k, v in spec.headers.items():
        if not _HEADER.fullmatch(k):
            # not quoted: 'Authorization: Bearer abc=' would make the token the name
            raise SpecError("headers", "a header name is not valid: write Name=value, "
                            "one per line, names such as X-Token (value not shown)")
        if "\r" in v or "\n" in v:
            raise SpecError("headers", "value of %r contains a line break" % k)
    if spec.bearer_token is not None and spec.username is not None:
        raise SpecError("bearer_token", "use either bearer_token or username/password")
    if spec.password is not None and spec.username is None:
        raise SpecError("password", "needs username")


class HttpSource(Source):
    """An exporter over HTTP(S): `url`, TLS files, headers and credentials."""

    options: Sequence[Option]  # as Source types it: UnixSource's are others
    options = (Option("url", TEXT, "", yaml="address", secret=True),) + _REQUEST_OPTIONS + (
        Option("ca_file", TEXT),
        Option("cert_file", TEXT),
        Option("key_file", TEXT),
        Option("insecure_skip_verify", FLAG, False),
    )
    yaml_kinds: Sequence[str] = ("http",)

    @staticmethod
    def check(spec: SourceSpec) -> None:
        parts = urlsplit(spec.url)
        try:
            _ = parts.port  # urlsplit checks the port only when it is read
        except ValueError:
            raise SpecError("url", "the port is not a number from 1 to 65535") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError("url", "must be an http:// or https:// URL with a host, got %r"
                            % redact_url(spec.url))
        for option in ("ca_file", "cert_file", "key_file"):
            path = getattr(spec, option)
            if path is not None and not os.access(path, os.R_OK):
                raise SpecError(option, "cannot read %s" % path)
        if spec.key_file and not spec.cert_file:
            raise SpecError("key_file", "needs cert_file")
        _check_request(spec)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._client: Optional[SimpleAsyncHTTPClient] = None
        self._resolver = self._make_resolver()
        self._base = self._base_url()
        self._headers = {"Accept": ACCEPT}
        self._headers.update(spec.headers)
        if spec.bearer_token is not None:
            self._headers["Authorization"] = "Bearer " + spec.bearer_token

    def _make_resolver(self) -> Optional[Resolver]:
        return None

    def _base_url(self) -> str:
        return self.spec.url

    def _tls(self) -> Dict[str, Any]:
        spec = self.spec
        return {"ca_certs": spec.ca_file, "client_cert": spec.cert_file,
                "client_key": spec.key_file, "validate_cert": not spec.insecure_skip_verify}

    def _url(self, params: Optional[Params]) -> str:
        """Forwarded scrape params are appended to the query, never to scheme/host/path."""
        if not (params and self.spec.forward_url_params):
            return self._base
        parts = urlsplit(self._base)
        query = parse_qsl(parts.query, keep_blank_values=True)
        configured = {k for k, _ in query}  # the configuration wins: never overridden
        for k, values in sorted(params.items()):
            if k not in configured:
                query += [(k, v) for v in ([values] if isinstance(values, str) else values)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        spec = self.spec
        timeout = spec.timeout if timeout is None else min(spec.timeout, timeout)
        if self._client is None:
            # One client per source: its own Unix resolver and connection limit. Tornado
            # buffers a body delimited by the connection's close whole before handing it
            # over: max_buffer_size stops that at the limit. Other bodies are streamed to
            # _Body, which counts decoded bytes (gzip bombs) and stops at the limit.
            self._client = SimpleAsyncHTTPClient(
                force_instance=True, resolver=self._resolver, max_clients=4,
                max_body_size=1 << 40, max_buffer_size=spec.max_bytes + 65536)
        body = _Body(spec.max_bytes)
        request = HTTPRequest(
            self._url(params), headers=self._headers, connect_timeout=timeout,
            request_timeout=timeout, decompress_response=True, follow_redirects=False,
            header_callback=body.header, streaming_callback=body.chunk,
            auth_username=spec.username,
            auth_password=spec.password if spec.username is not None else None,
            auth_mode="basic" if spec.username is not None else None,
            **self._tls())
        _IN_FETCH.set(True)  # this task's context only: see _OwnFetchNoise
        future = self._client.fetch(request, raise_error=False)
        future.add_done_callback(consume_outcome)
        try:
            # shielded: if the scrape gives up first, Tornado finishes (or times out) the
            # request on its own instead of logging an exception set on a cancelled future
            response = await asyncio.shield(future)
            error = response.error
        except asyncio.CancelledError:
            raise
        except Exception as e:  # Tornado raises transport errors even with raise_error=False
            error = e
        data = body.take()
        if error is None:
            return Fetched([data])
        if body.oversize(error):
            raise FetchError(reasons.OVERSIZE, "body above %d bytes" % spec.max_bytes)
        raise _failure(error, timeout)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class UnixSource(HttpSource):
    """An exporter over HTTP on a Unix socket: `socket`, and `url` the path (and query)
    requested on it."""

    options = (Option("socket", TEXT, ""),
               Option("url", TEXT, "", yaml="address", secret=True)) + _REQUEST_OPTIONS
    yaml_kinds = ()  # written as http in YAML: an http://unix:... address or a socket key

    @staticmethod
    def check(spec: SourceSpec) -> None:
        if not os.path.isabs(spec.socket or ""):
            raise SpecError("socket", "must be an absolute path to a Unix socket")
        url = spec.url or "/metrics"
        if not url.startswith("/"):
            raise SpecError("url", "for a unix source, a path such as /metrics (query allowed)")
        spec.url = url
        _check_request(spec)

    def _make_resolver(self) -> Optional[Resolver]:
        return _UnixResolver(socket_path=self.spec.socket)

    def _base_url(self) -> str:
        return "http://localhost" + self.spec.url

    def _tls(self) -> Dict[str, Any]:
        return {}
