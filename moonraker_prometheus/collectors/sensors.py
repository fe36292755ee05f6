"""Moonraker's own [sensor NAME] sections (the sensor component)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add, lookup

if TYPE_CHECKING:
    from moonraker.server import Server


class SensorsCollector(Collector):
    """Values of Moonraker's [sensor NAME] sections (e.g. MQTT sensors), their units and errors."""

    name = "sensors"
    metrics = catalogue.SENSORS

    def __init__(self, server: "Server") -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        component = lookup(self.server, "sensor")
        if component is None:
            return ""
        sensors: Dict[str, Any] = getattr(component, "sensors", None) or {}
        # A sensor's measurements dict and error state change in place: the key holds them.
        key = tuple((str(sid), str(getattr(sensor, "name", sid)), str(getattr(sensor, "type", "")),
                     tuple((getattr(sensor, "last_measurements", None) or {}).items()),
                     tuple(getattr(sensor, "param_info", None) or ()),
                     getattr(sensor, "error_state", None))
                    for sid, sensor in list(sensors.items()))
        return self._cache.text(key, lambda: self._render(key))

    @staticmethod
    def _render(sensors: Tuple[Tuple[str, str, str, Tuple[Any, ...], Tuple[Any, ...], Any], ...]
                ) -> str:
        c = catalogue
        info = Family(c.SENSOR)
        values = Family(c.SENSOR_VALUE)
        params = Family(c.SENSOR_PARAMETER)
        errors = Family(c.SENSOR_ERROR)
        for sid, name, kind, measurements, param_info, error in sensors:
            info.add(1.0, sid, name, kind)
            for parameter, value in measurements:
                add(values, value, sid, str(parameter))
            for param in param_info:
                if isinstance(param, dict) and "name" in param:
                    params.add(1.0, sid, str(param["name"]), str(param.get("units", "")))
            if isinstance(error, str) and error:
                errors.add(1.0, sid, error)
        families: List[Family] = [info, values, params, errors]
        return render_families(families)
