"""Fixtures for the sidecar tests (helpers live in support.py)."""
from __future__ import annotations

import pytest

from tests.sidecar.support import Backend, exporter_starter


@pytest.fixture
def backend():
    """A threaded HTTP stub on a loopback port, shut down after the test."""
    b = Backend()
    yield b
    b.close()


@pytest.fixture
def start_exporter():
    """start_exporter(binary, *args) runs a real exporter on a free loopback port."""
    start, stop_all = exporter_starter()
    yield start
    stop_all()
