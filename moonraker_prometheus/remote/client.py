"""One websocket to a Moonraker: JSON-RPC 2.0 requests, notifications, and the login.

`connect()` opens `ws[s]://HOST:PORT/websocket` with the `websockets` library's asyncio
client (tornado's client read each frame in three reads and re-registered the socket with
epoll twice per message: half the exporter's CPU at 1,000 printers), with the target's
credentials in headers (an API key as `X-Api-Key`, or a token from Moonraker's
`/access/login`, renewed through `/access/refresh_jwt` at each connection, as
`Authorization: Bearer`): never in the URL. Every failure is a `ProbeFailure` whose `reason`
is one word of a fixed vocabulary (REASONS, a label value) and whose `detail` names the
cause without any credential.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import json
import logging
import re
import socket
import ssl
import struct
import sys
import termios
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (ConnectionClosed, InvalidHandshake, InvalidMessage,
                                   InvalidStatus, PayloadTooBig)
from websockets.frames import Frame, Opcode

from ..tasks import wait_ended

log = logging.getLogger(__name__)

# Why a target is not served, as `reason` label values.
REASONS = ("connecting", "refused", "unreachable", "dns", "timeout", "tls", "auth",
           "http_error", "closed", "message_too_large", "moonraker_error", "protocol",
           "max_targets")

Notify = Callable[[str, Any], None]
# The errno of each attempt in asyncio's "Multiple exceptions: [Errno 111] ..., [Errno ...]"
_ERRNO = re.compile(r"\[Errno ([0-9]+)\]")
# Notifications of which only the newest counts (each replaces the one before): not decoded
# as they come but handed as text to `on_latest(method, raw)`, for the host to decode the
# newest when a probe reads it (proc_stats: 1,000 printers send 1,000 a second, a probe of
# each comes every 15 s). Recognised by the start of their text as Moonraker writes it
# (compact, or with json.dumps' default separators); any other form is decoded and goes to
# on_notify as every other notification.
LATEST_ONLY = ("notify_proc_stat_update",)
_LATEST_PREFIXES = {
    f'{{"jsonrpc"{colon}"2.0"{comma}"method"{colon}"{method}"{comma}"params"{colon}[':
        method for method in LATEST_ONLY for colon, comma in ((":", ","), (": ", ", "))}
_LATEST_START = tuple(_LATEST_PREFIXES)
# A connection whose peer went silent (a network cut, a host powered off without closing
# its sockets) is closed when nothing came for SILENT_SECONDS: Moonraker pushes proc_stats
# every second. Checked every PING_SECONDS, when a websocket ping also goes out (to keep
# idle links alive; its pong is not waited for: a ping timeout would fire on the exporter's
# own pauses, and silence is the Connection's to judge). Closing waits at most
# CLOSE_SECONDS for Moonraker's closing handshake, then drops the socket.
PING_SECONDS = 5.0
SILENT_SECONDS = 10.0
CLOSE_SECONDS = 2.0
# Reads in batches. 1,000 printers send 5,000 messages a second: woken once for each, the
# exporter spent most of its CPU in the event loop's and websockets' steps per read. A
# connection's socket wakes the exporter only once BATCH_BYTES have come (or the TCP
# connection ends): Linux's SO_RCVLOWAT, which the kernel honours in epoll; a printing
# printer sends that much in about a second. Every byte wakes it while a request awaits its
# answer and while a drain (Connection.drain: a probe, the silence watch every PING_SECONDS)
# reads what the kernel holds, checking every DRAIN_POLL_SECONDS whether it still holds
# some. A close frame is a small message too: Moonraker's stop waits (at most 2 s) for the
# exporter to answer it, and a close it starts is seen at the next drain.
# 0 (and any system but Linux): every message is read as it comes.
BATCH_BYTES = 4096 if sys.platform.startswith("linux") else 0
DRAIN_POLL_SECONDS = 0.001
# websockets logs each handshake's headers at DEBUG, the API key or the login's token among
# them: its connections log here, held at INFO whatever the exporter's log level.
WS_LOG = logging.getLogger(f"{__name__}.websockets")
WS_LOG.setLevel(logging.INFO)


class ProbeFailure(Exception):
    """A target cannot be read: `reason` (one of REASONS) and `detail` (for logs and the
    exporter's /metrics; never a credential)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def classify(error: BaseException) -> ProbeFailure:
    """The ProbeFailure of an exception raised while connecting or talking to Moonraker."""
    if isinstance(error, ProbeFailure):
        return error
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)):
        return ProbeFailure("timeout", "no answer in time")
    if isinstance(error, HTTPClientError):
        if error.code in (401, 403):
            return ProbeFailure("auth", f"HTTP {error.code}: Moonraker refused the "
                                        "credentials (or needs some)")
        if error.code == 599:
            cause = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
            if cause is not None and not isinstance(cause, HTTPClientError):
                return classify(cause)
            return ProbeFailure("timeout", "HTTP 599: timed out")
        return ProbeFailure("http_error", f"HTTP {error.code}")
    if isinstance(error, InvalidStatus):
        code = error.response.status_code
        if code in (401, 403):
            return ProbeFailure("auth", f"HTTP {code}: Moonraker refused the "
                                        "credentials (or needs some)")
        if 200 <= code < 300:
            return ProbeFailure("protocol", f"HTTP {code}: not a websocket endpoint")
        return ProbeFailure("http_error", f"HTTP {code}")
    if isinstance(error, InvalidMessage) \
            and isinstance(error.__cause__, (EOFError, ConnectionError)):
        return ProbeFailure("closed", "connection closed during the websocket handshake")
    if isinstance(error, InvalidHandshake):
        return ProbeFailure("protocol", f"not a websocket handshake ({type(error).__name__})")
    if isinstance(error, ConnectionClosed):
        rcvd = error.rcvd.code if error.rcvd is not None else None
        return ProbeFailure("closed", "Moonraker closed the websocket"
                                      + (f" (code {rcvd})" if rcvd else ""))
    if isinstance(error, ssl.SSLCertVerificationError):
        why = getattr(error, "verify_message", None) or getattr(error, "reason", None) \
            or "verify failed"
        return ProbeFailure("tls", f"certificate not verified: {why}")
    if isinstance(error, ssl.SSLError):
        return ProbeFailure("tls", f"TLS: {getattr(error, 'reason', None) or error}")
    if isinstance(error, socket.gaierror):
        return ProbeFailure("dns", f"name not resolved: {error.strerror}")
    if isinstance(error, ConnectionRefusedError):
        return ProbeFailure("refused", "connection refused")
    if isinstance(error, (StreamClosedError, ConnectionError)):
        real = getattr(error, "real_error", None)
        if real is not None and real is not error:
            return classify(real)
        return ProbeFailure("closed", "connection closed")
    if isinstance(error, OSError):
        # asyncio tried each address of a name (IPv6 and IPv4) and keeps only their text
        if error.errno is None and str(error).startswith("Multiple exceptions: ") \
                and set(_ERRNO.findall(str(error))) \
                == {str(errno.ECONNREFUSED)}:
            return ProbeFailure("refused", "connection refused")
        if error.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            return ProbeFailure("unreachable", error.strerror or "host unreachable")
        return ProbeFailure("unreachable", f"{type(error).__name__}: {error.strerror}")
    return ProbeFailure("protocol", f"{type(error).__name__}")


