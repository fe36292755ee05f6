"""Disk usage of the gcodes root, measured off the event loop (Go module `directory_info`)."""
from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, PeriodicRefresh, RenderCache, lookup

if TYPE_CHECKING:
    from moonraker.server import Server

REFRESH_INTERVAL = 30.0
MAX_AGE = 300.0


class DiskCollector(Collector):
    """File system of the gcodes folder, measured in a thread every 30 s and on changes."""

    name = "disk"
    metrics = catalogue.DISK

    def __init__(self, server: "Server") -> None:
        super().__init__(server)
        self.refresher = PeriodicRefresh(server, "disk usage", self._fetch, REFRESH_INTERVAL,
                                         max_age=MAX_AGE)
        server.register_event_handler("file_manager:filelist_changed", self._on_files_changed)
        self._cache = RenderCache()

    def _gcodes_path(self) -> Optional[str]:
        fm = lookup(self.server, "file_manager")
        path = fm.get_directory("gcodes") if fm is not None else ""
        return path or None

    async def _fetch(self) -> Optional[Tuple[int, int, int]]:
        path = self._gcodes_path()
        if path is None:
            return None  # no gcodes root registered (yet): nothing to report
        usage = await self.server.get_event_loop().run_in_thread(shutil.disk_usage, path)
        return usage.total, usage.used, usage.free

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
