"""The component's scrape body from two revisions side by side, in one process: the render
and what the HTTP edge writes, on the simulated printer's real status.

    .venv/moonraker/bin/python bench/bench_render_ab.py --before REV [--scrapes 2000]

Starts real Klippy once (live, simulated MCUs, simulator/printer.cfg) and reads its object
list and the status of every field the printer collector subscribes to. Each side, the
package at REV (`git archive`, imported as `mp_before`, as bench_merge_ab.py does) and the
working tree, builds its `Renderer` on a stand-in Moonraker (simulator/moonraker_standin.py) answering that
status, and they scrape in turn, `--scrapes` times each, in two cases:

- `push`: before each scrape every object with a `temperature` is pushed a new one (what
  Klippy's 250 ms status timer sends: a scrape seconds apart finds them all changed); the
  re-render is done ahead (render_ahead, as the component does) and timed apart;
- `cached`: nothing changed since the last scrape.

Timed per scrape: `plain`, the body as Tornado writes it (`tornado.escape.utf8` of what the
handler returns: one UTF-8 encode of a str, nothing for bytes), and `merged`, the component's
text as the sidecar merge takes it (a str: REV's bytes decoded, as its component did). Both
with the printer's own object names (one sensor is "Électronique bay 2", so the body is not
ASCII) and with that sensor renamed to ASCII. Prints the medians (microseconds).
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from bench_merge_ab import load_revision  # noqa: E402
from tornado.escape import utf8  # noqa: E402

from simulator import Klippy  # noqa: E402
from simulator.moonraker_standin import (FakeApis, FakeConnection, FakeServer, klippy_ready,  # noqa: E402
                         printer_components)

ALL = ["printer", "server", "process", "system", "network", "jobs", "history", "disk",
       "power", "sensors", "spoolman", "updates"]
NON_ASCII = "temperature_sensor Électronique bay 2"
ASCII = "temperature_sensor Electronique bay 2"


class _Connection(FakeConnection):
    class state:  # noqa: N801  (Moonraker's KlippyState enum member, as read)
        name, message = "READY", "Printer is ready"

    def is_connected(self) -> bool:
        return True


class _Apis(FakeApis):
    """klippy_apis: also answers the configfile query (sensor drivers' sections)."""

    def __init__(self, objects: List[str], status: Dict[str, Any], config: Any) -> None:
        super().__init__(objects, status)
        self.config = config

    async def query_objects(self, objects: Dict[str, Any], default: Any = None) -> Any:
        return {"configfile": {"config": self.config}}


async def side(package: str, objects: List[str], status: Dict[str, Any], config: Any
               ) -> Tuple[Any, Callable[[Dict[str, Any]], None], Any]:
    """(renderer, push, printer collector) of `package` on a stand-in Moonraker."""
    renderer_module = importlib.import_module(package + ".collectors.renderer")
    apis = _Apis(objects, status, config)
    components = printer_components(apis)
    components["klippy_connection"] = _Connection()
    server = FakeServer(components)
    renderer = renderer_module.Renderer(server, "bench")
    await klippy_ready(server)
    printer = renderer.collectors["printer"]
    assert printer.subscribed()

    def push(pushed: Dict[str, Any]) -> None:
        for callback in apis.callbacks:
            callback(pushed, 0.0)
    return renderer, push, printer


def run(sides: Dict[str, Tuple[Any, Callable, Any]], scrapes: int, pushed: List[str]
        ) -> Dict[str, Dict[str, List[float]]]:
    times: Dict[str, Dict[str, List[float]]] = {
        name: {k: [] for k in ("ahead", "push plain", "push merged", "cached plain",
                               "cached merged")} for name in sides}
    clock = time.perf_counter
    temperature = itertools.count(20)
    for i in range(scrapes):
        change = {obj: {"temperature": float(next(temperature)) + 0.25} for obj in pushed}
        order = list(sides) if i % 2 == 0 else list(sides)[::-1]
        for name in order:
            renderer, push, printer = sides[name]
            bytes_body = name == "before"
            for case in ("push", "cached"):
                for path in ("plain", "merged"):
                    if case == "push":
                        push(change if path == "plain" else {
                            obj: {"temperature": v["temperature"] + 0.5}
                            for obj, v in change.items()})
                        started = clock()
                        while printer.stale():
                            printer.render_ahead(time.perf_counter_ns() + 10**9)
                        times[name]["ahead"].append(clock() - started)
                    started = clock()
                    body = renderer.render(ALL)
                    if path == "plain":
                        utf8(body)
                    elif bytes_body:
                        body.decode("utf-8")
                    times[name][f"{case} {path}"].append(clock() - started)
    return times


async def main_async(args: argparse.Namespace, objects: List[str], status: Dict[str, Any],
                     config: Any) -> None:
    for label, rename in (("body not ASCII (the printer's names)", None),
                          ("body ASCII (the sensor renamed)", ASCII)):
        objs, st, cfg = list(objects), dict(status), dict(config)
        if rename:
            objs = [rename if o == NON_ASCII else o for o in objs]
            st[rename] = st.pop(NON_ASCII)
            cfg[rename] = cfg.pop(NON_ASCII)
        sides = {"before": await side("mp_before", objs, st, cfg),
                 "after": await side("moonraker_prometheus", objs, st, cfg)}
        pushed = [o for o in objs if isinstance(st.get(o), dict) and "temperature" in st[o]]
        run(sides, 50, pushed)  # warm up
        times = run(sides, args.scrapes, pushed)
        after_body = sides["after"][0].render(ALL)
        print(f"{label}: {len(after_body)} characters, {len(utf8(after_body))} bytes, "
              f"{after_body.count(chr(10))} lines; {len(pushed)} objects pushed")
        for case in times["before"]:
            b = statistics.median(times["before"][case]) * 1e6
            a = statistics.median(times["after"][case]) * 1e6
            print(f"  {case:14s} before ({args.before}) {b:8.1f} us, after {a:8.1f} us "
                  f"({(a / b - 1) * 100:+.1f} %)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare with")
    parser.add_argument("--scrapes", type=int, default=2000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="render-ab-")
    try:
        load_revision(args.before, folder)
        from moonraker_prometheus.catalogue.printer import BINDINGS
        from moonraker_prometheus.collectors.printer import Plan

        with Klippy("klipper") as klippy:
            klippy.wait_ready()
            objects = klippy.object_list()
            status = klippy.query(Plan(objects, BINDINGS).subscription)
            config = klippy.query({"configfile": ["config"]})["configfile"]["config"]
        print(f"Python {sys.version.split()[0]}; medians of {args.scrapes} scrapes per "
              "side, interleaved; all modules but exporters (Moonraker's components "
              "absent: the printer's body and the exporter's own families)")
        asyncio.run(main_async(args, objects, status, config))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
