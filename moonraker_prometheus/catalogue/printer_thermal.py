"""Heaters, temperature sensors, environmental sensors and fans."""
from __future__ import annotations

from .build import F, ObjectKind, bind
from .readers import measured, nonzero, positive, scaled
from .units import CELSIUS, METERS, MILLIMETERS, OHMS, PASCALS, RATIO, RPM, SECONDS

EXTRUDER = ObjectKind("extruder", r"extruder\d*", label="extruder", whole_name=True)
HEATER_BED = ObjectKind("heater_bed", r"heater_bed")
HEATER_GENERIC = ObjectKind("heater_generic", r"heater_generic .+", label="heater")
TEMPERATURE_SENSOR = ObjectKind("temperature_sensor", r"temperature_sensor .+", label="sensor")
TEMPERATURE_PROBE = ObjectKind("temperature_probe", r"temperature_probe .+", label="sensor")
TEMPERATURE_FAN = ObjectKind("temperature_fan", r"temperature_fan .+", label="fan")
# Sensor drivers (sensor_type values from Klipper's and Kalico's add_sensor_factory calls):
# labelled like the section that uses them.
TEMPERATURE_HOST = ObjectKind("temperature_host", r"temperature_host .+", label="sensor",
                              sensor_types=("temperature_host",))
TEMPERATURE_COMBINED = ObjectKind(
    "temperature_combined", r"temperature_combined .+", label="sensor",
    sensor_types=("temperature_combined",))
BME280 = ObjectKind("bme280", r"bme280 .+", label="sensor", sensor_types=("bme280",))
HTU21D = ObjectKind("htu21d", r"htu21d .+", label="sensor",
                    sensor_types=("htu21d", "sht21", "si7013", "si7020", "si7021"))
SHT3X = ObjectKind("sht3x", r"sht3x .+", label="sensor", sensor_types=("sht3x",))
AHT10 = ObjectKind("aht10", r"aht10 .+", label="sensor",
                   sensor_types=("aht10", "aht1x", "aht2x", "aht3x"))
LM75 = ObjectKind("lm75", r"lm75 .+", label="sensor", sensor_types=("lm75",))
Z_THERMAL_ADJUST = ObjectKind("z_thermal_adjust", r"z_thermal_adjust")
FAN = ObjectKind("fan", r"fan")
FAN_GENERIC = ObjectKind("fan_generic", r"fan_generic .+", label="fan")
CONTROLLER_FAN = ObjectKind("controller_fan", r"controller_fan .+", label="fan")
HEATER_FAN = ObjectKind("heater_fan", r"heater_fan .+", label="fan")

# Klipper reports 0.0 until a sensor's first reading and after a failed one.
_UNREAD = " (absent until the first reading and while Klipper reports 0.0)."
_MEASURED = ("measured_min_temp", "measured_max_temp")
# Klipper's start values of measured_min_temp/measured_max_temp (readers.measured).
_SEEDED = (" (absent until the first reading and while it is 0.0, a start value: Klipper "
           "starts these extremes at 0 or 99999999, and readings all below 0 leave the "
           "highest at 0).")


def _heater(prefix: str, what: str) -> tuple:
    return (
        F("temperature", f"{prefix}_temperature",
          f"{what} temperature in degrees Celsius{_UNREAD}", unit=CELSIUS, compat=True,
          read=nonzero),
        F("target", f"{prefix}_target",
          f"{what} target temperature in degrees Celsius (0 when off).", unit=CELSIUS,
          compat=True),
        F("power", f"{prefix}_power",
          f"Heater power of the {what.lower()} (PWM duty cycle), 0 to 1.",
          unit=RATIO, compat=True),
    )


def _minmax(prefix: str, what: str) -> tuple:
    return (
        F("", f"{prefix}_measured_min_temp",
          f"Lowest {what} temperature measured since Klippy started, in degrees Celsius"
          + _SEEDED, unit=CELSIUS, compat=True, read=measured("min"), requires=_MEASURED),
        F("", f"{prefix}_measured_max_temp",
          f"Highest {what} temperature measured since Klippy started, in degrees Celsius"
          + _SEEDED, unit=CELSIUS, compat=True, read=measured("max"), requires=_MEASURED),
    )


def _fan(prefix: str, what: str) -> tuple:
    return (
        F("speed", f"{prefix}_speed", f"{what} speed as a fraction of full speed, 0 to 1.",
          unit=RATIO, compat=True),
        F("rpm", f"{prefix}_rpm",
          f"{what} tachometer speed in revolutions per minute (only with a tachometer_pin).",
          unit=RPM, compat=True),
    )


_HUMIDITY = F("humidity", "klipper_sensor_relative_humidity_ratio",
              "Relative humidity measured by an environmental sensor, 0 to 1 (absent until "
              "the first reading and while Klipper reports 0).",
              unit=RATIO, read=scaled(0.01, nonzero))

