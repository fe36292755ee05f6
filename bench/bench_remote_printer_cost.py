"""What the central exporter costs the printer: Moonraker's and Klippy's CPU on the live
simulated printer, over the same window, with nothing scraping, with the component's
/server/metrics scraped every `--interval` seconds, and with the central exporter attached
and probed every `--interval` seconds (from /proc/PID/stat: user + system time).

The printer idles (ready, heaters off): Klippy pushes what changes every 250 ms either way;
the exporter adds one websocket subscriber to Moonraker (its pushes, proc_stats every
second) and its background refreshes.
Usage: `.venv/moonraker/bin/python bench/bench_remote_printer_cost.py [--window 60]`
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import urllib.request
from typing import Callable, Dict, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import Klippy, Moonraker, free_port, wait_for  # noqa: E402
from simulator.procs import REPO_ROOT, spawn, terminate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()


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
            port = free_port()
            log = os.path.join(tempfile.mkdtemp(), "remote.log")
            target = f"{moonraker.host}:{moonraker.port}"
            remote = spawn([sys.executable, "-m", "moonraker_prometheus.remote", "--listen",
                            f"127.0.0.1:{port}", "--target", target], "remote", log,
                           cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT})
            probe = f"http://127.0.0.1:{port}/probe?target={target}"
            try:
                wait_for(lambda: get(probe) is None, 20, 0.2, "remote exporter")
                time.sleep(5)
                results[f"remote /probe every {args.interval:g} s"] = window(
                    pids, args.window, args.interval, lambda: get(probe))
            finally:
                terminate(remote)
    print(f"CPU, % of one core, over {args.window:g} s windows (idle printer):")
    for name, used in results.items():
        print(f"  {name:40s} moonraker {used['moonraker']:5.2f} %  "
              f"klippy {used['klippy']:5.2f} %")


if __name__ == "__main__":
    main()
