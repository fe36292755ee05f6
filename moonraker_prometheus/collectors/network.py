"""Host network interfaces, from proc_stats (Go module `network_stats`)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Union

from ..catalogue import moonraker as catalogue
from ..exposition import Family, render_families
from .base import Collector, RenderCache, add_if_number
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server

FIELDS = (
    ("rx_bytes", catalogue.NETWORK_RX_BYTES), ("tx_bytes", catalogue.NETWORK_TX_BYTES),
    ("rx_packets", catalogue.NETWORK_RX_PACKETS), ("tx_packets", catalogue.NETWORK_TX_PACKETS),
    ("rx_errs", catalogue.NETWORK_RX_ERRS), ("tx_errs", catalogue.NETWORK_TX_ERRS),
    ("rx_drop", catalogue.NETWORK_RX_DROP), ("tx_drop", catalogue.NETWORK_TX_DROP),
    ("bandwidth", catalogue.NETWORK_BANDWIDTH),
)


class NetworkCollector(Collector):
    """Traffic, errors, drops and bandwidth of each host network interface (proc_stats)."""

    name = "network"
    metrics = catalogue.NETWORK

    def __init__(self, server: Union["Server", Host]) -> None:
        super().__init__(server)
        # proc_stats replaces last_net_stats with a new dict every second: render once per dict
        self._cache = RenderCache()

    def render(self) -> str:
        net = self.host.network_stats()
        if net is None:
            return ""
        return self._cache.text(net, lambda: self._render(net))

    @staticmethod
    def _render(net: Dict[str, Any]) -> str:
        families: List[Family] = []
        for key, metric in FIELDS:
            f = Family(metric)
            for iface, stats in net.items():
                if isinstance(stats, dict):
                    add_if_number(f, stats.get(key), iface)
            families.append(f)
        return render_families(families)
