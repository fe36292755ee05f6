"""moonraker-prometheus: Prometheus metrics for Klipper, served by Moonraker itself.

Moonraker imports this package as `moonraker.components.prometheus` (install.sh links it
into Moonraker's components folder) and calls `load_component` for a [prometheus] section.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
# The project's home and clone URL: README, moonraker.conf.example and install.sh agree with
# it (tests/test_install.py keeps them in sync).
__url__ = "https://github.com/moonraker-prometheus/moonraker-prometheus"

if TYPE_CHECKING:
    from moonraker.confighelper import ConfigHelper

    from .component import PrometheusComponent


def load_component(config: "ConfigHelper") -> "PrometheusComponent":
    # Imported here, not at the top: the sidecar runs standalone without Moonraker, and
    # component.py (which imports Moonraker's modules) never imports this package's
    # __init__ back: the version is passed down.
    from .component import PrometheusComponent

    return PrometheusComponent(config, __version__)
