"""What prometheus-klipper-exporter's default `query_endstops` module costs a print, and what
the central exporter's probes cost it, on the live simulated printer.

prometheus-klipper-exporter's `query_endstops` module asks Moonraker for
`/printer/query_endstops/status` at each probe; Klippy answers it by querying the endstops,
which waits for the MCU to catch up with every queued move (Klippy's G-code lock and a
flush of the motion queue). The central exporter reads subscribed state only.

One travel-only print (no heating: SET_KINEMATIC_POSITION, then short G1 moves) is run
several ways and timed from start to `complete` (print_stats.total_duration: a
travel-only print has no print_duration, which starts at the first extrusion):
  alone; with `GET /printer/query_endstops/status` back to back, every 1 s and every
  15 s; and with the central exporter probed back to back and every 5 s. The exporter runs
  on the printer's host here (it belongs on the Prometheus host): back to back, its CPU
  competes with Klippy's on this 2-core machine.
Usage: `.venv/moonraker/bin/python bench/bench_query_endstops.py [--moves N]`
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import Klippy, Moonraker, free_port, wait_for  # noqa: E402
from simulator.procs import REPO_ROOT, spawn, terminate  # noqa: E402

FILE = "travel_bench.gcode"


def travel_gcode(moves: int) -> str:
    lines = ["SET_KINEMATIC_POSITION X=100 Y=100 Z=10", "G90", "G1 F6000"]
    for i in range(moves):
        x = 100 + (5 if i % 2 else 0)
        y = 100 + (i % 20)
        lines.append(f"G1 X{x} Y{y}")
    return "\n".join(lines) + "\n"


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=30) as r:
        r.read()


def run_print(moonraker: Moonraker, klippy: Klippy,
              load: Optional[Callable[[threading.Event], None]]) -> float:
    """Seconds the print took (print_stats.total_duration) with `load` running beside."""
    stop = threading.Event()
    thread = None
    assert moonraker.post("/printer/print/start", params={"filename": FILE}).status == 200
    klippy.wait_status("print_stats", "state", "printing", timeout=10)
    if load is not None:
        thread = threading.Thread(target=load, args=(stop,), daemon=True)
        thread.start()
    klippy.wait_status("print_stats", "state", "complete", timeout=600)
    stop.set()
    if thread is not None:
        thread.join()
    duration = klippy.query({"print_stats": ["total_duration"]})["print_stats"][
        "total_duration"]
    return float(duration)


def loop(url: str, interval: float, counter: list) -> Callable[[threading.Event], None]:
    def run(stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            get(url)
            counter.append(time.monotonic() - started)
            if interval:
                stop.wait(max(0.0, interval - (time.monotonic() - started)))
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--moves", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, prometheus=None) as moonraker:
            moonraker.wait_klippy_ready()
            with open(os.path.join(klippy.data_dir, "gcodes", FILE), "w") as f:
                f.write(travel_gcode(args.moves))
            port = free_port()
            log = os.path.join(tempfile.mkdtemp(), "remote.log")
            remote = spawn([sys.executable, "-m", "moonraker_prometheus.remote", "--listen",
                            f"127.0.0.1:{port}", "--target",
                            f"{moonraker.host}:{moonraker.port}"], "remote", log,
                           cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
            probe = (f"http://127.0.0.1:{port}/probe?target="
                     f"{moonraker.host}:{moonraker.port}")
            wait_for(lambda: get(probe) is None, 20, 0.2, "remote exporter")
            endstops = f"{moonraker.base_url}/printer/query_endstops/status"
            cases = [("alone", 0.0, None), ("query_endstops back to back", 0.0, endstops),
                     ("query_endstops every 1 s", 1.0, endstops),
                     ("query_endstops every 15 s", 15.0, endstops),
                     ("remote /probe back to back", 0.0, probe),
                     ("remote /probe every 5 s", 5.0, probe)]
            results = {}
            try:
                for _ in range(args.runs):
                    for name, interval, url in cases:
                        calls: list = []
                        load = None if url is None else loop(url, interval, calls)
                        took = run_print(moonraker, klippy, load)
                        results.setdefault(name, []).append(took)
                        answer = (f", {len(calls)} requests, median "
                                  f"{statistics.median(calls) * 1000:.1f} ms"
                                  if calls else "")
                        print(f"{name:32s} print took {took:6.1f} s{answer}", flush=True)
            finally:
                terminate(remote)
    base = statistics.median(results["alone"])
    print(f"\n{args.moves} travel moves; speed relative to the print alone (median):")
    for name, took in results.items():
        print(f"  {name:32s} {base / statistics.median(took) * 100:5.1f} %")


if __name__ == "__main__":
    main()
