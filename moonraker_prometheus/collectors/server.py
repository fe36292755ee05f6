"""Moonraker itself: components, versions, warnings (Go module `server_info`)."""
from __future__ import annotations

from typing import Any, List

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector


class ServerCollector(Collector):
    """Moonraker's loaded and failed components, versions and current warnings."""

    name = "server"
    metrics = catalogue.SERVER

    def render(self) -> str:
        c = catalogue
        server: Any = self.server
        families: List[Family] = []
        f = Family(c.COMPONENT)
        for name in list(getattr(server, "components", {}) or {}):
            f.add(1.0, str(name))
        families.append(f)
        f = Family(c.COMPONENT_FAILED)
        for name in list(getattr(server, "failed_components", []) or []):
            f.add(1.0, str(name))
        families.append(f)
        version = None
        if hasattr(server, "get_app_args"):
            version = server.get_app_args().get("software_version")
        if isinstance(version, str) and version:
            f = Family(c.MOONRAKER_VERSION)
            f.add(1.0, version)
            families.append(f)
        api = server.get_api_version() if hasattr(server, "get_api_version") else None
        if isinstance(api, (list, tuple)) and api:
            f = Family(c.API_VERSION)
            f.add(1.0, ".".join(str(v) for v in api))
            families.append(f)
        warnings = getattr(server, "warnings", None)
        if isinstance(warnings, (dict, list)):
            f = Family(c.MOONRAKER_WARNINGS)
            f.add(float(len(warnings)))
            families.append(f)
        return render_families(families)