class RpcError(Exception):
    """Moonraker answered a request with a JSON-RPC error (`code`, `message`)."""

    def __init__(self, method: str, code: Any, message: Any) -> None:
        super().__init__(f"{method}: {code} {message}")
        self.code = code
        self.message = message

    def refused_credentials(self) -> bool:
        """Whether Moonraker refused for want of credentials (0.11 answers -32602
        "Unauthorized", older ones 401)."""
        return self.code in (401, 403) or self.message in ("Unauthorized", "Forbidden")


# What the per-target memory bound left out, as `limit` label values: an object or array
# over max_entries, a string over max_string, a pushed field outside the subscription.
LIMITS = ("entries", "string", "fields")


class Bounds:
    """The per-target memory bound on what is kept of Moonraker's messages: at most
    `max_entries` entries in any JSON object or array (the first ones are kept) and no
    string over `max_string` characters (such a value is left out, as a key or item, never
    cut short). `limited` counts what was left out, by LIMITS word; `log_once` logs the
    first time each (limit, source) bites. A message of at most `cheap` characters cannot
    exceed either bound and is not walked (status pushes and proc_stats are smaller)."""

    def __init__(self, max_entries: int = 5000, max_string: int = 4096,
                 name: str = "") -> None:
        self.max_entries = max_entries
        self.max_string = max_string
        self.cheap = min(max_string, 2 * max_entries)
        self.name = name
        self.limited: Dict[str, int] = {}
        self._logged: Set[Tuple[str, str]] = set()

    def count(self, limit: str, source: str, n: int = 1) -> None:
        """Counts `n` values of `source` (a method) left out by `limit`, logging the first."""
        self.limited[limit] = self.limited.get(limit, 0) + n
        if (limit, source) not in self._logged:
            self._logged.add((limit, source))
            log.warning("%s: %s: %d value(s) over the per-target memory bound left out "
                        "(%s; counted in klipper_remote_target_limited_total)", self.name,
                        source, n, {"entries": f"max_entries {self.max_entries}",
                                    "string": f"max_string {self.max_string}",
                                    "fields": "not subscribed"}[limit])

    def cut(self, message: Any, raw_size: int, source: str) -> Any:
        """`message` (decoded from `raw_size` characters) within the bound."""
        if raw_size <= self.cheap:
            return message
        counts = {"entries": 0, "string": 0}
        kept = self._cut(message, counts)
        for limit, n in counts.items():
            if n:
                self.count(limit, source, n)
        return kept

    def _cut(self, value: Any, counts: Dict[str, int]) -> Any:
        if isinstance(value, dict):
            items: Any = value.items()
            if len(value) > self.max_entries:
                counts["entries"] += len(value) - self.max_entries
                items = list(items)[:self.max_entries]
            out = {}
            for k, v in items:
                if isinstance(v, str) and len(v) > self.max_string \
                        or len(k) > self.max_string:
                    counts["string"] += 1
                    continue
                out[k] = self._cut(v, counts) if isinstance(v, (dict, list)) else v
            return out
        if isinstance(value, list):
            if len(value) > self.max_entries:
                counts["entries"] += len(value) - self.max_entries
                value = value[:self.max_entries]
            kept = []
            for v in value:
                if isinstance(v, str) and len(v) > self.max_string:
                    counts["string"] += 1
                    continue
                kept.append(self._cut(v, counts) if isinstance(v, (dict, list)) else v)
            return kept
        return value


