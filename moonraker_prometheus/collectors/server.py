"""Moonraker itself: components, versions, warnings (Go module `server_info`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server


class ServerCollector(Collector):
    """Moonraker's loaded and failed components, versions and current warnings."""

    name = "server"
    metrics = catalogue.SERVER

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        key = self.host.server_info()
        return self._cache.text(key, lambda: self._render(*key))

    @staticmethod
    def _render(components: Tuple[Any, ...], failed: Tuple[Any, ...], version: Any,
                api: Any, warnings: Optional[int]) -> str:
        c = catalogue
        families: List[Family] = []
        f = Family(c.COMPONENT)
        for name in components:
            f.add(1.0, str(name))
        families.append(f)
        f = Family(c.COMPONENT_FAILED)
        for name in failed:
            f.add(1.0, str(name))
        families.append(f)
        if isinstance(version, str) and version:
            f = Family(c.MOONRAKER_VERSION)
            f.add(1.0, version)
            families.append(f)
        if isinstance(api, (list, tuple)) and api:
            f = Family(c.API_VERSION)
            f.add(1.0, ".".join(str(v) for v in api))
            families.append(f)
        if warnings is not None:
            f = Family(c.MOONRAKER_WARNINGS)
            f.add(float(warnings))
            families.append(f)
        return render_families(families)
