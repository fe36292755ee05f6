"""MCUs, CAN buses, stepper drivers, pins, filament sensors, endstops, probe, Klippy host."""
from __future__ import annotations

from .build import COUNTER, F, INFO, ObjectKind, bind
from .readers import (after_first_system_stats, bool_flag, first_of, mcu_awake, mcu_info,
                      mcu_load, mcu_task_stat, nonzero, number, per_key, positive,
                      probe_triggered, scaled, state, tmc_enabled)
from .twins import prefer
from .units import AMPERES, BYTES, CELSIUS, HERTZ, METERS, RATIO, SECONDS

# `mcu` for the main MCU (label value "mcu", as prometheus-klipper-exporter), `mcu NAME` else.
MCU = ObjectKind("mcu", r"mcu( .+)?", label="mcu")
CANBUS_STATS = ObjectKind("canbus_stats", r"canbus_stats .+", label="mcu")
# prometheus-klipper-exporter labels drivers `tmc2209_stepper_x`: the object name with the
# kind's separating space replaced by `_`; the stepper name itself is kept as it is.
TMC = ObjectKind("tmc", r"tmc[0-9a-z]+ .+", label="sensor", join="_")
STEPPER_ENABLE = ObjectKind("stepper_enable", r"stepper_enable")
OUTPUT_PIN = ObjectKind("output_pin", r"output_pin .+", label="pin")
PWM_TOOL = ObjectKind("pwm_tool", r"(pwm_tool|pwm_cycle_time) .+", label="pin")
FILAMENT_SENSOR = ObjectKind(
    "filament_sensor", r"filament_(switch|motion)_sensor .+", label="sensor")
QUERY_ENDSTOPS = ObjectKind("query_endstops", r"query_endstops")
PROBE = ObjectKind("probe", r"probe")
SYSTEM_STATS = ObjectKind("system_stats", r"system_stats")

_STATS = "last_stats"
# Klippy reports the MCU's task statistics as 0 until the MCU sent its first stats message.
_MCU_STATS = " (absent until the MCU reported its first statistics)."