Raw = Union[None, str, bytes]


class Socket(ClientConnection):
    """websockets' asyncio client connection that hands each message to `sink` (text as
    str, binary as bytes; None once a close frame comes or the connection is lost) as its
    last frame is parsed, inside the transport's data_received: no queue, future or task
    step per message (1,000 printers send 5,000 a second), where websockets' own recv()
    queues frames for a reader task. Until a sink is set, messages wait in `early`. Pongs
    and the closing handshake are websockets' own; a text message that is not UTF-8 is
    dropped with a debug log."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early: List[Raw] = []
        self.sink: Callable[[Raw], None] = self.early.append
        self._parts: List[bytes] = []  # the frames of a fragmented message so far
        self._text = True

    def process_event(self, event: Any) -> None:
        if self.response is None or not isinstance(event, Frame):
            super().process_event(event)  # the handshake's response
            return
        opcode = event.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if event.fin:
                self._deliver(opcode is Opcode.TEXT, event.data)
            else:
                self._text, self._parts = opcode is Opcode.TEXT, [bytes(event.data)]
        elif opcode is Opcode.CONT:
            self._parts.append(bytes(event.data))
            if event.fin:
                data, self._parts = b"".join(self._parts), []
                self._deliver(self._text, data)
        elif opcode is Opcode.PONG:
            self.acknowledge_pings(bytes(event.data))
        elif opcode is Opcode.CLOSE:  # the connection ends now, not when TCP's does
            self.sink(None)

    def _deliver(self, text: bool, data: Any) -> None:
        if not text:
            self.sink(bytes(data))
            return
        try:
            raw = str(data, "utf-8")
        except UnicodeDecodeError:
            log.debug("a text message from Moonraker is not UTF-8")
            return
        self.sink(raw)

    def connection_lost(self, exc: Optional[Exception]) -> None:
        super().connection_lost(exc)
        self.sink(None)


class _NoRedirects(ws_connect):
    """websockets' connect, following no redirect (a redirect is an http_error)."""

    def process_redirect(self, exc: Exception) -> Union[Exception, str]:
        return exc


