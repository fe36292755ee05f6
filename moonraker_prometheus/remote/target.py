"""One probed printer: its long-lived websocket, reconnection, and what a probe serves.

A target connects at its first probe and stays connected while it is probed: a closed
or failed connection is tried again after 1, 2, 5, 10, then every 30 s; a target nobody
probed for `idle_seconds` is disconnected (and reconnects at its next probe). Each
connection gets a new RemoteHost and new collectors (`Renderer`), started only once
Moonraker's data is loaded: nothing from before a disconnect is ever served, and while
the target is not connected a probe answers `probe_success 0` with the reason, and no
printer series.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import re
import ssl
import time
from typing import Any, Optional, Sequence, Tuple

from ..collectors.renderer import Renderer
from ..exposition import Family, render_families
from ..tasks import wait_ended, wait_event
from . import metrics
from .client import (Bounds, Connection, Credentials, ProbeFailure, RpcError, classify,
                     connect)
from .host import RemoteHost

log = logging.getLogger(__name__)

RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# Moonraker pushes proc_stats every second: data older than this is from a connection
# that went silent (before the pings close it), and is not served.
STALE_SECONDS = 10.0
DEFAULT_PORT = 7125  # Moonraker's, for a target given without one
# Connections opened and loaded at once (Moonraker's data, the collectors' plans, the
# subscription): the first probes of an exporter started beside 1,000 printers load them a
# few at a time, so that no burst stalls the loop past the websocket pings of those
# already connected. A probe waiting its turn answers "connecting" within its timeout.
LOADS_AT_ONCE = 8
_loading: "dict[asyncio.AbstractEventLoop, asyncio.Semaphore]" = {}


def _load_turn() -> asyncio.Semaphore:
    """The running loop's semaphore of LOADS_AT_ONCE."""
    loop = asyncio.get_running_loop()
    turn = _loading.get(loop)
    if turn is None:
        _loading.clear()  # a former loop's (tests run several)
        turn = _loading[loop] = asyncio.Semaphore(LOADS_AT_ONCE)
    return turn


class FrozenState:
    """Keeps the loaded targets' state out of the cyclic GC's walks (one per process).

    A connected target holds thousands of container objects (Moonraker's data, the
    collectors' plans and rendered state) that live as long as its connection; at 1,000
    printers that is over a million, and every full collection walked them all: 0.5-2 s
    stalls of the whole loop every few seconds (bench/README.md, issue 20). `loaded()`
    (after a target's load) collects the young generations and `gc.freeze()`s whatever is
    left: full collections then walk only what was made since. The objects of a closed
    connection are freed by reference counting except their cycles, which `reclaim()`
    frees, RECLAIM_SECONDS after a connection ended (one reclaim for every connection
    ended meanwhile): `gc.unfreeze()`, one full collection, `gc.freeze()` again."""

    RECLAIM_SECONDS = 30.0

    def __init__(self) -> None:
        self.closed = 0  # connections closed since the last reclaim
        self.reclaims = 0
        self._due: Optional[asyncio.TimerHandle] = None
        self._due_loop: Optional[asyncio.AbstractEventLoop] = None

    def loaded(self) -> None:
        """A target's connection is loaded: freeze what survives a young collection."""
        gc.collect(1)
        gc.freeze()

    def ended(self) -> None:
        """A target's connection ended: its cycles wait for the next reclaim."""
        self.closed += 1
        loop = asyncio.get_running_loop()
        if self._due is None or self._due_loop is not loop:  # none, or a former loop's
            self._due_loop = loop
            self._due = loop.call_later(self.RECLAIM_SECONDS, self.reclaim)

    def reclaim(self) -> None:
        """Frees the cycles of the connections closed since the last reclaim."""
        if self._due is not None:
            self._due.cancel()
            self._due = None
        if not self.closed:
            return
        self.closed = 0
        self.reclaims += 1
        gc.unfreeze()
        gc.collect()
        gc.freeze()


FROZEN = FrozenState()
_HOST = (r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
         r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]{2,45}\])")
_TARGET = re.compile(rf"({_HOST})(?::([0-9]{{1,5}}))?")


def normalize_target(raw: str) -> Optional[str]:
    """`HOST[:PORT]` as `host:port` (Moonraker's port 7125 when none), or None when it is
    anything else (a scheme, a path, credentials, a bad port): a scraper picks no URL."""
    if len(raw) > 300:
        return None
    match = _TARGET.fullmatch(raw.strip())
    if match is None:
        return None
    port = int(match.group(2) or DEFAULT_PORT)
    if not 0 < port < 65536:
        return None
    return f"{match.group(1).lower()}:{port}"


