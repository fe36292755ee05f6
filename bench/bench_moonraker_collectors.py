"""What the Moonraker-side collectors cost a scrape, inside a real Moonraker.

Starts real Klippy (live, simulated MCUs) and real Moonraker with the component, a [power] device,
the job queue, an MQTT [sensor] (simulator/mqtt_standin.py) and [spoolman]
(simulator/spoolman_standin.py), then scrapes /server/metrics many times and reports:

- per collector: the median of `klipper_exporter_collector_duration_seconds{collector}`
  (time spent in its render(), measured by the component itself);
- end to end: median latency of `/server/metrics?modules=klippy,printer` against all
  modules, and `/server/info` for reference.

Target (project issue 4): the Moonraker-side collectors add at most 1 ms to the median
scrape. Usage: `.venv/moonraker/bin/python bench/bench_moonraker_collectors.py [--scrapes N]`
(exit 1 when the target is missed).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from moonraker_prometheus.collectors import module_names  # noqa: E402
from simulator import Klippy, Moonraker  # noqa: E402
from simulator.mqtt_standin import MqttStandin  # noqa: E402
from simulator.spoolman_standin import SpoolmanStandin  # noqa: E402
from simulator.services import moonraker_conf, samples, settle  # noqa: E402

OURS = ("server", "process", "system", "network", "jobs", "history", "disk", "power",
        "sensors", "spoolman", "updates")
TARGET_SECONDS = 0.001


def timed_get(moonraker: Moonraker, path: str, params: Dict[str, str]) -> float:
    start = time.perf_counter()
    response = moonraker.get(path, params=params)
    elapsed = time.perf_counter() - start
    assert response.status == 200, response.text
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scrapes", type=int, default=300)
    args = parser.parse_args()
    with MqttStandin() as mqtt, SpoolmanStandin() as spoolman, Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, extra_config=moonraker_conf(mqtt.port, spoolman.url)) as m:
            settle(m)
            mqtt.publish("test/room/state", b'{"temperature": 21.5, "humidity": 40}')
            time.sleep(2.0)  # CPU figures, disk usage, spool list, sensor value all known
            durations: Dict[str, List[float]] = {name: [] for name in module_names()}
            for _ in range(args.scrapes):
                found = samples(m.metrics().text)
                for name in durations:
                    key = f'klipper_exporter_collector_duration_seconds{{collector="{name}"}}'
                    if key in found:
                        durations[name].append(found[key])
            latency: Dict[str, List[float]] = {"info": [], "base": [], "all": []}
            base = {"modules": "klippy,printer"}
            for _ in range(args.scrapes):
                latency["info"].append(timed_get(m, "/server/info", {}))
                latency["base"].append(timed_get(m, "/server/metrics", base))
                latency["all"].append(timed_get(m, "/server/metrics", {}))
    print(f"{args.scrapes} scrapes, medians of render() time per collector (microseconds):")
    ours_total = 0.0
    for name, values in durations.items():
        median = statistics.median(values) if values else float("nan")
        if name in OURS:
            ours_total += median
        print(f"  {name:10s} {median * 1e6:9.1f}{'' if name in OURS else '   (not ours)'}")
    print(f"  sum of the Moonraker-side collectors: {ours_total * 1e6:.1f} us")
    med = {k: statistics.median(v) for k, v in latency.items()}
    print("end-to-end median latency (ms): /server/info %.3f, /server/metrics?modules="
          "klippy,printer %.3f, all modules %.3f (difference %.3f)"
          % (med["info"] * 1e3, med["base"] * 1e3, med["all"] * 1e3,
             (med["all"] - med["base"]) * 1e3))
    ok = ours_total <= TARGET_SECONDS
    print("target: Moonraker-side collectors add <= 1 ms: %s" % ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