class Connection:
    """An open websocket: `call()` sends a request and awaits its answer; notifications go
    to `on_notify(method, params)`; `closed` is set when the socket is gone (`failure`
    says why). Every message is kept within `bounds` (the per-target memory bound).
    Messages arrive through `on_message` (Socket's sink: each handled as its last frame
    is parsed, with no queue, future or task step per message; 1,000 printers send 5,000
    a second), `early` those that came before the Connection existed. With `on_latest`,
    the LATEST_ONLY notifications go there undecoded (method, text). With `batch_bytes`,
    the socket is read in batches of that many bytes (see BATCH_BYTES) but while a call
    awaits its answer or a drain() reads what the kernel holds."""

    def __init__(self, ws: Socket, on_notify: Notify,
                 request_timeout: float, bounds: Optional[Bounds] = None,
                 early: Sequence[Raw] = (),
                 on_latest: Optional[Callable[[str, str], None]] = None,
                 batch_bytes: int = 0) -> None:
        self._ws = ws
        self._on_notify = on_notify
        self._on_latest = on_latest
        self._timeout = request_timeout
        self.bounds = bounds or Bounds()
        self._next_id = 0
        self._waiting: Dict[int, "asyncio.Future[Any]"] = {}
        self._methods: Dict[int, str] = {}  # request id -> method, for error messages
        self.closed = asyncio.Event()
        self.failure: Optional[ProbeFailure] = None
        self.messages = 0  # messages received (notifications and answers)
        self.requests = 0  # requests sent
        self.last_message: Optional[float] = None  # loop time of the last message
        self._loop = asyncio.get_running_loop()
        self._opened = self._loop.time()
        self._watcher = self._loop.create_task(self._watch())
        self._closing: Optional["asyncio.Task[None]"] = None
        self._socket = ws.transport.get_extra_info("socket")
        self._batch = batch_bytes if self._socket is not None else 0
        self._eager = 0  # calls awaiting an answer and drains under way: read every byte
        self._low_water()
        for raw in early:
            self.on_message(raw)

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None,
                   timeout: Optional[float] = None) -> Any:
        """Moonraker's answer to `method`; RpcError for an error answer, ProbeFailure when
        the connection closes or no answer comes within the request timeout."""
        if self.closed.is_set():
            raise self.failure or ProbeFailure("closed", "connection closed")
        self._next_id += 1
        rid = self._next_id
        future: "asyncio.Future[Any]" = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        self._methods[rid] = method
        message = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params:
            message["params"] = params
        self._eager += 1
        self._low_water()
        try:
            self.requests += 1
            await self._ws.send(json.dumps(message))
            return await asyncio.wait_for(future, timeout or self._timeout)
        except asyncio.TimeoutError:
            raise ProbeFailure("timeout", f"no answer to {method}") from None
        except ConnectionClosed as e:
            raise self.failure or classify(e) from None
        finally:
            self._waiting.pop(rid, None)
            self._methods.pop(rid, None)
            self._eager -= 1
            self._low_water()

    async def drain(self, timeout: float) -> None:
        """Reads and handles what the kernel holds for this socket now (a batch not yet
        full), within `timeout` seconds: what was sent before this call is then handled
        (a close frame among it closes the connection), as when every message is read as
        it comes. At once when reads are not batched or nothing waits."""
        if not self._batch or self.closed.is_set() or not self._waiting_bytes():
            return
        deadline = self._loop.time() + timeout
        self._eager += 1
        self._low_water()
        try:
            while self._waiting_bytes() and not self.closed.is_set() \
                    and self._loop.time() < deadline:
                await asyncio.sleep(DRAIN_POLL_SECONDS)
        finally:
            self._eager -= 1
            self._low_water()

    def _low_water(self) -> None:
        """Sets the socket's low-water mark: 1 byte while reads are eager, else the batch."""
        if not self._batch or self.closed.is_set():
            return
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT,
                                    1 if self._eager else self._batch)
        except OSError as e:
            self._unbatch(f"SO_RCVLOWAT refused ({e.strerror})")

    def _waiting_bytes(self) -> int:
        """Bytes the kernel holds for this socket, not yet read (FIONREAD)."""
        try:
            held = fcntl.ioctl(self._socket.fileno(), termios.FIONREAD, b"\0\0\0\0")
        except (OSError, ValueError) as e:  # closed (fileno -1), or no FIONREAD here
            if not self.closed.is_set():
                self._unbatch(f"FIONREAD refused ({e})")
            return 0
        return int(struct.unpack("i", held)[0])

    def _unbatch(self, why: str) -> None:
        """Every message read as it comes from now on (the mark back at 1 byte)."""
        log.debug("%s: reads not batched", why)
        self._batch = 0
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, 1)
        except OSError:
            pass

    def on_message(self, raw: Raw) -> None:
        """One message from Moonraker (None: the websocket closed)."""
        if self.closed.is_set():
            return
        if raw is None:
            self._fail(self._why_closed())
            return
        self.messages += 1
        self.last_message = self._loop.time()
        if self._on_latest is not None and isinstance(raw, str) \
                and len(raw) <= self.bounds.cheap and raw.startswith(_LATEST_START):
            method = next(m for p, m in _LATEST_PREFIXES.items() if raw.startswith(p))
            try:
                self._on_latest(method, raw)
            except Exception:
                log.exception("handling %s failed", method)
            return
        try:
            message = json.loads(raw)
        except ValueError:
            log.debug("not JSON from Moonraker: %.80r", raw)
            return
        if not isinstance(message, dict):
            return
        try:
            rid = message.get("id")
            if len(raw) > self.bounds.cheap:
                source = self._methods.get(rid, "answer") if isinstance(rid, int) \
                    else str(message.get("method"))[:60]
                message = self.bounds.cut(message, len(raw), source)
            if rid is not None:
                future = self._waiting.get(rid) if isinstance(rid, int) else None
                if future is not None and not future.done():
                    if "error" in message:
                        error = message["error"] if isinstance(message["error"], dict) \
                            else {}
                        future.set_exception(RpcError(
                            self._methods.get(rid, "request"), error.get("code"),
                            error.get("message")))
                    else:
                        future.set_result(message.get("result"))
                return
            method = message.get("method")
            if isinstance(method, str):
                try:
                    self._on_notify(method, message.get("params"))
                except Exception:
                    log.exception("handling %s failed", method)
        except Exception as e:
            self._fail(classify(e))
            self._shut()

    async def _watch(self) -> None:
        """Every PING_SECONDS, reads what the kernel holds (a batch fills slowly when a
        printer sends little: nothing waits longer than that, Moonraker's websocket pings
        among it, which Moonraker 0.11 on tornado 6.5 sends every 10 s and closes the
        connection when their pong is not back within 10 s); then closes the connection
        when Moonraker sent nothing for SILENT_SECONDS."""
        loop = asyncio.get_running_loop()
        while not self.closed.is_set():
            await asyncio.sleep(PING_SECONDS)
            await self.drain(PING_SECONDS)
            if loop.time() - (self.last_message or self._opened) > SILENT_SECONDS:
                self._fail(ProbeFailure("timeout", f"nothing from Moonraker for "
                                                   f"{SILENT_SECONDS:g} s"))
                self._shut()
                return

    def _why_closed(self) -> ProbeFailure:
        """Why the websocket closed: Moonraker closed it (its close code), or websockets
        did on our side, for a message over max_message_size (its ping timeout is off,
        silence is _watch's)."""
        protocol = self._ws.protocol
        if isinstance(protocol.parser_exc, PayloadTooBig):
            return ProbeFailure("message_too_large",
                                "Moonraker sent a message over max_message_size")
        code = protocol.close_rcvd.code if protocol.close_rcvd is not None else None
        return ProbeFailure("closed", "Moonraker closed the websocket"
                                      + (f" (code {code})" if code else ""))

    def _shut(self) -> "asyncio.Task[None]":
        """Starts the websocket's closing handshake (at most CLOSE_SECONDS): its task."""
        if self._closing is None:
            self._closing = self._loop.create_task(self._ws.close())
        return self._closing

    def _fail(self, failure: ProbeFailure) -> None:
        if self.failure is None:
            self.failure = failure
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(failure)
        self.closed.set()

    async def close(self) -> None:
        """Closes the websocket and stops reading; waiting calls fail."""
        self._fail(ProbeFailure("closed", "connection closed by the exporter"))
        closing = self._shut()
        self._watcher.cancel()
        await wait_ended(self._watcher, closing)


