"""Moonraker's Spoolman integration, and Spoolman's spool list fetched in the background."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Tuple, Union

from ..catalogue import moonraker as catalogue
from ..catalogue.values import as_number
from ..exposition import Family, render_families
from .base import Collector, PeriodicRefresh, RenderCache, add_if_number
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server

REFRESH_INTERVAL = 60.0
MAX_AGE = 600.0


def spool_labels(spool: Dict[str, Any]) -> Tuple[str, str, str, str, str]:
    filament = spool.get("filament")
    filament = filament if isinstance(filament, dict) else {}
    vendor = filament.get("vendor")
    vendor = vendor if isinstance(vendor, dict) else {}

    def text(value: Any) -> str:
        return value if isinstance(value, str) else ""

    return (str(spool.get("id")), text(filament.get("name")), text(filament.get("material")),
            text(filament.get("color_hex")), text(vendor.get("name")))


def render_spools(spools: List[Dict[str, Any]]) -> str:
    c = catalogue
    info = Family(c.SPOOLMAN_SPOOL)
    values = [(key, Family(metric)) for key, metric in (
        ("remaining_weight", c.SPOOLMAN_REMAINING_WEIGHT),
        ("used_weight", c.SPOOLMAN_USED_WEIGHT),
        ("remaining_length", c.SPOOLMAN_REMAINING_LENGTH),
        ("used_length", c.SPOOLMAN_USED_LENGTH))]
    for spool in spools:
        if not isinstance(spool, dict) or as_number(spool.get("id")) is None:
            continue
        labels = spool_labels(spool)
        info.add(1.0, *labels)
        for key, family in values:
            add_if_number(family, spool.get(key), labels[0])
    return render_families([info] + [f for _, f in values])


class SpoolmanCollector(Collector):
    """Spoolman connection, active spool, unreported usage; spool list fetched in background."""

    name = "spoolman"
    metrics = catalogue.SPOOLMAN

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        self.spools = PeriodicRefresh(self.host, "Spoolman spool list",
                                      self.host.spoolman_spools, REFRESH_INTERVAL,
                                      max_age=MAX_AGE)
        self._status_text = RenderCache()
        self._spool_text = RenderCache()  # the spool list's families, per fetched list
        self.host.register_event_handler(
            "spoolman:spoolman_status_changed", self._on_status_changed)

    def _on_status_changed(self, *_: Any) -> None:
        self.spools.trigger()

    async def start(self) -> None:
        # Started whatever the host has: a host without Spoolman fetches nothing (None),
        # and a remote host learns whether it has Spoolman only once connected.
        self.spools.start()

    async def close(self) -> None:
        await self.spools.close()

    def render(self) -> str:
        key = self.host.spoolman()
        if key is None:
            return ""
        text = self._status_text.text(key, lambda: self._render_status(*key))
        spools = self.spools.current()
        if spools is not None:
            text += self._spool_text.text(spools, lambda: render_spools(spools))
        tail: List[Family] = []
        if self.spools.ok is not None:
            f = Family(catalogue.SPOOLMAN_LIST_SUCCESS)
            f.add(1.0 if self.spools.ok else 0.0)
            tail.append(f)
        age = self.spools.age()
        if age is not None:
            f = Family(catalogue.SPOOLMAN_LIST_AGE)
            f.add(age)
            tail.append(f)
        return text + render_families(tail)

    @staticmethod
    def _render_status(connected: bool, spool_id: Any, pending: Tuple[Tuple[Any, Any], ...]
                       ) -> str:
        """Connection, active spool and the usage not yet reported to Spoolman."""
        c = catalogue
        families: List[Family] = []
        f = Family(c.SPOOLMAN_CONNECTED)
        f.add(1.0 if connected else 0.0)
        families.append(f)
        f = Family(c.SPOOLMAN_ACTIVE)
        f.add(float(spool_id) if as_number(spool_id) is not None else -1.0)
        families.append(f)
        f = Family(c.SPOOLMAN_PENDING)
        f.add(float(len(pending)))
        families.append(f)
        f = Family(c.SPOOLMAN_PENDING_LENGTH)
        for sid, used in pending:
            value = as_number(used)
            if value is not None:
                f.add(value / 1000.0, str(sid))
        families.append(f)
        return render_families(families)