class TargetSpec:
    """How to reach one target: `address` (HOST:PORT), `name` (the printer label; None:
    Klippy's host name), `tls` (wss/https, certificates verified against the system's CAs
    or `ca_file`), and its credentials."""

    def __init__(self, address: str, name: Optional[str] = None, tls: bool = False,
                 ca_file: Optional[str] = None,
                 credentials: Optional[Credentials] = None) -> None:
        self.address = address
        self.name = name
        self.tls = tls
        self.ca_file = ca_file
        self.credentials = credentials or Credentials()

    def settings(self) -> Tuple[Any, ...]:
        """What a connection depends on (a change reconnects): address, name, TLS, CA
        file and the credential files' names."""
        c = self.credentials
        return (self.address, self.name, self.tls, self.ca_file, c.api_key_file, c.username,
                c.password_file)

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        """The client TLS context of a `tls` target (TLS 1.2 at least, certificate and
        host name verified), None otherwise."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx


class Limits:
    """Per-exporter bounds and timings (see the command line options and the config
    file); `max_entries` and `max_string` are each target's memory bound (Bounds)."""

    def __init__(self, connect_timeout: float = 5.0, request_timeout: float = 10.0,
                 max_message_size: int = 8 << 20, idle_seconds: float = 600.0,
                 max_entries: int = 5000, max_string: int = 4096) -> None:
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_message_size = max_message_size
        self.idle_seconds = idle_seconds
        self.max_entries = max_entries
        self.max_string = max_string