class Credentials:
    """A target's credentials, read from files at each connection (a rotated key is
    picked up): `api_key_file`, or `username` with `password_file`. Tokens from a login
    are kept in memory only."""

    def __init__(self, api_key_file: Optional[str] = None, username: Optional[str] = None,
                 password_file: Optional[str] = None) -> None:
        self.api_key_file = api_key_file
        self.username = username
        self.password_file = password_file
        self._refresh_token: Optional[str] = None

    def __repr__(self) -> str:  # never the secrets
        kind = "api key" if self.api_key_file else "login" if self.username else "none"
        return f"Credentials({kind})"

    @staticmethod
    def _read(path: str, what: str) -> str:
        try:
            with open(path, encoding="utf-8") as f:
                value = f.read().strip()
        except OSError as e:
            raise ProbeFailure("auth", f"cannot read the {what} file {path}: "
                                       f"{e.strerror}") from None
        if not value:
            raise ProbeFailure("auth", f"the {what} file {path} is empty")
        return value

    async def headers(self, base_url: str, http: AsyncHTTPClient, ssl_ctx: Optional[Any],
                      timeout: float) -> Dict[str, str]:
        """The headers that authenticate the websocket's upgrade request."""
        if self.api_key_file:
            return {"X-Api-Key": self._read(self.api_key_file, "API key")}
        if not self.username:
            return {}
        token = None
        if self._refresh_token is not None:
            try:
                result = await self._post(http, f"{base_url}/access/refresh_jwt",
                                          {"refresh_token": self._refresh_token},
                                          ssl_ctx, timeout)
                token = result.get("token")
            except ProbeFailure as e:
                if e.reason != "auth":
                    raise
                self._refresh_token = None
        if not token:
            password = self._read(self.password_file or "", "password")
            result = await self._post(http, f"{base_url}/access/login",
                                      {"username": self.username, "password": password,
                                       "source": "moonraker"}, ssl_ctx, timeout)
            token = result.get("token")
            self._refresh_token = result.get("refresh_token") or None
        if not isinstance(token, str) or not token:
            raise ProbeFailure("auth", "Moonraker's login answered no token")
        return {"Authorization": f"Bearer {token}"}

    @staticmethod
    async def _post(http: AsyncHTTPClient, url: str, body: Dict[str, Any],
                    ssl_ctx: Optional[Any], timeout: float) -> Dict[str, Any]:
        request = HTTPRequest(url, method="POST", body=json.dumps(body),
                              headers={"Content-Type": "application/json"},
                              connect_timeout=timeout, request_timeout=timeout,
                              ssl_options=ssl_ctx, follow_redirects=False)
        try:
            response = await http.fetch(request)
        except HTTPClientError as e:
            # Moonraker refuses a wrong password or an unknown user with 400 (0.11:
            # "Invalid Password", "Unregistered User: NAME"), a bad token with 401
            if e.code in (400, 401, 403):
                what = "login" if url.endswith("/access/login") else "token refresh"
                raise ProbeFailure("auth", f"{what} refused (HTTP {e.code}: "
                                           f"{_moonraker_message(e)})") from None
            raise classify(e) from None
        except Exception as e:
            raise classify(e) from None
        try:
            result = json.loads(response.body).get("result")
        except (ValueError, AttributeError):
            raise ProbeFailure("protocol", "Moonraker's login answer is not JSON") from None
        if not isinstance(result, dict):
            raise ProbeFailure("protocol", "Moonraker's login answer has no result")
        return result


