"""Families read from Moonraker's own components (process, host, jobs, history, ...).

Everything here is read in-process from Moonraker component attributes or from caches that
background tasks refresh; no family is ever produced by an HTTP request to Moonraker itself.
A value Moonraker does not know (no CPU temperature sensor, no slicer estimate, a spool
without a weight) is absent, never 0. Families marked compat keep prometheus-klipper-exporter's
name, label keys and unit, even where the name breaks today's naming rules.
"""
from __future__ import annotations

from .build import counter, gauge, info
from .units import (BYTES, BYTES_PER_SECOND, CELSIUS, GRAMS, KILOBYTES, METERS,
                    MILLIMETERS, PERCENT, RATIO, SECONDS)

# ----- module `process`: the Moonraker process and host load (Go `process_stats`) -----

MOONRAKER_MEMORY_KB = gauge(
    "klipper_moonraker_memory_kb",
    "Moonraker's resident memory (RSS) in kB, from its newest process sample.",
    unit=KILOBYTES, source="proc_stats.proc_stat_queue[-1].memory", compat=True)
MOONRAKER_CPU_USAGE = gauge(
    "klipper_moonraker_cpu_usage",
    "Moonraker's CPU usage in percent of one core over the last second.",
    unit=PERCENT, source="proc_stats.proc_stat_queue[-1].cpu_usage", compat=True)
MOONRAKER_WEBSOCKETS = gauge(
    "klipper_moonraker_websocket_connections",
    "Clients connected to Moonraker's websocket (the Go exporter always reported 0 here).",
    source="websockets.get_count()", compat=True)
EVENT_LOOP_BLOCKED = counter(
    "klipper_moonraker_event_loop_blocked_total",
    "Times Moonraker's watchdog found its event loop blocked for more than 4 seconds "
    "since Moonraker started.",
    source="proc_stats.watchdog.blocked_count")
SYSTEM_CPU_TEMP = gauge(
    "klipper_system_cpu_temp",
    "Host CPU temperature in degrees Celsius; absent when the host has no CPU sensor.",
    unit=CELSIUS, source="event proc_stats:proc_stat_update .cpu_temp", compat=True)
SYSTEM_CPU = gauge(
    "klipper_system_cpu",
    "Host CPU usage over all cores in percent over the last second.",
    unit=PERCENT, source='proc_stats.cpu_usage["cpu"]', compat=True)
SYSTEM_CPU_CORE = gauge(
    "klipper_system_cpu_core_usage_ratio",
    "Usage of one host CPU core (0 to 1) over the last second.",
    labels=("cpu",), unit=RATIO, source='proc_stats.cpu_usage["cpuN"]')
SYSTEM_MEMORY_TOTAL = gauge(
    "klipper_system_memory_total",
    "Host memory in kB (MemTotal).",
    unit=KILOBYTES, source='proc_stats.memory_usage["total"]', compat=True)
SYSTEM_MEMORY_AVAILABLE = gauge(
    "klipper_system_memory_available",
    "Host memory available to new processes in kB (MemAvailable).",
    unit=KILOBYTES, source='proc_stats.memory_usage["available"]', compat=True)
SYSTEM_MEMORY_USED = gauge(
    "klipper_system_memory_used",
    "Host memory in use in kB (MemTotal - MemAvailable).",
    unit=KILOBYTES, source='proc_stats.memory_usage["used"]', compat=True)
SYSTEM_UPTIME = counter(
    "klipper_system_uptime",
    "Seconds since the host booted (CLOCK_BOOTTIME).",
    unit=SECONDS, source="time.clock_gettime(CLOCK_BOOTTIME)", compat=True)
SYSTEM_THROTTLED_BITS = gauge(
    "klipper_system_throttled_bits",
    "Raspberry Pi firmware throttled state bits (get_throttled); absent on other hosts.",
    source="proc_stats.last_throttled (vcgencmd)", compat=True)
