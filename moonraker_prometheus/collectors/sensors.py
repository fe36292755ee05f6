"""Moonraker's own [sensor NAME] sections (the sensor component)."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import Host, Sensor

if TYPE_CHECKING:
    from moonraker.server import Server


class SensorsCollector(Collector):
    """Values of Moonraker's [sensor NAME] sections (e.g. MQTT sensors), their units and errors."""

    name = "sensors"
    metrics = catalogue.SENSORS

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self._cache = RenderCache()

    def render(self) -> str:
        key = self.host.sensors()
        if key is None:
            return ""
        return self._cache.text(key, lambda: self._render(key))

    @staticmethod
    def _render(sensors: Tuple[Sensor, ...]) -> str:
        c = catalogue
        info = Family(c.SENSOR)
        values = Family(c.SENSOR_VALUE)
        params = Family(c.SENSOR_PARAMETER)
        errors = Family(c.SENSOR_ERROR)
        for sid, name, kind, measurements, param_info, error in sensors:
            info.add(1.0, sid, name, kind)
            for parameter, value in measurements:
                add_if_number(values, value, sid, str(parameter))
            for param in param_info:
                if isinstance(param, dict) and "name" in param:
                    params.add(1.0, sid, str(param["name"]), str(param.get("units", "")))
            if isinstance(error, str) and error:
                errors.add(1.0, sid, error)
        families: List[Family] = [info, values, params, errors]
        return render_families(families)
