"""The collector contract: one collector per source, selected by its module name."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

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
