"""Test harness: real Klippy (batch mode, simulated MCUs) and real Moonraker.

    from tests.harness import Klippy, Moonraker

    with Klippy("klipper") as k:
        k.wait_ready()
        with Moonraker(k) as m:
            m.wait_klippy_ready()
            print(m.get("/server/metrics").text)

See tests/conftest.py for the pytest fixtures built on these classes.
"""
from __future__ import annotations

from .klippy import (FLAVOURS, Klippy, KlippyAPIError, default_config, flavour_config,
                     flavour_unavailable,
                     klippy_executable, make_data_dir)
from .moonraker import (COMPONENT_DIR, Moonraker, Response, check_component_link,
                        component_link, moonraker_python)
from .procs import (LIVE, REPO_ROOT, VENV_ROOT, HarnessError, free_port, kill_all, survivors,
                    terminate, wait_for)

__all__ = [
    "FLAVOURS", "Klippy", "KlippyAPIError", "default_config", "flavour_config", "flavour_unavailable",
    "klippy_executable", "make_data_dir", "COMPONENT_DIR", "Moonraker", "Response",
    "check_component_link", "component_link", "moonraker_python", "LIVE", "REPO_ROOT",
    "VENV_ROOT", "HarnessError", "free_port", "kill_all", "survivors", "terminate", "wait_for",
]
