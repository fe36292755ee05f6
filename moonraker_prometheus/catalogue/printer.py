"""Families read from Klipper printer objects (the `printer` module).

Names and label keys of prometheus-klipper-exporter are kept (`compat=True`) so existing
dashboards work; new families follow Prometheus naming under `klipper_`.
"""
from __future__ import annotations

from .build import F, INFO, ObjectKind, bind
from .spec import state

EXTRUDER = ObjectKind("extruder", r"extruder\d*", label="extruder", whole_name=True)
HEATER_BED = ObjectKind("heater_bed", r"heater_bed")
WEBHOOKS = ObjectKind("webhooks", r"webhooks")

BINDINGS = (
    bind(
        EXTRUDER,
        F("temperature", "klipper_extruder_temperature",
          "Extruder temperature in degrees Celsius.", unit="celsius", compat=True),
        F("target", "klipper_extruder_target",
          "Extruder target temperature in degrees Celsius (0 when off).", unit="celsius",
          compat=True),
        F("power", "klipper_extruder_power",
          "Extruder heater PWM duty cycle, 0 to 1.", unit="ratio", compat=True),
    ),
    bind(
        HEATER_BED,
        F("temperature", "klipper_heater_bed_temperature",
          "Heated bed temperature in degrees Celsius.", unit="celsius", compat=True),
        F("target", "klipper_heater_bed_target",
          "Heated bed target temperature in degrees Celsius (0 when off).", unit="celsius",
          compat=True),
        F("power", "klipper_heater_bed_power",
          "Heated bed heater PWM duty cycle, 0 to 1.", unit="ratio", compat=True),
    ),
    bind(
        WEBHOOKS,
        F("state", "klipper_webhooks_state_info",
          "Klippy's own state as its webhooks object reports it.", type=INFO,
          labels=("state",), read=state, compat=True),
    ),
)
