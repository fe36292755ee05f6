"""Host facts and system services, from the machine component (Go module `system_info`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server


class SystemCollector(Collector):
    """Host CPU count, OS, Python version and the services Moonraker manages (machine)."""

    name = "system"
    metrics = catalogue.SYSTEM

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        info = self.host.system_info()
        if info is None:
            return ""
        # The machine component changes its system_info and service states in place: the
        # key holds what is rendered.
        services: Dict[str, Any] = info.get("service_state") or {}
        dist = info.get("distribution") or {}
        python = info.get("python") or {}
        key = ((info.get("cpu_info") or {}).get("cpu_count"),
               tuple(info.get("available_services") or ()),
               tuple((service, svc.get("active_state"), svc.get("sub_state"))
                     for service, svc in services.items() if isinstance(svc, dict)),
               (dist.get("name"), dist.get("kernel_version", "")) if isinstance(dist, dict)
               else None,
               python.get("version") if isinstance(python, dict) else None)
        return self._cache.text(key, lambda: self._render(*key))

    @staticmethod
    def _render(cpu_count: Any, available_services: Tuple[Any, ...],
                service_states: Tuple[Tuple[str, Any, Any], ...],
                distribution: Optional[Tuple[Any, Any]], python_version: Any) -> str:
        c = catalogue
        families: List[Family] = []
        f = Family(c.SYSTEM_CPU_COUNT)
        add_if_number(f, cpu_count)
        families.append(f)
        available = Family(c.SERVICE_AVAILABLE)
        state = Family(c.SERVICE_STATE)
        sub_state = Family(c.SERVICE_SUB_STATE)
        for service in available_services:
            available.add(1.0, str(service))
        for service, active_state, service_sub_state in service_states:
            if isinstance(active_state, str):
                state.add(1.0, service, active_state)
            if isinstance(service_sub_state, str):
                sub_state.add(1.0, service, service_sub_state)
        families += [available, state, sub_state]
        if distribution is not None and isinstance(distribution[0], str):
            f = Family(c.SYSTEM_OS)
            f.add(1.0, distribution[0], str(distribution[1]))
            families.append(f)
        if isinstance(python_version, (list, tuple)) and len(python_version) >= 3:
            f = Family(c.SYSTEM_PYTHON)
            f.add(1.0, ".".join(str(v) for v in python_version[:3]))
            families.append(f)
        return render_families(families)