SYSTEM_THROTTLED_FLAG = info(
    "klipper_system_throttled_flag_info",
    "One series per throttled state flag currently set (Raspberry Pi only).",
    labels=("flag",), source="proc_stats.last_throttled (vcgencmd)", compat=True)

PROCESS = (MOONRAKER_MEMORY_KB, MOONRAKER_CPU_USAGE, MOONRAKER_WEBSOCKETS, EVENT_LOOP_BLOCKED,
           SYSTEM_CPU_TEMP, SYSTEM_CPU, SYSTEM_CPU_CORE, SYSTEM_MEMORY_TOTAL,
           SYSTEM_MEMORY_AVAILABLE, SYSTEM_MEMORY_USED, SYSTEM_UPTIME, SYSTEM_THROTTLED_BITS,
           SYSTEM_THROTTLED_FLAG)

# ----- module `network`: host network interfaces (Go `network_stats`) -----


def _net(field: str, what: str):
    return counter(
        f"klipper_network_{field}",
        f"{what} of the host network interface since boot (/proc/net/dev).",
        labels=("interface",), source=f"proc_stats.last_net_stats[interface].{field}",
        compat=True)


NETWORK_RX_BYTES = _net("rx_bytes", "Bytes received")
NETWORK_TX_BYTES = _net("tx_bytes", "Bytes sent")
NETWORK_RX_PACKETS = _net("rx_packets", "Packets received")
NETWORK_TX_PACKETS = _net("tx_packets", "Packets sent")
NETWORK_RX_ERRS = _net("rx_errs", "Receive errors")
NETWORK_TX_ERRS = _net("tx_errs", "Send errors")
NETWORK_RX_DROP = _net("rx_drop", "Received packets dropped")
NETWORK_TX_DROP = _net("tx_drop", "Packets to send dropped")
NETWORK_BANDWIDTH = gauge(
    "klipper_network_bandwidth",
    "Bytes per second received plus sent by the interface over the last second.",
    labels=("interface",), unit=BYTES_PER_SECOND,
    source="proc_stats.last_net_stats[interface].bandwidth", compat=True)

NETWORK = (NETWORK_RX_BYTES, NETWORK_TX_BYTES, NETWORK_RX_PACKETS, NETWORK_TX_PACKETS,
           NETWORK_RX_ERRS, NETWORK_TX_ERRS, NETWORK_RX_DROP, NETWORK_TX_DROP,
           NETWORK_BANDWIDTH)

# ----- module `system`: host facts and services (Go `system_info`) -----

SYSTEM_CPU_COUNT = gauge(
    "klipper_system_cpu_count",
    "Number of host CPUs.",
    source='machine.get_system_info()["cpu_info"]["cpu_count"]', compat=True)
SERVICE_AVAILABLE = info(
    "klipper_service_available",
    "One series per system service Moonraker may manage ([machine] allowed services found).",
    labels=("service",), source='machine.get_system_info()["available_services"]',
    compat=True)
SERVICE_STATE = info(
    "klipper_service_state_info",
    "The service's systemd active state (active, inactive, failed, ...).",
    labels=("service", "state"),
    source='machine.get_system_info()["service_state"][service].active_state', compat=True)
SERVICE_SUB_STATE = info(
    "klipper_service_sub_state_info",
    "The service's systemd sub-state (running, dead, exited, ...).",
    labels=("service", "sub_state"),
    source='machine.get_system_info()["service_state"][service].sub_state', compat=True)
SYSTEM_OS = info(
    "klipper_system_os_info",
    "Host operating system: distribution name and kernel release.",
    labels=("distribution", "kernel_version"),
    source='machine.get_system_info()["distribution"]')
SYSTEM_PYTHON = info(
    "klipper_system_python_info",
    "Python version Moonraker runs on.",
    labels=("version",), source='machine.get_system_info()["python"]')

SYSTEM = (SYSTEM_CPU_COUNT, SERVICE_AVAILABLE, SERVICE_STATE, SERVICE_SUB_STATE, SYSTEM_OS,
          SYSTEM_PYTHON)

