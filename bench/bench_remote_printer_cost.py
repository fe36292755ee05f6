"""What the central exporter costs the printer: Moonraker's and Klippy's CPU on the live
simulated printer, over the same window, with nothing scraping, with the component's
/server/metrics scraped every `--interval` seconds, and with the central exporter attached
and probed every `--interval` seconds (from /proc/PID/stat: user + system time).

The printer idles (ready, heaters off): Klippy pushes what changes every 250 ms either way;
the exporter adds one websocket subscriber to Moonraker (its pushes, proc_stats every
second) and its background refreshes.

prometheus-klipper-exporter's request pattern, emulated (its binary is not available here):
at each probe, its requests for each module that tests/go_families.py names for a stock
printer's families (`process_stats`, `network_stats`, `system_info`, `job_queue`,
`directory_info`, `printer_objects`, `history`; see GO_REQUESTS: an assumption of this
bench, its exact default list is not known here), then once more with `query_endstops`,
the module docs/remote.md measures for its cost to a print. `printer_objects` lists Klippy's
objects and queries those of the kinds its families read (GO_OBJECT_KINDS, from
tests/go_families.py), every field, as the Go exporter decodes whole objects.
Usage: `.venv/moonraker/bin/python bench/bench_remote_printer_cost.py [--window 60]`
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from typing import Callable, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.procfs import cpu_seconds  # noqa: E402
from simulator import Klippy, Moonraker, free_port, wait_for  # noqa: E402
from simulator.procs import REPO_ROOT, spawn, terminate  # noqa: E402

# prometheus-klipper-exporter's requests per module (HTTP GETs to Moonraker, in order)
GO_REQUESTS = {
    "process_stats": ["/machine/proc_stats"],
    "network_stats": ["/machine/proc_stats"],
    "system_info": ["/machine/system_info"],
    "job_queue": ["/server/job_queue/status"],
    "directory_info": ["/server/files/directory?path=gcodes&extended=false"],
    "printer_objects": ["/printer/objects/list", "QUERY"],  # QUERY: see go_query()
    "history": ["/server/history/totals", "/server/history/list?limit=1&order=desc"],
    "query_endstops": ["/printer/query_endstops/status"],
}
GO_OBJECT_KINDS = ("gcode_move", "toolhead", "mcu", "extruder", "heater_bed", "fan",
                   "idle_timeout", "virtual_sdcard", "print_stats", "display_status",
                   "webhooks", "pause_resume", "temperature_sensor", "temperature_fan",
                   "temperature_probe", "output_pin", "fan_generic", "controller_fan",
                   "heater_fan", "filament_switch_sensor", "filament_motion_sensor",
                   "heater_generic", "tmc2209", "tmc2130", "tmc5160", "tmc2240",
                   "input_shaper", "firmware_retraction")


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def go_probe(base_url: str, modules: Tuple[str, ...]) -> None:
    """One probe of prometheus-klipper-exporter with `modules`: its HTTP requests."""
    for module in modules:
        listed: List[str] = []
        for path in GO_REQUESTS[module]:
            if path != "QUERY":
                body = get(base_url + path)
                if path == "/printer/objects/list":
                    listed = json.loads(body)["result"]["objects"]
                continue
            wanted = [o for o in listed if o.split()[0].split(":")[0] in GO_OBJECT_KINDS]
            get(base_url + "/printer/objects/query?"
                + "&".join(urllib.parse.quote(o) for o in wanted))


def window(pids: Dict[str, int], seconds: float, interval: float,
           scrape: Optional[Callable[[], None]]) -> Dict[str, float]:
    """Percent of one core each process used over `seconds`, scraping every `interval`."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    started = time.monotonic()
    next_scrape = started
    while time.monotonic() - started < seconds:
        if scrape is not None and time.monotonic() >= next_scrape:
            scrape()
            next_scrape += interval
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    return {name: (cpu_seconds(pid) - before[name]) / elapsed * 100
            for name, pid in pids.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args()
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy) as moonraker:
            moonraker.wait_klippy_ready()
            time.sleep(5)
            pids = {"moonraker": moonraker.proc.pid, "klippy": klippy.proc.pid}
            results = {"nothing scraping": window(pids, args.window, args.interval, None)}
            metrics = f"{moonraker.base_url}/server/metrics"
            results[f"component /server/metrics every {args.interval:g} s"] = window(
                pids, args.window, args.interval, lambda: get(metrics))
            base = moonraker.base_url
            readme = tuple(m for m in GO_REQUESTS if m != "query_endstops")
            results[f"Go exporter's requests every {args.interval:g} s"] = window(
                pids, args.window, args.interval, lambda: go_probe(base, readme))
            results["the same with query_endstops"] = window(
                pids, args.window, args.interval,
                lambda: go_probe(base, (*readme, "query_endstops")))
            port = free_port()
            log = os.path.join(tempfile.mkdtemp(), "remote.log")
            target = f"{moonraker.host}:{moonraker.port}"
            remote = spawn([sys.executable, "-m", "moonraker_prometheus.remote", "--listen",
                            f"127.0.0.1:{port}", "--target", target], "remote", log,
                           cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
            probe = f"http://127.0.0.1:{port}/probe?target={target}"
            try:
                wait_for(lambda: b"\nprobe_success 1" in get(probe), 20, 0.2,
                         "remote exporter")
                time.sleep(5)
                results[f"remote /probe every {args.interval:g} s"] = window(
                    pids, args.window, args.interval, lambda: get(probe))
            finally:
                terminate(remote)
    print(f"CPU, % of one core, over {args.window:g} s windows (idle printer):")
    for name, used in results.items():
        print(f"  {name:42s} moonraker {used['moonraker']:5.2f} %  "
              f"klippy {used['klippy']:5.2f} %")


if __name__ == "__main__":
    main()
