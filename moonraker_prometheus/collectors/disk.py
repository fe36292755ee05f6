"""Disk usage of the gcodes root, measured off the event loop (Go module `directory_info`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, PeriodicRefresh, RenderCache
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server

REFRESH_INTERVAL = 30.0
MAX_AGE = 300.0


class DiskCollector(Collector):
    """File system of the gcodes folder, measured in a thread every 30 s and on changes."""

    name = "disk"
    metrics = catalogue.DISK

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self.refresher = PeriodicRefresh(self.host, "disk usage", self.host.disk_usage,
                                         REFRESH_INTERVAL, max_age=MAX_AGE)
        self.host.register_event_handler("file_manager:filelist_changed",
                                         self._on_files_changed)
        self._cache = RenderCache()

    def _on_files_changed(self, *_: Any) -> None:
        self.refresher.trigger()

    async def start(self) -> None:
        self.refresher.start()

    async def close(self) -> None:
        await self.refresher.close()

    def render(self) -> str:
        usage = self.refresher.current()
        if usage is None:
            return ""
        text = self._cache.text(usage, lambda: self._render(usage))
        age = self.refresher.age()
        if age is not None:
            f = Family(catalogue.DISK_AGE)
            f.add(age)
            text += f.render()
        return text

    @staticmethod
    def _render(usage: Tuple[int, int, int]) -> str:
        c = catalogue
        families: List[Family] = []
        for metric, value in zip((c.DISK_TOTAL, c.DISK_USED, c.DISK_AVAILABLE), usage):
            f = Family(metric)
            f.add(float(value))
            families.append(f)
        return render_families(families)