# ----- module `server`: Moonraker itself (Go `server_info`) -----

COMPONENT = info(
    "klipper_component_info",
    "One series per loaded Moonraker component.",
    labels=("component",), source="server.components", compat=True)
COMPONENT_FAILED = info(
    "klipper_component_failed_info",
    "One series per Moonraker component that failed to load.",
    labels=("failed_component",), source="server.failed_components", compat=True)
MOONRAKER_VERSION = info(
    "klipper_moonraker_version_info",
    "Moonraker's software version.",
    labels=("version",), source='server.get_app_args()["software_version"]', compat=True)
API_VERSION = info(
    "klipper_api_version_info",
    "Moonraker's API version, joined with '.'.",
    labels=("version",), source="server.get_api_version()", compat=True)
MOONRAKER_WARNINGS = gauge(
    "klipper_moonraker_warnings",
    "Warnings Moonraker currently reports (configuration problems and the like).",
    source="server.warnings")

SERVER = (COMPONENT, COMPONENT_FAILED, MOONRAKER_VERSION, API_VERSION, MOONRAKER_WARNINGS)

# ----- module `jobs`: the job queue (Go `job_queue`) -----

JOB_QUEUE_LENGTH = gauge(
    "klipper_job_queue_length",
    "Jobs waiting in Moonraker's job queue.",
    source="job_queue.queued_jobs", compat=True)
JOB_QUEUE_STATE = info(
    "klipper_job_queue_state_info",
    "State of the job queue (ready, loading, starting, paused).",
    labels=("state",), source="job_queue.queue_state", compat=True)
JOB_QUEUE_JOB = info(
    "klipper_job_queue_job_info",
    "One series per queued job: its position (0 prints next), id and file.",
    labels=("position", "job_id", "filename"), source="job_queue.queued_jobs")
JOB_QUEUE_JOB_ADDED = gauge(
    "klipper_job_queue_job_added_timestamp_seconds",
    "When the queued job was added (Unix time).",
    labels=("job_id",), unit=SECONDS, source="job_queue.queued_jobs[].time_added")

JOBS = (JOB_QUEUE_LENGTH, JOB_QUEUE_STATE, JOB_QUEUE_JOB, JOB_QUEUE_JOB_ADDED)

# ----- module `disk`: the gcodes root's file system (Go `directory_info`) -----

DISK_TOTAL = gauge(
    "klipper_disk_usage_total",
    "Size in bytes of the file system holding the gcodes folder.",
    unit=BYTES, source='shutil.disk_usage(file_manager.get_directory("gcodes")), in a thread',
    compat=True)
DISK_USED = gauge(
    "klipper_disk_usage_used",
    "Bytes used on the file system holding the gcodes folder.",
    unit=BYTES, source="same, .used", compat=True)
DISK_AVAILABLE = gauge(
    "klipper_disk_usage_available",
    "Bytes free on the file system holding the gcodes folder.",
    unit=BYTES, source="same, .free", compat=True)
DISK_AGE = gauge(
    "klipper_disk_usage_age_seconds",
    "Age of the disk usage figures (refreshed every 30 s and on file changes, off the "
    "event loop).",
    unit=SECONDS, source="background refresh")

DISK = (DISK_TOTAL, DISK_USED, DISK_AVAILABLE, DISK_AGE)

# ----- module `history`: job history and the current job (Go `history`) -----

TOTAL_JOBS = gauge(
    "klipper_total_jobs",
    "Jobs recorded in Moonraker's history totals (since the last totals reset).",
    source='history.job_totals["total_jobs"]', compat=True)
TOTAL_TIME = gauge(
    "klipper_total_time",
    "Seconds of all recorded jobs, pauses included.",
    unit=SECONDS, source='history.job_totals["total_time"]', compat=True)
