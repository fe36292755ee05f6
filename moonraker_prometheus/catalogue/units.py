"""Units of the declared families, one spelling each (shown in docs/metrics.md).

Prometheus base units where the family follows today's naming rules; the Go exporter's
own units (millimeters, kilobytes, mm/s, percent, ...) where a compat family keeps them.
"""
from __future__ import annotations

AMPERES = "amperes"
BYTES = "bytes"
BYTES_PER_SECOND = "bytes_per_second"
CELSIUS = "celsius"
CUBIC_MILLIMETERS = "mm^3"
GRAMS = "grams"
HERTZ = "hertz"
KILOBYTES = "kilobytes"
METERS = "meters"
METERS_PER_SECOND = "meters_per_second"
MILLIMETERS = "millimeters"
MM_PER_MINUTE = "mm/min"
MM_PER_SECOND = "mm/s"
MM_PER_SECOND_SQUARED = "mm/s^2"
OHMS = "ohms"
PASCALS = "pascals"
PERCENT = "percent"
RATIO = "ratio"
RPM = "rpm"
SECONDS = "seconds"

UNITS = frozenset((
    AMPERES, BYTES, BYTES_PER_SECOND, CELSIUS, CUBIC_MILLIMETERS, GRAMS, HERTZ, KILOBYTES,
    METERS, METERS_PER_SECOND, MILLIMETERS, MM_PER_MINUTE, MM_PER_SECOND,
    MM_PER_SECOND_SQUARED, OHMS, PASCALS, PERCENT, RATIO, RPM, SECONDS))
