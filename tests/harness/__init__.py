"""Test harness: the simulated printer of simulator/ (real Klippy against simulated
MCUs, real Moonraker with the component), re-exported for the tests.

    from tests.harness import Klippy, Moonraker

See simulator/__init__.py for the classes and tests/conftest.py for the fixtures.
"""
from __future__ import annotations

from simulator import *  # noqa: F401,F403
from simulator import __all__  # noqa: F401
