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
        query += [(k, v) for k, values in sorted(params.items()) for v in values]
        return urlunsplit(parts._replace(query=urlencode(query)))

    async def fetch(self, params: Optional[Params] = None) -> Fetched:
        spec = self.spec
        if self._client is None:
            # One client per source: its own Unix resolver and connection limit.
            self._client = SimpleAsyncHTTPClient(
                force_instance=True, resolver=self._resolver, max_clients=4,
                max_body_size=spec.max_bytes)
        chunks: List[bytes] = []
        size = [0]

        def on_chunk(chunk: bytes) -> None:
            size[0] += len(chunk)
            if size[0] > spec.max_bytes:
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
        except _TooBig:
            raise FetchError("oversize", "body above %d bytes" % spec.max_bytes) from None
        except ssl.SSLError as e:
            raise FetchError("tls", str(e)) from None
        except OSError as e:
            raise FetchError("connect", str(e)) from None
        error = response.error
        if isinstance(error, _TooBig) or size[0] > spec.max_bytes:
            raise FetchError("oversize", "body above %d bytes" % spec.max_bytes)
        if isinstance(error, HTTPTimeoutError):
            raise FetchError("timeout", "no answer within %g s" % spec.timeout)
        if isinstance(error, ssl.SSLError):
            raise FetchError("tls", str(error))
        if isinstance(error, OSError):
            raise FetchError("connect", str(error))
        if isinstance(error, HTTPClientError) and error.code != 599:
            raise FetchError("http_status", "HTTP %d" % error.code)
        if error is not None:
            text = str(error)
            if "too large" in text.lower() or "too long" in text.lower():
                raise FetchError("oversize", text)
            raise FetchError("error", text)
        return Fetched([b"".join(chunks)])

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