def _moonraker_message(error: HTTPClientError) -> str:
    """The message of Moonraker's JSON error answer (`{"error": {"message": ...}}`, at
    most 120 characters), else the HTTP reason."""
    body = error.response.body if error.response is not None else b""
    try:
        message = json.loads(body or b"null")["error"]["message"]
    except (ValueError, TypeError, KeyError):
        message = None
    return str(message)[:120] if message else str(error.message or "no message")


def urls(address: str, tls: bool) -> Tuple[str, str]:
    """(HTTP base URL, websocket URL) of a target `HOST:PORT`."""
    scheme = "https" if tls else "http"
    return f"{scheme}://{address}", f"{'wss' if tls else 'ws'}://{address}/websocket"


async def connect(address: str, credentials: Credentials, on_notify: Notify, *,
                  tls: bool = False, ssl_ctx: Optional[ssl.SSLContext] = None,
                  connect_timeout: float = 5.0, request_timeout: float = 10.0,
                  max_message_size: int = 8 << 20,
                  bounds: Optional[Bounds] = None,
                  on_latest: Optional[Callable[[str, str], None]] = None,
                  batch_bytes: int = BATCH_BYTES) -> Connection:
    """Opens the websocket to Moonraker at `address` (HOST:PORT); ProbeFailure when it
    cannot (refused, unreachable, name not resolved, TLS, credentials, timeout). What
    it receives is kept within `bounds` (default: Bounds()); `on_latest`, `batch_bytes`:
    see Connection."""
    base_url, ws_url = urls(address, tls)
    http = AsyncHTTPClient()
    # TLS for wss (websockets' default context when no private CA is given), never proxied
    # (as the login's HTTP client), no compression (as tornado's client: Moonraker's pushes
    # are small and many)
    tls_options: Dict[str, Any] = {"ssl": ssl_ctx} if tls and ssl_ctx is not None else {}
    try:
        headers = await credentials.headers(base_url, http, ssl_ctx, connect_timeout)
        ws = await _NoRedirects(
            ws_url, additional_headers=headers, open_timeout=connect_timeout,
            ping_interval=PING_SECONDS, ping_timeout=None, close_timeout=CLOSE_SECONDS,
            max_size=max_message_size, compression=None, proxy=None, logger=WS_LOG,
            create_connection=Socket, **tls_options)
    except Exception as e:
        raise classify(e) from None
    assert isinstance(ws, Socket)
    connection = Connection(ws, on_notify, request_timeout, bounds, ws.early, on_latest,
                            batch_bytes)
    ws.sink = connection.on_message
    return connection