BINDINGS = (
    bind(
        MCU,
        F(_STATS, "klipper_mcu_awake",
          "Seconds the MCU was awake (busy) in Klipper's last 5 second window" + _MCU_STATS
          + prefer("klipper_mcu_awake"), unit=SECONDS, compat=True,
          read=mcu_task_stat("mcu_awake")),
        F(_STATS, "klipper_mcu_task_avg", "Average MCU task time in seconds" + _MCU_STATS,
          unit=SECONDS, compat=True, read=mcu_task_stat("mcu_task_avg")),
        F(_STATS, "klipper_mcu_task_stddev",
          "Standard deviation of MCU task time in seconds" + _MCU_STATS, unit=SECONDS,
          compat=True, read=mcu_task_stat("mcu_task_stddev")),
        F(f"{_STATS}.bytes_write", "klipper_mcu_write_bytes",
          "Bytes the host sent to the MCU since connecting.", unit=BYTES, compat=True),
        F(f"{_STATS}.bytes_read", "klipper_mcu_read_bytes",
          "Bytes the host received from the MCU since connecting.", unit=BYTES,
          compat=True),
        F(f"{_STATS}.bytes_retransmit", "klipper_mcu_retransmit_bytes",
          "Bytes the host retransmitted to the MCU since connecting.", unit=BYTES,
          compat=True),
        F(f"{_STATS}.bytes_invalid", "klipper_mcu_invalid_bytes",
          "Invalid bytes the host received from the MCU since connecting.",
          unit=BYTES, compat=True),
        F(f"{_STATS}.send_seq", "klipper_mcu_send_seq",
          "Sequence number of the last message block sent to the MCU.", compat=True),
        F(f"{_STATS}.receive_seq", "klipper_mcu_receive_seq",
          "Sequence number of the last message block received from the MCU.", compat=True),
        F(f"{_STATS}.retransmit_seq", "klipper_mcu_retransmit_seq",
          "Sequence number of the last retransmitted message block.", compat=True),
        F(f"{_STATS}.srtt", "klipper_mcu_srtt",
          "Smoothed round trip time to the MCU in seconds.", unit=SECONDS, compat=True),
        F(f"{_STATS}.rttvar", "klipper_mcu_rttvar",
          "Round trip time variance to the MCU in seconds.", unit=SECONDS, compat=True),
        F(f"{_STATS}.rto", "klipper_mcu_rto",
          "Retransmit timeout towards the MCU in seconds.", unit=SECONDS, compat=True),
        F(f"{_STATS}.ready_bytes", "klipper_mcu_ready_bytes",
          "Bytes queued and ready to send to the MCU.", unit=BYTES, compat=True),
        F(_STATS, "klipper_mcu_stalled_bytes",
          "Bytes queued for the MCU but not yet ready to send (Klipper's upcoming_bytes, "
          "stalled_bytes before 2023).", unit=BYTES, compat=True,
          read=first_of("upcoming_bytes", "stalled_bytes")),
        F(f"{_STATS}.freq", "klipper_mcu_clock_frequency",
          "Estimated MCU clock frequency in Hz, against the host's clock (not "
          "klipper_mcu_adjusted_clock_frequency_hertz, a secondary MCU's clock "
          "against the main MCU's).", unit=HERTZ, compat=True),
        F(f"{_STATS}.adj", "klipper_mcu_adjusted_clock_frequency_hertz",
          "Clock frequency of a secondary MCU adjusted to the main MCU's clock.",
          unit=HERTZ),
        F(_STATS, "klipper_mcu_load_ratio",
          "MCU load as Klipper's graphstats computes it: (task_avg + 3 * task_stddev) / "
          "0.0025" + _MCU_STATS, unit=RATIO, read=mcu_load),
        F(_STATS, "klipper_mcu_awake_ratio",
          "Fraction of time the MCU was awake: mcu_awake / 5 s" + _MCU_STATS, unit=RATIO,
          read=mcu_awake),
        F("", "klipper_mcu_info",
          "MCU identity: firmware version, build tool versions and MCU type.", type=INFO,
          labels=("version", "build_versions", "mcu_type"), read=mcu_info,
          requires=("mcu_version", "mcu_build_versions", "mcu_constants")),
    ),
    bind(
        CANBUS_STATS,
        F("rx_error", "klipper_canbus_rx_errors_total",
          "CAN bus receive errors counted by the MCU.", type=COUNTER),
        F("tx_error", "klipper_canbus_tx_errors_total",
          "CAN bus transmit errors counted by the MCU.", type=COUNTER),
        F("tx_retries", "klipper_canbus_tx_retries_total",
          "CAN bus transmit retries counted by the MCU.", type=COUNTER),
        F("bus_state", "klipper_canbus_bus_state_info",
          "CAN bus state reported by the MCU (active, warn, passive, off).", type=INFO,
          labels=("state",), read=state),
    ),
    bind(
        TMC,
        F("run_current", "klipper_tmc_sensor_run_current",
          "Stepper driver run current in amperes.", unit=AMPERES, compat=True),
        F("temperature", "klipper_tmc_sensor_temperature",
          "Stepper driver temperature in degrees Celsius (drivers that report it).",
          unit=CELSIUS, compat=True),
        F("", "klipper_tmc_sensor_enabled",
          "1 while Klipper polls the driver's status (the stepper is enabled), else 0.",
          compat=True, read=tmc_enabled, requires=("drv_status",)),
        F("hold_current", "klipper_tmc_hold_current_amperes",
          "Stepper driver hold current.", unit=AMPERES),
        F("drv_status", "klipper_tmc_driver_status",
          "Non-zero fields of the driver's DRV_STATUS register (e.g. otpw, ot, s2ga).",
          labels=("field",), read=per_key(number)),
    ),
    bind(
        STEPPER_ENABLE,
        F("steppers", "klipper_stepper_enabled",
          "1 when the stepper motor is enabled, else 0.", labels=("stepper",),
          read=per_key(bool_flag)),
    ),
    bind(
        OUTPUT_PIN,
        F("value", "klipper_output_pin_value",
          "Output pin value, 0 to 1 (PWM duty cycle or digital state).", unit=RATIO,
          compat=True),
    ),
    bind(
        PWM_TOOL,
        F("value", "klipper_output_pin_value",
          "Output pin value, 0 to 1 (PWM duty cycle or digital state).", unit=RATIO,
          compat=True),
    ),
    bind(
        FILAMENT_SENSOR,
        F("filament_detected", "klipper_filament_sensor_detected",
          "1 when the filament sensor detects filament, else 0.", compat=True),
        F("enabled", "klipper_filament_sensor_enabled",
          "1 when the filament sensor is enabled, else 0.", compat=True),
    ),
    bind(
        QUERY_ENDSTOPS,
        F("last_query", "klipper_endstop_triggered",
          "1 when the endstop was triggered at the last endstop query someone ran "
          "(QUERY_ENDSTOPS); never queried by the exporter.", labels=("endstop",),
          read=per_key(bool_flag), compat=True),
    ),
    bind(
        PROBE,
        F("", "klipper_probe_triggered",
          "1 when the probe was triggered at its last QUERY_PROBE, else 0 (absent before "
          "the probe first ran).", read=probe_triggered,
          requires=("last_query", "last_z_result")),
        F("last_z_result", "klipper_probe_last_z_result_meters",
          "Z height of the last probe measurement (absent before the first: Klipper reports "
          "0.0).", unit=METERS, read=scaled(0.001, nonzero)),
        F("name", "klipper_probe_info", "The probe's name.", type=INFO,
          labels=("name",), read=state),
    ),
    bind(
        SYSTEM_STATS,
        F("", "klipper_klippy_host_load1",
          "Host one-minute load average as Klippy last read it (Klippy reads it every "
          "second; absent before its first reading).",
          read=after_first_system_stats("sysload"),
          requires=("sysload", "cputime")),
        F("cputime", "klipper_klippy_cpu_seconds_total",
          "CPU time used by the Klippy process (absent before Klippy's first reading).",
          type=COUNTER, unit=SECONDS, read=positive),
        F("memavail", "klipper_klippy_host_memory_available_bytes",
          "Host available memory (MemAvailable) as Klippy last read it.", unit=BYTES,
          read=scaled(1024.0, positive)),
    ),
)
