"""Temperatures below 0 °C on the live simulated printer (issue 18).

A sensor in an unheated garage reads -3 °C, then -1 °C, from Klippy's start: real Klippy
keeps its start value 0 as the sensor's measured_max_temp, and the component serves the
lowest reading and no highest one, never that 0.0. Once a reading goes above 0, the
highest is served. The simulated MCU holds the thermistor at a temperature (control op
`hold`, simulator/README.md); a Klippy RESTART makes the extremes start again while the
garage stays cold.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from simulator import wait_for
from tests.scrape import parse, value

KLIPPY_EXTRA_CONFIG = """
[temperature_sensor garage]
sensor_type: Generic 3950
sensor_pin: PC12
min_temp: -40
max_temp: 60
"""
GARAGE = "temperature_sensor garage"
FAMILY = "klipper_temperature_sensor_"
TOLERANCE = 0.3  # °C: the simulated ADC's resolution near -3 °C, oversampled


def garage_status(klippy) -> Optional[Dict[str, Any]]:
    """The garage sensor's status from Klippy, or None while Klippy restarts."""
    try:
        return klippy.query(GARAGE)[GARAGE]
    except Exception:  # the API socket is down during a RESTART
        return None


def wait_klippy_reads(klippy, temp: float, timeout: float = 60.0) -> Dict[str, Any]:
    def reads():
        status = garage_status(klippy)
        return status if status and abs(status["temperature"] - temp) < TOLERANCE else None
    return wait_for(reads, timeout, 0.2, f"Klippy reading {temp} °C in the garage")


def served(moonraker, field: str) -> Optional[float]:
    return value(parse(moonraker.metrics().text), FAMILY + field, sensor="garage")


def wait_served(moonraker, field: str, temp: float, timeout: float = 20.0) -> None:
    def near():
        v = served(moonraker, field)
        return v is not None and abs(v - temp) < TOLERANCE
    wait_for(near, timeout, 0.2, f"{FAMILY}{field} near {temp}")


def test_a_sensor_below_zero_since_klippy_started_serves_no_highest_reading(klippy, moonraker):
    klippy.mcu("mcu").control(op="hold", sensor=GARAGE, temp=-3.0)
    klippy.gcode("RESTART")  # new printer objects: the extremes start again, in the cold

    def restarted_cold():
        status = garage_status(klippy)
        return status if status and status["measured_max_temp"] == 0.0 \
            and abs(status["measured_min_temp"] + 3.0) < TOLERANCE else None
    wait_for(restarted_cold, 60, 0.2, "Klippy restarted with the garage at -3 °C")
    klippy.mcu("mcu").control(op="hold", sensor=GARAGE, temp=-1.0)
    status = wait_klippy_reads(klippy, -1.0)
    # Klipper's own figures: the lowest reading, and its start value 0 as the highest
    assert status["measured_max_temp"] == 0.0
    low = status["measured_min_temp"]
    assert abs(low + 3.0) < TOLERANCE

    wait_served(moonraker, "temperature", -1.0)
    assert served(moonraker, "measured_min_temp") == low
    assert served(moonraker, "measured_max_temp") is None

    klippy.mcu("mcu").control(op="hold", sensor=GARAGE, temp=4.0)
    wait_klippy_reads(klippy, 4.0)
    wait_served(moonraker, "measured_max_temp", 4.0)
    assert served(moonraker, "measured_min_temp") == low
