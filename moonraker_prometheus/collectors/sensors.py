"""Moonraker's own [sensor NAME] sections (the sensor component)."""
from __future__ import annotations

from typing import Any, Dict, List

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, add, lookup


class SensorsCollector(Collector):
    """Values of Moonraker's [sensor NAME] sections (e.g. MQTT sensors), their units and errors."""

    name = "sensors"
    metrics = catalogue.SENSORS

    def render(self) -> str:
        c = catalogue
        component = lookup(self.server, "sensor")
        if component is None:
            return ""
        sensors: Dict[str, Any] = getattr(component, "sensors", None) or {}
        info = Family(c.SENSOR)
        values = Family(c.SENSOR_VALUE)
        params = Family(c.SENSOR_PARAMETER)
        errors = Family(c.SENSOR_ERROR)
        for sid, sensor in list(sensors.items()):
            sid = str(sid)
            info.add(1.0, sid, str(getattr(sensor, "name", sid)),
                     str(getattr(sensor, "type", "")))
            measurements: Dict[str, Any] = getattr(sensor, "last_measurements", None) or {}
            for parameter, value in measurements.items():
                add(values, value, sid, str(parameter))
            for param in getattr(sensor, "param_info", None) or ():
                if isinstance(param, dict) and "name" in param:
                    params.add(1.0, sid, str(param["name"]), str(param.get("units", "")))
            error = getattr(sensor, "error_state", None)
            if isinstance(error, str) and error:
                errors.add(1.0, sid, error)
        families: List[Family] = [info, values, params, errors]
        return render_families(families)