BINDINGS = (
    bind(
        EXTRUDER,
        *_heater("klipper_extruder", "Extruder"),
        F("pressure_advance", "klipper_extruder_pressure_advance",
          "Extruder pressure advance in seconds (mm of filament per mm/s of extrusion "
          "speed).", unit=SECONDS, compat=True),
        F("smooth_time", "klipper_extruder_smooth_time",
          "Extruder pressure advance smooth time in seconds.", unit=SECONDS, compat=True),
        F("can_extrude", "klipper_extruder_can_extrude",
          "1 when the extruder is hot enough to extrude (min_extrude_temp), else 0."),
    ),
    bind(HEATER_BED, *_heater("klipper_heater_bed", "Heated bed")),
    bind(HEATER_GENERIC, *_heater("klipper_generic_heater", "Generic heater")),
    bind(
        TEMPERATURE_SENSOR,
        F("temperature", "klipper_temperature_sensor_temperature",
          "Temperature sensor reading in degrees Celsius" + _UNREAD, unit=CELSIUS, compat=True,
          read=nonzero),
        *_minmax("klipper_temperature_sensor", "sensor"),
    ),
    bind(
        TEMPERATURE_PROBE,
        F("temperature", "klipper_temperature_probe_temperature",
          "Temperature probe reading in degrees Celsius" + _UNREAD, unit=CELSIUS, compat=True,
          read=nonzero),
        *_minmax("klipper_temperature_probe", "probe"),
        F("estimated_expansion", "klipper_temperature_probe_estimated_expansion",
          "Probe drift estimated from its temperature, in mm.", unit=MILLIMETERS,
          compat=True),
    ),
    bind(
        TEMPERATURE_FAN,
        *_fan("klipper_temperature_fan", "Temperature fan"),
        F("temperature", "klipper_temperature_fan_temperature",
          "Temperature fan sensor reading in degrees Celsius" + _UNREAD, unit=CELSIUS,
          compat=True, read=nonzero),
        F("target", "klipper_temperature_fan_target",
          "Temperature fan target temperature in degrees Celsius.", unit=CELSIUS, compat=True),
    ),
    bind(
        TEMPERATURE_HOST,
        F("temperature", "klipper_temperature_host_temperature_celsius",
          "Host (single board computer) temperature read by Klipper's temperature_host"
          + _UNREAD, unit=CELSIUS, read=nonzero),
    ),
    bind(
        TEMPERATURE_COMBINED,
        F("temperature", "klipper_temperature_combined_temperature_celsius",
          "Combined temperature (min, max or mean of its sensor_list) of a "
          "temperature_combined sensor" + _UNREAD, unit=CELSIUS, read=nonzero),
    ),
    bind(
        BME280,
        _HUMIDITY,
        F("pressure", "klipper_sensor_pressure_pascals",
          "Barometric pressure measured by a BMP/BME sensor (absent until measured).",
          unit=PASCALS, read=scaled(100.0, positive)),
        F("gas", "klipper_sensor_gas_resistance_ohms",
          "Gas sensor resistance measured by a BME680 (air quality indicator; absent until "
          "measured).", unit=OHMS, read=positive),
    ),
    bind(HTU21D, _HUMIDITY),
    bind(SHT3X, _HUMIDITY),
    bind(AHT10, _HUMIDITY),
    bind(
        LM75,
        F("temperature", "klipper_lm75_temperature_celsius",
          "Temperature read by an LM75 chip" + _UNREAD, unit=CELSIUS, read=nonzero),
    ),
    bind(
        Z_THERMAL_ADJUST,
        F("temperature", "klipper_z_thermal_adjust_temperature_celsius",
          "Frame temperature used for Z thermal compensation" + _UNREAD, unit=CELSIUS,
          read=nonzero),
        F("", "klipper_z_thermal_adjust_measured_min_temperature_celsius",
          "Lowest frame temperature measured since Klippy started, in degrees Celsius"
          + _SEEDED, unit=CELSIUS, read=measured("min"), requires=_MEASURED),
        F("", "klipper_z_thermal_adjust_measured_max_temperature_celsius",
          "Highest frame temperature measured since Klippy started, in degrees Celsius"
          + _SEEDED, unit=CELSIUS, read=measured("max"), requires=_MEASURED),
        F("current_z_adjust", "klipper_z_thermal_adjust_offset_meters",
          "Z offset currently applied by thermal compensation.", unit=METERS,
          read=scaled(0.001)),
        F("z_adjust_ref_temperature", "klipper_z_thermal_adjust_reference_temperature_celsius",
          "Reference temperature of Z thermal compensation, set at Z homing or by "
          "SET_Z_THERMAL_ADJUST REF_TEMP (absent before: Klipper reports 0).", unit=CELSIUS,
          read=nonzero),
        F("enabled", "klipper_z_thermal_adjust_enabled",
          "1 when Z thermal compensation is enabled, else 0."),
    ),
    bind(FAN, *_fan("klipper_fan", "Part cooling fan")),
    bind(FAN_GENERIC, *_fan("klipper_generic_fan", "Generic fan")),
    bind(CONTROLLER_FAN, *_fan("klipper_controller_fan", "Controller fan")),
    bind(HEATER_FAN, *_fan("klipper_heater_fan", "Heater fan")),
)
