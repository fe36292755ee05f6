"""The collector contract: one collector per source, selected by its module name."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Optional, Sequence

from ..catalogue.spec import Metric
from ..exposition import Family, render_families

if TYPE_CHECKING:
    from moonraker.server import Server


class Collector:
    """Produces the families of one source from in-memory state.

    `render()` runs on Moonraker's event loop during a scrape, so it must never await,
    block or do I/O: a collector whose data needs I/O refreshes it in the background
    (`start()`) and renders the cached result.
    """

    name: str = ""
    metrics: Sequence[Metric] = ()

    def __init__(self, server: "Server") -> None:
        self.server = server

    def collect(self) -> Iterable[Family]:
        raise NotImplementedError

    def render(self) -> str:
        return render_families(self.collect())

    async def start(self) -> None:
        """Start background work; called once Moonraker's components are initialised."""

    async def close(self) -> None:
        """Stop background work; called when Moonraker shuts down."""


class PeriodicRefresh:
    """A value refreshed in the background and read from memory by `render()`.

    `fetch` is a coroutine function (blocking work goes through Moonraker's `run_in_thread`). It runs at
    `start()`, every `interval` seconds and whenever `trigger()` is called (e.g. from a
    Moonraker event), never on the scrape path. A failed fetch keeps the last value and is
    logged once per distinct cause; `age()` says how old the last good value is. A fetch
    that returns None has nothing to report (its source is not configured) and changes
    nothing.
    """

    def __init__(self, server: "Server", name: str,
                 fetch: Callable[[], Awaitable[Any]], interval: float,
                 max_age: Optional[float] = None) -> None:
        self.server = server
        self.name = name
        self.fetch = fetch
        self.interval = interval
        self.max_age = max_age  # older values are dropped (None: kept forever)
        self.value: Any = None
        self.updated: Optional[float] = None  # time.monotonic() of the last good fetch
        self.ok: Optional[bool] = None  # outcome of the last fetch (None: none finished yet)
        self.fetches = 0
        self._wake: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._last_error = ""

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = self.server.get_event_loop().create_task(self._run())

    def trigger(self) -> None:
        """Refresh as soon as possible (coalesces with a refresh already pending)."""
        if self._wake is not None:
            self._wake.set()

    async def refresh(self) -> None:
        """Fetch once now (also used by tests)."""
        try:
            value = await self.fetch()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self.ok = False
            cause = f"{type(e).__name__}: {e}"
            if cause != self._last_error:
                self._last_error = cause
                logging.info(f"prometheus: refreshing {self.name} failed: {cause}")
        else:
            if value is None:  # nothing to report (source not configured): no outcome
                return
            self.value = value
            self.updated = time.monotonic()
            self.ok = True
            self._last_error = ""
        finally:
            self.fetches += 1

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            await self.refresh()
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except asyncio.TimeoutError:
                pass

    def age(self) -> Optional[float]:
        """Seconds since the last good fetch (None: never fetched)."""
        if self.updated is None:
            return None
        return time.monotonic() - self.updated

    def current(self) -> Any:
        """The last good value, or None when there is none or it is older than max_age."""
        if self.updated is None:
            return None
        if self.max_age is not None and time.monotonic() - self.updated > self.max_age:
            return None
        return self.value

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass


def lookup(server: "Server", name: str) -> Any:
    """A Moonraker component, or None when it is not loaded (optional components)."""
    try:
        return server.lookup_component(name, None)
    except Exception:
        return None


def number(value: Any) -> Optional[float]:
    """A number as float; None for anything else (bool, None, text): absent, never 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def add(family: Family, value: Any, *labels: str) -> None:
    """Add a sample only when Moonraker knows the value."""
    v = number(value)
    if v is not None:
        family.add(v, *labels)
