"""Add-on filament systems: Happy Hare MMU (`mmu`) and Creality CFS (`cfs`).

Both read Klipper printer objects exactly like the printer collector (same subscription
machinery, same lifecycle) with their own catalogue; without the objects they subscribe
to nothing and export nothing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

from ..catalogue import cfs, mmu
from ..catalogue.spec import ObjectBinding
from .host import Host
from .printer import PrinterCollector

if TYPE_CHECKING:
    from moonraker.server import Server


class MmuCollector(PrinterCollector):
    """Happy Hare MMU state from the `mmu`, `mmu_machine` and pre-gate sensor objects."""

    name = "mmu"
    metrics = mmu.METRICS

    def __init__(self, server: Union["Server", Host],
                 bindings: Sequence[ObjectBinding] = mmu.BINDINGS) -> None:
        super().__init__(server, bindings)


class CfsCollector(PrinterCollector):
    """Creality Filament System state from the `box` and `filament_rack` objects."""

    name = "cfs"
    metrics = cfs.METRICS

    def __init__(self, server: Union["Server", Host],
                 bindings: Sequence[ObjectBinding] = cfs.BINDINGS) -> None:
        super().__init__(server, bindings)