class Target:
    """A printer the exporter probes (see the module docstring)."""

    def __init__(self, spec: TargetSpec, version: str, limits: Limits) -> None:
        self.spec = spec
        self.version = version
        self.limits = limits
        self.renderer: Optional[Renderer] = None  # set while connected and loaded
        self.host: Optional[RemoteHost] = None
        self.failure: Optional[ProbeFailure] = None  # why it is not connected (last)
        self.last_probe = time.monotonic()
        self.connections = 0
        self.requests = 0  # requests of closed connections (see requests_sent)
        self.probes = 0
        # what the memory bound left out, over every connection (the count, the logs)
        self.bounds = Bounds(limits.max_entries, limits.max_string, spec.address)
        self._connection: Optional[Connection] = None
        self._loaded = asyncio.Event()
        self._wake = asyncio.Event()  # a probe arrived (cuts a back-off short)
        # set (and replaced) at each connection attempt's outcome: loaded, or failed
        self._outcome = asyncio.Event()
        self._attempt = 0  # failed connections in a row
        self._task: Optional["asyncio.Task[None]"] = None

    # ----- lifecycle -----
    def touch(self) -> None:
        """A probe asks for this target: connect unless connected or connecting."""
        self.last_probe = time.monotonic()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Closes the connection and stops reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        await wait_ended(task)

    def idle(self) -> bool:
        """Whether nobody probed the target for idle_seconds."""
        return time.monotonic() - self.last_probe > self.limits.idle_seconds

    async def _run(self) -> None:
        try:
            while not self.idle():
                try:
                    await self._session()
                except ProbeFailure as failure:
                    self._failed(failure)
                except RpcError as e:
                    self._failed(ProbeFailure("auth", "Moonraker refused the credentials "
                                                      "(or needs some)")
                                 if e.refused_credentials()
                                 else ProbeFailure("moonraker_error", str(e)))
                if self.idle():
                    break
                self._attempt += 1
                delay = RETRY_SECONDS[min(self._attempt, len(RETRY_SECONDS)) - 1]
                # A probe cuts the wait short (after the first second): Prometheus asks
                # every few seconds at most, and a printer back from a restart is then
                # served at the next probe.
                self._wake.clear()
                await asyncio.sleep(min(delay, RETRY_SECONDS[0]))
                await wait_event(self._wake, delay - RETRY_SECONDS[0])
        finally:
            self._loaded.clear()
        log.info("%s: not probed for %.0f s, disconnected", self.spec.address,
                 self.limits.idle_seconds)

    def _failed(self, failure: ProbeFailure) -> None:
        if self.failure is None or (failure.reason, failure.detail) != (
                self.failure.reason, self.failure.detail):
            log.warning("%s: %s (%s)", self.spec.address, failure.reason, failure.detail)
        self.failure = failure
        self._settle()

    def _settle(self) -> None:
        """Wakes the probes waiting for the outcome of a connection attempt."""
        self._outcome.set()
        self._outcome = asyncio.Event()

    async def _session(self) -> None:
        """One connection: open, load, serve until it closes or the target goes idle."""
        spec, limits = self.spec, self.limits
        host_box: list = []

        def notify(method: str, params: object) -> None:
            if host_box:
                host_box[0].notify(method, params)

        def latest(method: str, raw: str) -> None:
            if host_box:
                host_box[0].latest(method, raw)

        turn = _load_turn()
        await turn.acquire()
        try:
            connection = await connect(
                spec.address, spec.credentials, notify, tls=spec.tls,
                ssl_ctx=spec.ssl_context(), connect_timeout=limits.connect_timeout,
                request_timeout=limits.request_timeout,
                max_message_size=limits.max_message_size, bounds=self.bounds,
                on_latest=latest)
        except BaseException:
            turn.release()
            raise
        loading = True
        self.connections += 1
        self._connection = connection
        host = RemoteHost(connection, spec.address.rsplit(":", 1)[0])
        host_box.append(host)
        renderer = Renderer(host, self.version, spec.name)
        try:
            await host.load()
            await renderer.start()
            await host.announce()
            loading = False
            turn.release()
            self.host, self.renderer = host, renderer
            self.failure = None
            self._attempt = 0
            self._loaded.set()
            self._settle()
            FROZEN.loaded()
            log.info("%s: connected (Moonraker %s, Klippy %s)", spec.address,
                     host.info.get("moonraker_version"), host.klippy_state()[1])
            while not await wait_event(connection.closed,
                                       max(1.0, self.limits.idle_seconds / 4)):
                if self.idle():
                    break
            if connection.failure is not None and connection.closed.is_set():
                raise connection.failure
        except (ProbeFailure, RpcError):
            raise
        except asyncio.CancelledError:
            raise
        except Exception as e:
            raise classify(e) from None
        finally:
            if loading:
                turn.release()
            self._loaded.clear()
            self.renderer = self.host = None
            self.requests += connection.requests
            self._connection = None
            await renderer.close()
            await host.close()
            await connection.close()
            FROZEN.ended()

    # ----- probes -----
    def requests_sent(self) -> int:
        """JSON-RPC requests sent to this target so far."""
        current = self._connection
        return self.requests + (current.requests if current is not None else 0)

    def data_age(self) -> Optional[float]:
        """Seconds since Moonraker last sent anything (None: not connected)."""
        host = self.host
        if host is None or host.updated is None:
            return None
        return time.monotonic() - host.updated

    async def probe(self, modules: Sequence[str], timeout: float) -> str:
        """This target's families (probe_success 1), or probe_success 0 and the reason
        when it is not connected: the reason of the connection attempt under way or woken
        by this probe, or "connecting" when that takes longer than `timeout` seconds."""
        started = time.monotonic()
        self.probes += 1
        outcome = self._outcome
        self.touch()
        if not self._loaded.is_set():
            # the outcome of the attempt under way, or of the one this probe wakes
            await wait_event(outcome, timeout)
        connection = self._connection
        closed = None
        if connection is not None and self._loaded.is_set():
            # what Moonraker sent before this probe, in a batch not yet read (client's
            # BATCH_BYTES): a shutdown, disconnect or websocket close among it
            await connection.drain(max(0.0, timeout - (time.monotonic() - started)) / 2)
            if connection.closed.is_set():  # before the session ends and says so
                closed = connection.failure or ProbeFailure("closed", "connection closed")
        renderer = self.renderer
        body = ""
        age = self.data_age()
        stale = age is not None and age > STALE_SECONDS
        host = self.host
        if renderer is not None and host is not None and self._loaded.is_set() and not stale \
                and closed is None:
            host.flush()
            body = renderer.render(modules)
        failure = None if body else "timeout" if stale else (
            closed.reason if closed else self.failure.reason if self.failure else "connecting")
        success = Family(metrics.PROBE_SUCCESS)
        success.add(0.0 if failure else 1.0)
        families = [success]
        if failure:
            reason = Family(metrics.PROBE_FAILURE)
            reason.add(1.0, failure)
            families.append(reason)
        host = self.host
        if host is not None and host.unavailable and not failure:
            errors = Family(metrics.PROBE_SOURCE_ERROR)
            for method, error in sorted(host.unavailable.items()):
                errors.add(1.0, method, error)
            families.append(errors)
        if age is not None and not failure:
            f = Family(metrics.PROBE_DATA_AGE)
            f.add(age)
            families.append(f)
        duration = Family(metrics.PROBE_DURATION)
        duration.add(time.monotonic() - started)
        families.append(duration)
        return body + render_families(families)
