"""The central exporter's own families: each probe's outcome (blackbox_exporter's
`probe_success` convention) and, on /metrics, each target's connection."""
from __future__ import annotations

from ..catalogue.build import counter, gauge, info
from ..catalogue.units import SECONDS

PROBE_SUCCESS = gauge(
    "probe_success",
    "1 when the printer's Moonraker was connected and read, 0 when not (see "
    "klipper_probe_failure_info); its printer series come only with 1.",
    source="remote exporter")
PROBE_DURATION = gauge(
    "probe_duration_seconds", "Time this probe took (waiting for a first connection "
    "included).", unit=SECONDS, source="remote exporter")
PROBE_FAILURE = info(
    "klipper_probe_failure_info",
    "Why the probe failed: connecting, refused, unreachable, dns, timeout, tls, auth, "
    "http_error, closed, message_too_large, moonraker_error, protocol or max_targets.",
    labels=("reason",), source="remote exporter")
PROBE_DATA_AGE = gauge(
    "klipper_probe_data_age_seconds",
    "Seconds since Moonraker last sent anything on this target's websocket (a status push, "
    "a notification or an answer).", unit=SECONDS, source="remote exporter")
PROBE_SOURCE_ERROR = info(
    "klipper_probe_source_error_info",
    "A Moonraker API method the exporter reads that answered with an error (an older "
    "Moonraker without the endpoint, a component that failed): the families it feeds are "
    "absent. Klippy's methods are left out: klipper_klippy_state_info says why.",
    labels=("method", "error"), source="remote exporter")
PROBE = (PROBE_SUCCESS, PROBE_DURATION, PROBE_FAILURE, PROBE_DATA_AGE, PROBE_SOURCE_ERROR)

TARGET_CONNECTED = gauge(
    "klipper_remote_target_connected",
    "1 while the exporter's websocket to the target's Moonraker is open and loaded.",
    labels=("target",), source="remote exporter")
TARGET_ERROR = info(
    "klipper_remote_target_last_error_info",
    "The last reason the target could not be read (see klipper_probe_failure_info).",
    labels=("target", "reason"), source="remote exporter")
TARGET_AGE = gauge(
    "klipper_remote_target_update_age_seconds",
    "Seconds since the exporter last read anything Moonraker sent on the target's "
    "websocket (read in batches: at most 5 s after it came; a probe reads what waits).",
    labels=("target",), unit=SECONDS, source="remote exporter")
TARGET_CONNECTS = counter(
    "klipper_remote_target_connections_total",
    "Websockets opened to the target since the exporter started.",
    labels=("target",), source="remote exporter")
TARGET_REQUESTS = counter(
    "klipper_remote_target_requests_total",
    "JSON-RPC requests sent to the target's Moonraker since the exporter started.",
    labels=("target",), source="remote exporter")
TARGET_PROBES = counter(
    "klipper_remote_target_probes_total",
    "Probes of the target since the exporter started.",
    labels=("target",), source="remote exporter")
PROBES_REFUSED = counter(
    "klipper_remote_probes_refused_total",
    "Probes refused: a target not listed (403), a malformed target or unknown module "
    "(400).",
    labels=("code",), source="remote exporter")
PROBES_OVER_MAX = counter(
    "klipper_remote_probes_over_max_targets_total",
    "Probes of an unlisted target (--allow-any-target) answered probe_success 0, reason "
    "max_targets: max_targets unlisted targets were connected, each probed within the "
    "last minute. Listed targets are never refused.",
    source="remote exporter")
TARGETS_EVICTED = counter(
    "klipper_remote_targets_evicted_total",
    "Unlisted targets disconnected to make room for another (the least recently probed, "
    "when max_targets unlisted targets were connected).",
    source="remote exporter")
TARGETS_FILE_ERRORS = counter(
    "klipper_remote_targets_file_errors_total",
    "Loads of the --targets-file that failed (the last good list kept): reason=read "
    "(cannot be read), too_large (over 1 MiB), syntax (not JSON or YAML) or format (not "
    "file_sd's list of target groups, or an address not HOST:PORT).",
    labels=("reason",), source="remote exporter")
TARGETS_FILE_SUCCESS = gauge(
    "klipper_remote_targets_file_last_reload_success",
    "1 when the last load of the --targets-file succeeded, 0 when its last good list is "
    "kept.", source="remote exporter")
TARGETS_FILE_TIMESTAMP = gauge(
    "klipper_remote_targets_file_last_reload_success_timestamp_seconds",
    "When the --targets-file was last loaded successfully (Unix time).",
    unit=SECONDS, source="remote exporter")
TARGET_LIMITED = counter(
    "klipper_remote_target_limited_total",
    "Values from the target's Moonraker left out by the per-target memory bound: "
    "limit=entries (beyond max_entries in a JSON object or array), string (a string over "
    "max_string characters) or fields (a pushed field or item outside what was subscribed "
    "or listed).",
    labels=("target", "limit"), source="remote exporter")
TARGETS = (TARGET_CONNECTED, TARGET_ERROR, TARGET_AGE, TARGET_CONNECTS, TARGET_REQUESTS,
           TARGET_PROBES, TARGET_LIMITED, PROBES_REFUSED, PROBES_OVER_MAX, TARGETS_EVICTED,
           TARGETS_FILE_ERRORS, TARGETS_FILE_SUCCESS, TARGETS_FILE_TIMESTAMP)
