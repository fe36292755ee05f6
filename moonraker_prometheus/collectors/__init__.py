"""The collectors, in output order, and the module names a scrape can select."""
from __future__ import annotations

from typing import Dict, Iterable, List, Tuple, Type

from .addons import CfsCollector, MmuCollector
from .base import Collector
from .disk import DiskCollector
from .history import HistoryCollector
from .jobs import JobQueueCollector
from .klippy import KlippyCollector
from .network import NetworkCollector
from .power import PowerCollector
from .printer import PrinterCollector
from .process import ProcessCollector
from .sensors import SensorsCollector
from .server import ServerCollector
from .spoolman import SpoolmanCollector
from .system import SystemCollector
from .updates import UpdatesCollector

COLLECTORS: Tuple[Type[Collector], ...] = (
    KlippyCollector,
    PrinterCollector,
    MmuCollector,
    CfsCollector,
    ServerCollector,
    ProcessCollector,
    SystemCollector,
    NetworkCollector,
    JobQueueCollector,
    HistoryCollector,
    DiskCollector,
    PowerCollector,
    SensorsCollector,
    SpoolmanCollector,
    UpdatesCollector,
)

# prometheus-klipper-exporter's module names, so existing scrape configs keep working.
GO_MODULE_ALIASES: Dict[str, str] = {
    "printer_objects": "printer",
    "temperature": "printer",
    "query_endstops": "printer",
    "server_info": "server",
    "process_stats": "process",
    "network_stats": "network",
    "system_info": "system",
    "job_queue": "jobs",
    "directory_info": "disk",
    "device_power": "power",
    "power_devices": "power",
}


# Not a collector: the other exporters merged in by the sidecar ([prometheus exporter NAME]).
EXPORTERS = "exporters"


def module_names() -> List[str]:
    return [c.name for c in COLLECTORS] + [EXPORTERS]


def resolve_modules(requested: Iterable[str]) -> Tuple[List[str], List[str]]:
    """Map requested module names (ours or Go aliases) to ours; return (known, unknown)."""
    known: List[str] = []
    unknown: List[str] = []
    names = set(module_names())
    for raw in requested:
        name = raw.strip()
        if not name:
            continue
        name = GO_MODULE_ALIASES.get(name, name)
        if name in names:
            if name not in known:
                known.append(name)
        else:
            unknown.append(raw.strip())
    return known, unknown