TOTAL_PRINT_TIME = gauge(
    "klipper_total_print_time",
    "Seconds spent printing in all recorded jobs.",
    unit=SECONDS, source='history.job_totals["total_print_time"]', compat=True)
TOTAL_FILAMENT = gauge(
    "klipper_total_filament_used",
    "Filament extruded by all recorded jobs, in millimetres (mm; the Go exporter's HELP said "
    "meters).",
    unit=MILLIMETERS, source='history.job_totals["total_filament_used"]', compat=True)
LONGEST_JOB = gauge(
    "klipper_longest_job",
    "Seconds of the longest recorded job, pauses included.",
    unit=SECONDS, source='history.job_totals["longest_job"]', compat=True)
LONGEST_PRINT = gauge(
    "klipper_longest_print",
    "Seconds of printing in the longest recorded print.",
    unit=SECONDS, source='history.job_totals["longest_print"]', compat=True)
HISTORY_JOBS = counter(
    "klipper_history_jobs_total",
    "Finished jobs in Moonraker's history by outcome (completed, cancelled, error, "
    "interrupted, klippy_shutdown, ...); survives Moonraker restarts, drops when history "
    "entries are deleted.",
    labels=("status",), source="history job_history table, counted off the event loop")
HISTORY_AGE = gauge(
    "klipper_history_jobs_age_seconds",
    "Age of the job outcome counts (refreshed when a job finishes and every 5 minutes).",
    unit=SECONDS, source="background refresh")
CURRENT_OBJECT_HEIGHT = gauge(
    "klipper_current_print_object_height",
    "Height of the current job's object in mm (slicer metadata); absent without a job.",
    unit=MILLIMETERS, source="history.current_job.metadata.object_height", compat=True)
CURRENT_FIRST_LAYER_HEIGHT = gauge(
    "klipper_current_print_first_layer_height",
    "First layer height of the current job in mm (slicer metadata).",
    unit=MILLIMETERS, source="history.current_job.metadata.first_layer_height",
    compat=True)
CURRENT_LAYER_HEIGHT = gauge(
    "klipper_current_print_layer_height",
    "Layer height of the current job in mm (slicer metadata).",
    unit=MILLIMETERS, source="history.current_job.metadata.layer_height", compat=True)
CURRENT_TOTAL_DURATION = gauge(
    "klipper_current_print_total_duration",
    "Seconds since the current job started, pauses included.",
    unit=SECONDS, source="job_state print_stats.total_duration (live)", compat=True)
CURRENT_JOB = info(
    "klipper_current_job_info",
    "The job in progress (printing or paused): its file and history job id.",
    labels=("filename", "job_id"), source="history.current_job")
CURRENT_JOB_START = gauge(
    "klipper_current_job_start_timestamp_seconds",
    "When the current job started (Unix time).",
    unit=SECONDS, source="history.current_job.start_time")
CURRENT_ESTIMATE = gauge(
    "klipper_current_job_estimated_duration_seconds",
    "The slicer's estimate of the current job's printing time.",
    unit=SECONDS, source="history.current_job.metadata.estimated_time")
CURRENT_REMAINING = gauge(
    "klipper_current_job_remaining_seconds",
    "Slicer estimate minus printing time so far (never below 0); absent without an estimate.",
    unit=SECONDS, source="metadata.estimated_time - print_stats.print_duration")
CURRENT_FILAMENT_TOTAL = gauge(
    "klipper_current_job_filament_total_meters",
    "Filament length the slicer says the current job needs.",
    unit=METERS, source="history.current_job.metadata.filament_total (mm) / 1000")
CURRENT_FILAMENT_WEIGHT = gauge(
    "klipper_current_job_filament_weight_grams",
    "Filament weight the slicer says the current job needs.",
    unit=GRAMS, source="history.current_job.metadata.filament_weight_total")

