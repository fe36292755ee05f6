"""pytest fixtures: real Klippy (live, against the simulated MCUs) and real Moonraker
with the component.

Fixtures (see simulator/ for the classes):
  klippy_flavour          "klipper" (default) or "kalico"; parametrize it indirectly,
                          or use the ``flavours`` marker helper below
  klippy                  function scope: a fresh, ready Klippy
  shared_klippy           module scope: one ready Klippy shared by a test module
  moonraker               function scope: Moonraker (with [prometheus]) against ``klippy``,
                          Klippy connected and ready
  shared_moonraker        module scope: Moonraker against ``shared_klippy``
  make_klippy(...)        factory: Klippy(**kwargs) started and ready, stopped at teardown
  make_moonraker(...)     factory: Moonraker(klippy, **kwargs) started, stopped at teardown

Per-module configuration: a test module may define ``KLIPPY_LIVE = False`` (batch
mode: no MCU answers; only where that is faster and enough), ``KLIPPY_EXTRA_CONFIG`` (text
appended to printer.cfg), ``MOONRAKER_PROMETHEUS_CONFIG`` (body of [prometheus]) and
``MOONRAKER_EXTRA_CONFIG`` (appended to moonraker.conf); the shared and function
fixtures use them.  Run all Klippy fixtures against Kalico too with
``pytest --klippy-flavour=all`` (default: klipper; kalico tests skip when Kalico
is unavailable).
"""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import simulator.klippy  # noqa: E402
from simulator import (FLAVOURS, Klippy, Moonraker, flavour_unavailable,  # noqa: E402
                       kill_all, leftover_data_dirs, survivors)

try:  # promtool_check fixture for every test module (tests/promtool.py)
    from tests.promtool import promtool_check  # noqa: E402,F401
except ImportError:  # pragma: no cover - module not there yet
    pass


# tests/sidecar modules that start processes (real exporters, the standalone sidecar, exec
# sources). Every other sidecar test runs in-process (threaded HTTP stubs at most), so it is
# marked `unit` here; the other test folders mark their unit modules with
# `pytestmark = pytest.mark.unit`. A test marked `slow` is never marked `unit`.
SIDECAR_PROCESS_MODULES = {"test_cli.py", "test_standalone.py", "test_real_exporters.py",
                           "test_exec_sources.py", "test_scrape_oracle.py",
                           "test_prometheus_oracle.py"}
PROCESS_FIXTURES = {"start_exporter", "klippy", "shared_klippy", "moonraker",
                    "shared_moonraker", "make_klippy", "make_moonraker"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.path
        if path.parent.name == "sidecar" and path.name not in SIDECAR_PROCESS_MODULES \
                and not PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())) \
                and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.unit)


def pytest_addoption(parser):
    parser.addoption("--klippy-flavour", default="klipper",
                     help="klipper, kalico or all: flavours for the klippy fixtures")


def pytest_generate_tests(metafunc):
    if "klippy_flavour" in metafunc.fixturenames and not any(
            m.name == "parametrize" and "klippy_flavour" in str(m.args[0])
            for m in metafunc.definition.iter_markers()):
        opt = metafunc.config.getoption("--klippy-flavour")
        flavours = list(FLAVOURS) if opt == "all" else [f.strip() for f in opt.split(",")]
        metafunc.parametrize("klippy_flavour", flavours, scope="module")


def _skip_unavailable(flavour: str) -> None:
    reason = flavour_unavailable(flavour)
    if reason:
        pytest.skip(reason)


def _module_attr(request, name, default=""):
    return getattr(request.module, name, default) if request.module else default


def _start_klippy(flavour, extra_config="", **kwargs) -> Klippy:
    _skip_unavailable(flavour)
    k = Klippy(flavour, extra_config=extra_config, **kwargs)
    try:
        k.start()
        k.wait_ready()
    except BaseException:
        k.cleanup()
        raise
    return k


def _finish_klippy(k: Klippy) -> None:
    """Stop ``k``; fail when Klippy sent a command the simulated MCUs do not handle."""
    unhandled = k.unhandled_commands()
    k.cleanup()
    if unhandled:
        pytest.fail("simulated MCU did not handle: %s" % unhandled, pytrace=False)


@pytest.fixture(scope="module")
def shared_klippy(request, klippy_flavour):
    k = _start_klippy(klippy_flavour, _module_attr(request, "KLIPPY_EXTRA_CONFIG"),
                      live=_module_attr(request, "KLIPPY_LIVE", True))
    yield k
    _finish_klippy(k)


@pytest.fixture
def klippy(request, klippy_flavour):
    k = _start_klippy(klippy_flavour, _module_attr(request, "KLIPPY_EXTRA_CONFIG"),
                      live=_module_attr(request, "KLIPPY_LIVE", True))
    yield k
    _finish_klippy(k)


def _start_moonraker(request, klippy, **kwargs) -> Moonraker:
    kwargs.setdefault("prometheus", _module_attr(request, "MOONRAKER_PROMETHEUS_CONFIG"))
    kwargs.setdefault("extra_config", _module_attr(request, "MOONRAKER_EXTRA_CONFIG"))
    m = Moonraker(klippy, **kwargs)
    try:
        m.start()
        if klippy is not None and klippy.running():
            m.wait_klippy_ready()
    except BaseException:
        m.cleanup()
        raise
    return m


@pytest.fixture(scope="module")
def shared_moonraker(request, shared_klippy):
    m = _start_moonraker(request, shared_klippy)
    yield m
    m.cleanup()


@pytest.fixture
def moonraker(request, klippy):
    m = _start_moonraker(request, klippy)
    yield m
    m.cleanup()


@pytest.fixture
def make_klippy(request, klippy_flavour):
    """Factory: ``make_klippy(extra_config="...", flavour=None, start=True, **kwargs)``."""
    made = []

    def factory(extra_config="", flavour=None, start=True, **kwargs):
        flavour = flavour or klippy_flavour
        kwargs.setdefault("live", _module_attr(request, "KLIPPY_LIVE", True))
        if start:
            k = _start_klippy(flavour, extra_config, **kwargs)
        else:
            _skip_unavailable(flavour)
            k = Klippy(flavour, extra_config=extra_config, **kwargs)
        made.append(k)
        return k
    yield factory
    for k in reversed(made):
        _finish_klippy(k)


@pytest.fixture
def make_moonraker(request):
    """Factory: ``make_moonraker(klippy=None, prometheus="", extra_config="", trusted_clients=...)``."""
    made = []

    def factory(klippy=None, **kwargs):
        m = _start_moonraker(request, klippy, **kwargs)
        made.append(m)
        return m
    yield factory
    for m in reversed(made):
        m.cleanup()


@pytest.fixture(scope="session", autouse=True)
def _no_data_folder_left(tmp_path_factory):
    """The simulator's folders go under pytest's base temporary folder, and the run fails
    if any is left when it ends (Klippy and Moonraker remove those they made)."""
    simulator.klippy.DATA_DIR_PARENT = str(tmp_path_factory.getbasetemp())
    yield
    left = leftover_data_dirs()
    if left:
        pytest.fail("simulator data folders left behind: %s" % ", ".join(left), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _no_surviving_processes():
    """Fail the run if any harness process outlives its fixtures."""
    yield
    left = survivors()
    if left:
        kill_all()
        pytest.fail("harness processes survived the test session: %s" % ", ".join(left),
                    pytrace=False)
