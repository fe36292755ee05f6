"""Host facts and system services, from the machine component (Go module `system_info`)."""
from __future__ import annotations

from typing import Any, Dict, List

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, add, lookup


class SystemCollector(Collector):
    """Host CPU count, OS, Python version and the services Moonraker manages (machine)."""

    name = "system"
    metrics = catalogue.SYSTEM

    def render(self) -> str:
        c = catalogue
        machine = lookup(self.server, "machine")
        if machine is None:
            return ""
        info: Dict[str, Any] = machine.get_system_info() or {}
        families: List[Family] = []
        f = Family(c.SYSTEM_CPU_COUNT)
        add(f, (info.get("cpu_info") or {}).get("cpu_count"))
        families.append(f)
        available = Family(c.SERVICE_AVAILABLE)
        state = Family(c.SERVICE_STATE)
        sub_state = Family(c.SERVICE_SUB_STATE)
        services: Dict[str, Any] = info.get("service_state") or {}
        for service in info.get("available_services") or ():
            available.add(1.0, str(service))
        for service, svc in services.items():
            if not isinstance(svc, dict):
                continue
            if isinstance(svc.get("active_state"), str):
                state.add(1.0, service, svc["active_state"])
            if isinstance(svc.get("sub_state"), str):
                sub_state.add(1.0, service, svc["sub_state"])
        families += [available, state, sub_state]
        dist = info.get("distribution") or {}
        name = dist.get("name") if isinstance(dist, dict) else None
        if isinstance(name, str):
            f = Family(c.SYSTEM_OS)
            f.add(1.0, name, str(dist.get("kernel_version", "")))
            families.append(f)
        python = info.get("python") or {}
        version = python.get("version") if isinstance(python, dict) else None
        if isinstance(version, (list, tuple)) and len(version) >= 3:
            f = Family(c.SYSTEM_PYTHON)
            f.add(1.0, ".".join(str(v) for v in version[:3]))
            families.append(f)
        return render_families(families)
