"""The simulated printer: real Klippy against simulated MCUs, real Moonraker.

Used by the demo (simulator/run.py) and by the tests.

    from simulator import Klippy, Moonraker

    with Klippy("klipper") as k:
        k.wait_ready()
        with Moonraker(k) as m:
            m.wait_klippy_ready()
            print(m.get("/server/metrics").text)

Files: firmware.py (simulated MCU firmware, one process per [mcu]), world.py (the
physics behind its pins), mcus.py (those processes), mcu_dict.py (their data
dictionaries), klippy.py / moonraker.py / procs.py (process management); farm.py (many
printers and a real Prometheus), services.py with mqtt_standin.py and spoolman_standin.py
(stand-ins for services that cannot run here), backend.py (HTTP stubs and exec scripts for
the sidecar). Tests and bench/ import these; the simulator never imports the tests.
tests/conftest.py has the pytest fixtures built on these classes.
"""
from __future__ import annotations

from .klippy import (FLAVOURS, Klippy, KlippyAPIError, default_config, flavour_config,
                     flavour_unavailable,
                     klippy_executable, leftover_data_dirs, make_data_dir,
                     remove_data_dir)
from .moonraker import (COMPONENT_DIR, COMPONENT_VERSIONS, MOONRAKER_VERSIONS, Moonraker,
                        Response, check_component_link, component_link, moonraker_python,
                        moonraker_unavailable)
from .mcus import SimulatedMCU, msgproto_for
from .procs import (LIVE, REPO_ROOT, VENV_ROOT, HarnessError, free_port, kill_all, survivors,
                    terminate, until, wait_for)

__all__ = [
    "FLAVOURS", "Klippy", "KlippyAPIError", "default_config", "flavour_config", "flavour_unavailable",
    "klippy_executable", "leftover_data_dirs", "make_data_dir", "remove_data_dir",
    "COMPONENT_DIR", "COMPONENT_VERSIONS", "MOONRAKER_VERSIONS", "Moonraker", "Response",
    "check_component_link", "component_link", "moonraker_python", "moonraker_unavailable",
    "LIVE", "REPO_ROOT",
    "VENV_ROOT", "SimulatedMCU", "msgproto_for", "HarnessError", "free_port", "kill_all", "survivors", "terminate", "until", "wait_for",
]