HISTORY = (TOTAL_JOBS, TOTAL_TIME, TOTAL_PRINT_TIME, TOTAL_FILAMENT, LONGEST_JOB,
           LONGEST_PRINT, HISTORY_JOBS, HISTORY_AGE, CURRENT_OBJECT_HEIGHT,
           CURRENT_FIRST_LAYER_HEIGHT, CURRENT_LAYER_HEIGHT, CURRENT_TOTAL_DURATION, CURRENT_JOB,
           CURRENT_JOB_START, CURRENT_ESTIMATE, CURRENT_REMAINING, CURRENT_FILAMENT_TOTAL,
           CURRENT_FILAMENT_WEIGHT)

# ----- module `power`: Moonraker [power] devices (Go `device_power`) -----

POWER_DEVICE = info(
    "klipper_power_device_info",
    "One series per [power] device, with its type.",
    labels=("device", "type"), source="power.devices[].type", compat=True)
POWER_STATUS = gauge(
    "klipper_power_device_status",
    "1 when the device is on, 0 when off; absent while its state is unknown (init, error).",
    labels=("device",), source="power.devices[].state", compat=True)
POWER_STATE = info(
    "klipper_power_device_state_info",
    "The device's state as Moonraker reports it (on, off, init, error).",
    labels=("device", "state"), source="power.devices[].state", compat=True)
POWER_LOCKED = gauge(
    "klipper_power_device_locked_while_printing",
    "1 when Moonraker refuses to switch the device while printing.",
    labels=("device",), source="power.devices[].locked_while_printing")

POWER = (POWER_DEVICE, POWER_STATUS, POWER_STATE, POWER_LOCKED)

# ----- module `spoolman`: Moonraker's Spoolman integration (Go `spoolman`) -----

SPOOLMAN_CONNECTED = gauge(
    "klipper_spoolman_connected",
    "1 while Moonraker holds its websocket connection to Spoolman, else 0.",
    source="spoolman.ws_connected", compat=True)
SPOOLMAN_ACTIVE = gauge(
    "klipper_spoolman_active_spool_id",
    "Id of the active spool; -1 when no spool is active.",
    source="spoolman.spool_id", compat=True)
SPOOLMAN_PENDING = gauge(
    "klipper_spoolman_pending_reports",
    "Spools with filament usage not yet reported to Spoolman.",
    source="spoolman.pending_reports", compat=True)
SPOOLMAN_PENDING_LENGTH = gauge(
    "klipper_spoolman_pending_filament_meters",
    "Filament used from the spool but not yet reported to Spoolman.",
    labels=("spool_id",), unit=METERS, source="spoolman.pending_reports[spool_id] (mm) / 1000")
SPOOLMAN_SPOOL = info(
    "klipper_spoolman_spool_info",
    "One series per spool in Spoolman's spool list (cached, fetched in the background).",
    labels=("spool_id", "filament_name", "material", "color", "vendor"),
    source="Spoolman GET /api/v1/spool", compat=True)
SPOOLMAN_REMAINING_WEIGHT = gauge(
    "klipper_spoolman_remaining_weight",
    "Filament weight left on the spool in grams; absent when Spoolman does not know it.",
    labels=("spool_id",), unit=GRAMS, source="spool.remaining_weight", compat=True)
SPOOLMAN_USED_WEIGHT = gauge(
    "klipper_spoolman_used_weight",
    "Filament weight used from the spool in grams.",
    labels=("spool_id",), unit=GRAMS, source="spool.used_weight", compat=True)
SPOOLMAN_REMAINING_LENGTH = gauge(
    "klipper_spoolman_remaining_length",
    "Filament length left on the spool in mm; absent when Spoolman does not know it.",
    labels=("spool_id",), unit=MILLIMETERS, source="spool.remaining_length", compat=True)
SPOOLMAN_USED_LENGTH = gauge(
    "klipper_spoolman_used_length",
    "Filament length used from the spool in mm.",
    labels=("spool_id",), unit=MILLIMETERS, source="spool.used_length", compat=True)
