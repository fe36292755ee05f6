"""The collector contract: one collector per source, selected by its module name."""
from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import (TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Dict, Optional,
                    Sequence, Set, Union)

from ..catalogue.spec import Metric
from ..catalogue.values import as_number
from ..exposition import Family
from ..tasks import wait_ended, wait_event
from .host import Host, host_of

if TYPE_CHECKING:
    from moonraker.server import Server


class Collector(abc.ABC):
    """Produces the families of one source, `metrics`, selected by its module `name`.

    The contract is `render()`: the collector's families in the text format (written
    with `exposition.Family`), from in-memory state only. It runs on Moonraker's event
    loop during a scrape, so it must never await, block or do I/O: a collector whose data
    needs I/O refreshes it in the background (`PeriodicRefresh`, started by `start()`)
    and renders the cached result; one whose text changes less often than it is scraped
    keeps it in a `RenderCache`. An exception costs only this collector's families (the
    component reports it as `klipper_exporter_collector_success` 0 and logs it).
    """

    name: str = ""
    metrics: Sequence[Metric] = ()
    # True for a collector whose re-render can take hundreds of microseconds and that says
    # so: it implements stale() and render_ahead(), and the component has it render ahead
    # of a scrape (see render_stale_ahead); the others are never asked.
    renders_ahead: ClassVar[bool] = False

    def __init__(self, server: Union["Server", Host]) -> None:
        """`server`: the Moonraker it reads, as a `Host` (see host.py), or Moonraker's
        `Server` (read in process through `MoonrakerHost`)."""
        self.host = host_of(server)

    @abc.abstractmethod
    def render(self) -> str:
        """The collector's families in the text exposition format ("" when none)."""

    def stale(self) -> bool:
        """Whether the next render() has real work to do (text to re-render, beyond cache
        lookups and a few fresh samples). The component then has render_ahead() do that
        work first, in loop callbacks of their own (see render_stale_ahead). Asked only of
        collectors that declare `renders_ahead`."""
        return False

    def render_ahead(self, deadline_ns: int) -> None:
        """Does the work stale() announces, or part of it: at least one unit, then more
        until `time.perf_counter_ns()` passes `deadline_ns`. Called only while stale() is
        True; by default the whole render()."""
        self.render()

    async def start(self) -> None:
        """Start background work; called once Moonraker's components are initialised."""

    async def close(self) -> None:
        """Stop background work; called when Moonraker shuts down."""


# Rounds of rendering ahead per scrape: pushes keep coming (every 250 ms), and whatever they
# make stale after the last round is rendered by render() itself.
_AHEAD_ROUNDS = 3


async def render_stale_ahead(collectors: Sequence[Collector], slice_ns: int
                             ) -> Dict[str, int]:
    """Has each stale collector (see Collector.stale) re-render ahead of a scrape's render(),
    in slices of about `slice_ns` nanoseconds, each in a loop callback of its own: the first
    not in the callback that parsed the request, the last not in the one that renders and
    writes the response (which finds nothing stale: a push that arrived meanwhile is
    rendered ahead too), and none so long that Klippy's traffic or a web UI waits on it.
    Returns the nanoseconds each collector (by name) spent, part of its duration. A
    render_ahead() that raises ends that collector's turn: its render() meets the error
    again and the component reports it."""
    spent: Dict[str, int] = {}
    clock = time.perf_counter_ns
    failed: Set[str] = set()
    stale = [c for c in collectors if c.stale()]
    for _ in range(_AHEAD_ROUNDS):
        if not stale:
            break
        for collector in stale:
            while collector.stale():
                await asyncio.sleep(0)
                start = clock()
                try:
                    collector.render_ahead(start + slice_ns)
                except Exception:
                    failed.add(collector.name)
                    break
                finally:
                    spent[collector.name] = spent.get(collector.name, 0) + clock() - start
        await asyncio.sleep(0)
        # What a push made stale during that last turn, since the response is rendered in
        # the same callback as this check.
        stale = [c for c in collectors if c.name not in failed and c.stale()]
    return spent


class PeriodicRefresh:
    """A value refreshed in the background and read from memory by `render()`.

    `fetch` is a coroutine function (blocking work goes through Moonraker's `run_in_thread`;
    `server`: anything with `get_event_loop()`, Moonraker's Server or a Host). It runs at
    `start()`, every `interval` seconds and whenever `trigger()` is called (e.g. from a
    Moonraker event), never on the scrape path. A failed fetch keeps the last value and is
    logged once per distinct cause; `age()` says how old the last good value is. A fetch
    that returns None has nothing to report (its source is not configured) and changes
    nothing.
    """

    def __init__(self, server: Union["Server", Host], name: str,
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

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            await self.refresh()
            await wait_event(self._wake, self.interval)

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
        await wait_ended(task)


_NOTHING = object()


class RenderCache:
    """Text rendered once and served until its inputs change: the one caching scheme of
    the collectors.

    `text(key, render)` calls `render()` (which returns text) only when `key` differs from
    the key the cached text was rendered for (the same object, or an equal one, is a hit:
    `is`, then `==`), when `invalidate()` was called since, or when the text is older than
    `max_age` seconds (None: no age limit). `render()` must depend on nothing `key` does
    not capture: a dict or list Moonraker replaces on every refresh can be the key itself,
    one it changes in place must be given as its values (a tuple). The key is held, so its
    identity cannot be reused.
    """

    __slots__ = ("max_age", "_key", "_text", "_rendered_at")

    def __init__(self, max_age: Optional[float] = None) -> None:
        self.max_age = max_age
        self._key: Any = _NOTHING
        self._text = ""
        self._rendered_at = 0.0

    def text(self, key: Any, render: Callable[[], str]) -> str:
        cached = self._key
        if (cached is key or (cached is not _NOTHING and cached == key)) and (
                self.max_age is None or time.monotonic() - self._rendered_at <= self.max_age):
            return self._text
        self._text = render()
        self._key = key
        if self.max_age is not None:
            self._rendered_at = time.monotonic()
        return self._text

    def invalidate(self) -> None:
        self._key = _NOTHING


def add_if_number(family: Family, value: Any, *labels: str) -> None:
    """`family.add(value, *labels)` (the same arguments, in the same order) when `value` is
    an int or float (catalogue.values.as_number: a bool is not); otherwise nothing, so a
    value Moonraker does not know (None, text) is absent, never 0. Family.add itself
    takes any number and raises on what float() refuses."""
    v = as_number(value)
    if v is not None:
        family.add(v, *labels)
