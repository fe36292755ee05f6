"""The body of a scrape without Moonraker: how the collectors are wired into it (the klippy
collector's readiness, which collectors render ahead) and the component's two scrape paths
(plain and merged with the sidecar) rendering the printer's changes ahead."""
from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, Dict, List, Optional

import pytest

from moonraker_prometheus.collectors.printer import PrinterCollector
from moonraker_prometheus.collectors.renderer import Renderer
from moonraker_prometheus.component import PrometheusComponent
from moonraker_prometheus.sidecar import Merger
from simulator.moonraker_standin import FakeApis, FakeConnection, FakeServer, klippy_ready, printer_components

pytestmark = pytest.mark.unit

STATUS = {"heater_bed": {"temperature": 20.0, "target": 0.0, "power": 0.0}}


class Connection(FakeConnection):
    """klippy_connection as Moonraker's: connected, its state "ready"."""

    state = SimpleNamespace(name="READY", message="Printer is ready")

    def is_connected(self) -> bool:
        return True


def ready_server() -> FakeServer:
    components = printer_components(FakeApis(["heater_bed"], STATUS))
    components["klippy_connection"] = Connection()
    return FakeServer(components)


def test_klippy_says_startup_until_the_printer_objects_are_subscribed():
    """Moonraker says ready before the printer collector's subscription answers: the klippy
    collector, given the printer collector's readiness when the renderer builds it, says
    startup until then, so "ready" always comes with the printer series."""
    async def scrape() -> List[str]:
        server = ready_server()
        renderer = Renderer(server, "0.0.0")
        before = renderer.render(["printer"])
        await klippy_ready(server)
        return [before, renderer.render(["printer"])]

    before, after = asyncio.run(scrape())
    assert 'klipper_klippy_state_info{state="startup"} 1.0' in before
    assert "klipper_heater_bed_target" not in before
    assert 'klipper_klippy_state_info{state="ready"} 1.0' in after
    assert "klipper_heater_bed_target 0.0" in after


def test_the_collectors_that_declare_renders_ahead_are_the_ones_rendered_ahead():
    renderer = Renderer(FakeServer({}), "0.0.0")
    assert [c.name for c in renderer.may_be_stale] == ["printer", "mmu", "cfs"]
    assert all(isinstance(c, PrinterCollector) for c in renderer.may_be_stale)


class Request:
    """The WebRequest a scrape of /server/metrics?modules=... hands the component."""

    def __init__(self, modules: str) -> None:
        self.modules = modules

    def get_str(self, name: str, default: Optional[str] = None) -> Optional[str]:
        return self.modules if name == "modules" else default

    def get_args(self) -> Dict[str, Any]:
        return {"modules": self.modules}


@pytest.mark.parametrize("modules", ["klippy,printer", "klippy,printer,exporters"])
def test_a_scrape_renders_the_printer_changes_ahead_whether_merged_or_not(modules,
                                                                          monkeypatch):
    """A push since the last scrape is re-rendered by render_ahead() in loop callbacks of
    its own, before the body is rendered, also when the sidecar's sources are merged in
    (`exporters`: the component's text is rendered when the sources have answered)."""
    ahead: List[int] = []
    render_ahead = PrinterCollector.render_ahead
    monkeypatch.setattr(PrinterCollector, "render_ahead",
                        lambda self, deadline: ahead.append(1) or render_ahead(self, deadline))

    async def scrape() -> str:
        server = ready_server()
        component: Any = PrometheusComponent.__new__(PrometheusComponent)
        component.server = server
        component.renderer = Renderer(server, "0.0.0")
        component.options = SimpleNamespace(scrape_timeout=4.0, modules=[])
        component.mergers = {"": Merger([])}
        await klippy_ready(server)
        await component._handle_metrics(Request(modules))  # the first: everything ahead
        printer = component.renderer.collectors["printer"]
        assert ahead and not printer.stale()
        ahead.clear()
        server.components["klippy_apis"].callbacks[0]({"heater_bed": {"target": 60.0}}, 0.0)
        assert printer.stale()
        try:
            return await component._handle_metrics(Request(modules))
        finally:
            await component.mergers[""].close()

    body = asyncio.run(scrape())
    assert ahead and "klipper_heater_bed_target 60.0" in body