SPOOLMAN_LIST_SUCCESS = gauge(
    "klipper_spoolman_spool_list_fetch_success",
    "1 when the last background fetch of Spoolman's spool list succeeded, else 0.",
    source="background refresh")
SPOOLMAN_LIST_AGE = gauge(
    "klipper_spoolman_spool_list_age_seconds",
    "Seconds since the spool list was last fetched successfully (spool series are dropped "
    "after 10 minutes without success).",
    unit=SECONDS, source="background refresh")

SPOOLMAN = (SPOOLMAN_CONNECTED, SPOOLMAN_ACTIVE, SPOOLMAN_PENDING, SPOOLMAN_PENDING_LENGTH,
            SPOOLMAN_SPOOL, SPOOLMAN_REMAINING_WEIGHT, SPOOLMAN_USED_WEIGHT,
            SPOOLMAN_REMAINING_LENGTH, SPOOLMAN_USED_LENGTH, SPOOLMAN_LIST_SUCCESS,
            SPOOLMAN_LIST_AGE)

# ----- module `sensors`: Moonraker [sensor] sections -----

SENSOR = info(
    "klipper_moonraker_sensor_info",
    "One series per Moonraker [sensor NAME] section: its friendly name and type.",
    labels=("sensor", "friendly_name", "type"), source="sensor.sensors[]")
SENSOR_VALUE = gauge(
    "klipper_moonraker_sensor_value",
    "Latest measurement of one sensor parameter, in the unit the sensor reports "
    "(see klipper_moonraker_sensor_parameter_info).",
    labels=("sensor", "parameter"), source="sensor.sensors[].last_measurements")
SENSOR_PARAMETER = info(
    "klipper_moonraker_sensor_parameter_info",
    "Units of a sensor parameter, from its parameter_NAME option.",
    labels=("sensor", "parameter", "units"), source="sensor.sensors[].param_info")
SENSOR_ERROR = info(
    "klipper_moonraker_sensor_error_info",
    "The sensor's error, while it has one (e.g. MQTT disconnected).",
    labels=("sensor", "error"), source="sensor.sensors[].error_state")

SENSORS = (SENSOR, SENSOR_VALUE, SENSOR_PARAMETER, SENSOR_ERROR)

# ----- module `updates`: the update manager's cached state (never refreshed by a scrape) -----

UPDATE_INFO = info(
    "klipper_update_manager_component_info",
    "One series per software the update manager tracks: type, installed and remote version "
    "(remote as of the update manager's last own refresh).",
    labels=("component", "type", "version", "remote_version"),
    source="update_manager.updaters[].get_update_status()")
UPDATE_AVAILABLE = gauge(
    "klipper_update_manager_update_available",
    "1 when the last refresh found an update, 0 when it found none; absent before any "
    "refresh.",
    labels=("component",), source="version != remote_version, commits_behind, package_count")
UPDATE_COMMITS_BEHIND = gauge(
    "klipper_update_manager_commits_behind",
    "Commits the git repository is behind its remote, as of the last refresh.",
    labels=("component",), source="get_update_status()['commits_behind']")
UPDATE_PACKAGES = gauge(
    "klipper_update_manager_system_packages_upgradable",
    "System packages with an upgrade available, as of the last refresh.",
    source="updaters['system'].get_update_status()['package_count']")
UPDATE_VALID = gauge(
    "klipper_update_manager_valid",
    "1 when the update manager considers the installation valid (updatable), else 0.",
    labels=("component",), source="get_update_status()['is_valid']")
UPDATE_REFRESHED = gauge(
    "klipper_update_manager_last_refresh_timestamp_seconds",
    "When the update manager last refreshed this component (Unix time).",
    labels=("component",), unit=SECONDS, source="updater.last_refresh_time")

UPDATES = (UPDATE_INFO, UPDATE_AVAILABLE, UPDATE_COMMITS_BEHIND, UPDATE_PACKAGES, UPDATE_VALID,
           UPDATE_REFRESHED)
