"""HTTP(S) and Unix-socket backends via Tornado's simple client (no extra dependency).

The configured URL keeps its query string. Every failure maps to a reason: timeout, connect,
tls, http_status, oversize, error. The body limit counts decompressed bytes (gzip bombs).
"""
from __future__ import annotations

import socket
import ssl
from typing import Any, List, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.netutil import Resolver
from tornado.simple_httpclient import HTTPTimeoutError, SimpleAsyncHTTPClient

from .base import Fetched, FetchError, Params, Source

ACCEPT = "text/plain;version=0.0.4;q=1,*/*;q=0.1"


class _UnixResolver(Resolver):
    """Resolves every host to one Unix socket (Tornado connects AF_UNIX streams as-is)."""

    def initialize(self, socket_path: str) -> None:  # type: ignore[override]
        self.socket_path = socket_path

    async def resolve(self, host: str, port: int, family: int = socket.AF_UNSPEC) -> List[Any]:
        return [(socket.AF_UNIX, self.socket_path)]

    def close(self) -> None:
        pass


class _TooBig(Exception):
    pass


def _failure(error: BaseException, timeout: float) -> FetchError:
    """Maps a Tornado/OS error to a reason label."""
    if isinstance(error, HTTPTimeoutError):
        return FetchError("timeout", "no answer within %g s" % timeout)
    if isinstance(error, ssl.SSLError):
        return FetchError("tls", str(error))
    if isinstance(error, HTTPClientError) and error.code != 599:
        return FetchError("http_status", "HTTP %d" % error.code)
    if isinstance(error, (OSError, HTTPClientError)):
        return FetchError("connect", str(error))
    return FetchError("error", "%s: %s" % (type(error).__name__, error))


class HttpSource(Source):
    def __init__(self, spec) -> None:
        super().__init__(spec)
        resolver = _UnixResolver(socket_path=spec.socket) if spec.kind == "unix" else None
        self._client: Optional[SimpleAsyncHTTPClient] = None
        self._resolver = resolver
        self._base = ("http://localhost" + spec.url) if spec.kind == "unix" else spec.url
        self._headers = {"Accept": ACCEPT}
        self._headers.update(spec.headers)
        if spec.bearer_token is not None:
            self._headers["Authorization"] = "Bearer " + spec.bearer_token

    def _url(self, params: Optional[Params]) -> str:
        """Forwarded scrape params are appended to the query, never to scheme/host/path."""
        if not (params and self.spec.forward_url_params):
            return self._base
        parts = urlsplit(self._base)
        query = parse_qsl(parts.query, keep_blank_values=True)
        for k, values in sorted(params.items()):
            query += [(k, v) for v in ([values] if isinstance(values, str) else values)]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def fetch(self, params: Optional[Params] = None) -> Fetched:
        spec = self.spec
        if self._client is None:
            # One client per source: its own Unix resolver and connection limit. The body
            # limit is enforced below on decoded bytes, not by Tornado on raw bytes.
            self._client = SimpleAsyncHTTPClient(
                force_instance=True, resolver=self._resolver, max_clients=4,
                max_body_size=1 << 40)
        chunks: List[bytes] = []
        size = [0]
        too_big = [False]

        def on_chunk(chunk: bytes) -> None:
            size[0] += len(chunk)
            if size[0] > spec.max_bytes:
                too_big[0] = True
                raise _TooBig()
            chunks.append(chunk)

        request = HTTPRequest(
            self._url(params), headers=self._headers, connect_timeout=spec.timeout,
            request_timeout=spec.timeout, decompress_response=True, follow_redirects=False,
            streaming_callback=on_chunk, auth_username=spec.username,
            auth_password=spec.password if spec.username is not None else None,
            auth_mode="basic" if spec.username is not None else None,
            ca_certs=spec.ca_file, client_cert=spec.cert_file, client_key=spec.key_file,
            validate_cert=not spec.insecure_skip_verify)
        try:
            response = await self._client.fetch(request, raise_error=False)
            error = response.error
        except Exception as e:  # Tornado raises transport errors even with raise_error=False
            error = e
        if too_big[0]:
            raise FetchError("oversize", "body above %d bytes" % spec.max_bytes)
        if error is None:
            return Fetched([b"".join(chunks)])
        raise _failure(error, spec.timeout)

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
