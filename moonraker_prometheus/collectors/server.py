"""Moonraker itself: components, versions, warnings (Go module `server_info`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache

if TYPE_CHECKING:
    from moonraker.server import Server


class ServerCollector(Collector):
    """Moonraker's loaded and failed components, versions and current warnings."""

    name = "server"
    metrics = catalogue.SERVER

    def __init__(self, server: "Server") -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        server: Any = self.server
        # Moonraker changes these lists and dicts in place: the key holds their contents.
        components = tuple(getattr(server, "components", {}) or {})
        failed = tuple(getattr(server, "failed_components", []) or [])
        version = None
        if hasattr(server, "get_app_args"):
            version = server.get_app_args().get("software_version")
        api = server.get_api_version() if hasattr(server, "get_api_version") else None
        warnings = getattr(server, "warnings", None)
        count = len(warnings) if isinstance(warnings, (dict, list)) else None
        key = (components, failed, version, api, count)
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
