"""One Klipper object, one label value: a sensor driver carries its section's label.

Klipper names a sensor driver object after the last word of the section using it:
`[temperature_sensor Raspberry Pi]` with `sensor_type: temperature_host` creates
`temperature_sensor Raspberry Pi` and `temperature_host Pi`. Both feed families about the
same sensor, so both must say `sensor="Raspberry Pi"`.
"""
from __future__ import annotations

import asyncio

import pytest

from moonraker_prometheus.catalogue.printer import BINDINGS
from moonraker_prometheus.collectors.printer import (Plan, PrinterCollector, PrinterState,
                                                     sensor_owners)
from simulator.moonraker_standin import FakeApis, FakeServer, klippy_ready, printer_components
from tests.scrape import parse, value

pytestmark = pytest.mark.unit

# configfile.config as Klippy reports it: section names as written, raw option text
CONFIG = {
    "temperature_sensor Raspberry Pi": {"sensor_type": "temperature_host"},
    "temperature_sensor chamber env": {"sensor_type": "BME280", "i2c_address": "119"},
    "temperature_fan case pi": {"sensor_type": "Generic 3950", "sensor_pin": "PA1"},
    "temperature_sensor hotends max": {"sensor_type": "temperature_combined",
                                       "sensor_list": "extruder, extruder1"},
    "temperature_sensor solo": {"sensor_type": "LM75"},
    "heater_bed": {"sensor_type": "EPCOS 100K B57560G104F"},
}
OBJECTS = ["temperature_sensor Raspberry Pi", "temperature_host Pi",
           "temperature_sensor chamber env", "bme280 env", "temperature_fan case pi",
           "temperature_sensor hotends max", "temperature_combined max",
           "temperature_sensor solo", "lm75 solo", "heater_bed", "configfile"]
STATUS = {
    "temperature_sensor Raspberry Pi": {"temperature": 48.0, "measured_min_temp": 47.0,
                                        "measured_max_temp": 49.0},
    "temperature_host Pi": {"temperature": 48.0},
    "temperature_sensor chamber env": {"temperature": 25.0},
    "bme280 env": {"temperature": 25.0, "humidity": 40.0, "pressure": 1000.0},
    "temperature_combined max": {"temperature": 210.0},
}


def labels_of(series, family: str, key: str):
    return sorted(dict(labels)[key] for name, labels in series if name == family)


def test_sensor_drivers_take_the_label_of_their_section():
    owners = sensor_owners(OBJECTS, CONFIG, BINDINGS)
    # the pi of "temperature_fan case pi" is a thermistor: not the temperature_host's owner
    assert owners == {"temperature_host Pi": "Raspberry Pi", "bme280 env": "chamber env",
                      "temperature_combined max": "hotends max", "lm75 solo": "solo"}
    series = parse(PrinterState(Plan(OBJECTS, BINDINGS, owners), STATUS).render())
    assert labels_of(series, "klipper_temperature_host_temperature_celsius", "sensor") == [
        "Raspberry Pi"]
    assert "Raspberry Pi" in labels_of(series, "klipper_temperature_sensor_temperature",
                                       "sensor")
    assert labels_of(series, "klipper_sensor_relative_humidity_ratio", "sensor") == [
        "chamber env"]
    assert value(series, "klipper_temperature_combined_temperature_celsius",
                 sensor="hotends max") == 210.0


def test_an_owner_that_cannot_be_told_apart_keeps_the_object_name():
    config = {"temperature_sensor a pi": {"sensor_type": "temperature_host"},
              "temperature_fan b pi": {"sensor_type": "temperature_host"}}
    assert sensor_owners(["temperature_host pi"], config, BINDINGS) == {}
    assert sensor_owners(["temperature_host pi"], None, BINDINGS) == {}


class ConfigApis(FakeApis):
    def __init__(self, objects, status, config) -> None:
        super().__init__(objects, status)
        self.config = config
        self.queries = []

    async def query_objects(self, objects, default=None):
        self.queries.append(dict(objects))
        return {"configfile": {"config": self.config}}


def test_collector_reads_the_config_once_per_ready_for_sensor_drivers():
    apis = ConfigApis(OBJECTS, STATUS, CONFIG)
    server = FakeServer(printer_components(apis))
    collector = PrinterCollector(server)
    asyncio.run(klippy_ready(server))
    series = parse(collector.render())
    assert labels_of(series, "klipper_temperature_host_temperature_celsius", "sensor") == [
        "Raspberry Pi"]
    assert apis.queries == [{"configfile": ["config"]}]
    collector.render()
    assert len(apis.queries) == 1  # never per scrape
