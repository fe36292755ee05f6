"""What a probe of the central exporter costs, on the live simulated printer: latency, and
requests the exporter sends Moonraker per probe, beside the component's /server/metrics.

One real Klippy and Moonraker (with the component, and the stand-in services: MQTT sensor,
Spoolman, power relay), the exporter as its own process. Probes are sent one at a time
(`--probes` of them, `--interval` seconds apart), all modules; the requests come from the
exporter's own klipper_remote_target_requests_total (every JSON-RPC request it sent: the
background refreshes between probes included).
Usage: `.venv/moonraker/bin/python bench/bench_remote_probe.py [--probes 300] [--interval 0.1]`
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from typing import List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from simulator import Klippy, Moonraker, free_port, wait_for  # noqa: E402
from simulator.mqtt_standin import MqttStandin  # noqa: E402
from simulator.procs import REPO_ROOT, spawn, terminate  # noqa: E402
from simulator.services import moonraker_conf, settle  # noqa: E402
from simulator.spoolman_standin import SpoolmanStandin  # noqa: E402


def timed(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    return time.perf_counter() - started


def requests_sent(base: str, target: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    m = re.search(r'^klipper_remote_target_requests_total\{target="%s"\} (\S+)$'
                  % re.escape(target), text, re.M)
    assert m, "no request counter"
    return float(m.group(1))


def pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--interval", type=float, default=0.1)
    args = parser.parse_args()
    spoolman = SpoolmanStandin().start()
    try:
        with MqttStandin() as mqtt, Klippy("klipper") as klippy:
            klippy.wait_ready()
            with Moonraker(klippy, extra_config=moonraker_conf(mqtt.port, spoolman.url)
                           ) as moonraker:
                settle(moonraker)
                target = f"{moonraker.host}:{moonraker.port}"
                port = free_port()
                log = os.path.join(tempfile.mkdtemp(), "remote.log")
                remote = spawn([sys.executable, "-m", "moonraker_prometheus.remote",
                                "--listen", f"127.0.0.1:{port}", "--target", target],
                               "remote", log, cwd=REPO_ROOT,
                               env={**os.environ, "PYTHONPATH": REPO_ROOT})
                base = f"http://127.0.0.1:{port}"
                probe = f"{base}/probe?target={target}"
                try:
                    wait_for(lambda: timed(probe) is not None, 20, 0.2, "exporter")
                    time.sleep(2.0)  # first background fetches done
                    before = requests_sent(base, target)
                    started = time.monotonic()
                    probes = []
                    for _ in range(args.probes):
                        probes.append(timed(probe))
                        time.sleep(args.interval)
                    elapsed = time.monotonic() - started
                    sent = requests_sent(base, target) - before
                    component = []
                    for _ in range(args.probes):
                        component.append(timed(f"{moonraker.base_url}/server/metrics"))
                        time.sleep(args.interval)
                finally:
                    terminate(remote)
    finally:
        spoolman.stop()
    for name, times in (("remote /probe", probes), ("component /server/metrics", component)):
        print(f"{name:28s} median {statistics.median(times) * 1000:6.2f} ms  "
              f"p99 {pct(times, 0.99) * 1000:6.2f} ms  ({len(times)} requests)")
    print(f"requests from the exporter to Moonraker during {args.probes} probes "
          f"({elapsed:.0f} s): {sent:.0f} ({sent / args.probes:.3f} per probe, all of "
          f"them background refreshes)")


if __name__ == "__main__":
    main()
