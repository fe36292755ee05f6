"""Moonraker's resident memory with the component and a 20,000-sample merged source.

    .venv/moonraker/bin/python bench/bench_memory.py [--samples 20000] [--scrapes 30]
        [--rounds 2]

Starts real Klippy (simulated printer) once, then, in turns (`--rounds` of each):
- Moonraker without `[prometheus]`, asked `GET /server/info` `--scrapes` times;
- Moonraker with `[prometheus]` and one `[prometheus exporter big]` HTTP source serving
  `--samples` node_exporter-like samples (bench/merge_corpus.py, from a thread of this
  process), scraped `GET /server/metrics` `--scrapes` times (every merge validates and keeps
  the source's series identities, so the steady state is reached after the first scrape);
and reads each Moonraker's VmRSS at the end. Target: the component and the merged source
add at most 15 MiB (medians over the rounds; the machine is shared, so RSS moves by a MiB
or two from run to run).
"""
from __future__ import annotations

import argparse
import http.client
import os
import statistics
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_farm import rss_bytes  # noqa: E402
from bench_merge import serve  # noqa: E402
from merge_corpus import node_like  # noqa: E402

from simulator import Klippy, Moonraker  # noqa: E402

TARGET_MIB = 15.0


def run(klippy: Klippy, path: str, scrapes: int, **options) -> float:
    with Moonraker(klippy, **options) as moonraker:
        moonraker.wait_klippy_ready()
        conn = http.client.HTTPConnection(moonraker.host, moonraker.port, timeout=30)
        for _ in range(scrapes):
            conn.request("GET", path)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError("%s: HTTP %d: %r" % (path, response.status, body[:200]))
        conn.close()
        return rss_bytes(moonraker.proc.pid) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    body = node_like(args.samples)
    server = serve(body)
    source = ("[prometheus exporter big]\nurl: http://127.0.0.1:%d/metrics\n"
              % server.server_address[1])
    without, with_ = [], []
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        for _ in range(args.rounds):
            without.append(run(klippy, "/server/info", args.scrapes, prometheus=None))
            with_.append(run(klippy, "/server/metrics", args.scrapes, extra_config=source))
    server.shutdown()
    a, b = statistics.median(without), statistics.median(with_)
    print("Moonraker VmRSS after %d requests (median of %d rounds): without the component "
          "%.1f MiB, with it and a %d-sample merged source (%d bytes) %.1f MiB" % (
              args.scrapes, args.rounds, a, args.samples, len(body), b))
    print("  rounds without: %s; with: %s" % (
        ", ".join("%.1f" % x for x in without), ", ".join("%.1f" % x for x in with_)))
    print("added by the component: %.1f MiB (target <= %.0f MiB)" % (b - a, TARGET_MIB))
    return 0 if b - a <= TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
