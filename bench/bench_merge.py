"""Sidecar merge benchmark: throughput vs prometheus_client, memory, event-loop stall.

    .venv/moonraker/bin/python bench/bench_merge.py [--samples 20000] [--runs 7]

1. Throughput: merging 4 node-like backends (labels spliced, families merged, rendered) in
   samples/s, divided by a prometheus_client text parse + generate_latest round trip of the
   same bodies in the same run (targets: at least 20x in steady state, when the sources'
   series were seen in the previous scrape, and 10x on a source's first scrape). Medians of
   --runs runs. Beside them, the floor of a first scrape in pure Python (validation_floor:
   what any design validating with one regex must do at least), to show how far the
   first scrape is from it.
2. Memory: tracemalloc peak while merging 100,000 samples (bodies allocated beforehand).
3. Event-loop stall: a Merger collects a 20,000-sample HTTP backend (served from another
   thread) while a ticker coroutine on the same loop records how late each 1 ms tick fires
   (target: longest stall under 5 ms).
4. The same on hostile bodies (hostile_bodies(): a bad value after a first scrape, long
   digit runs, 10 kB label values, 1 MB lines, lines that each fail late): longest stall
   under 5 ms.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from merge_corpus import node_like  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from moonraker_prometheus.sidecar import Merger, build_source  # noqa: E402
from moonraker_prometheus.sidecar.expfmt import _LINES, Rewriter  # noqa: E402
from moonraker_prometheus.sidecar.merge import _finish, _merge_sources  # noqa: E402
from moonraker_prometheus.sidecar.sources import new_spec  # noqa: E402

BACKENDS = 4


def rewriters() -> List[Rewriter]:
    return [Rewriter([("exporter_name", "b%d" % i), ("site", "lab")]) for i in range(BACKENDS)]


def ours(bodies: List[bytes], rws: List[Rewriter]) -> str:
    """What a Merger runs in its worker thread (merge, then health and render)."""
    parts = [("b%d" % i, rw, [body]) for i, (body, rw) in enumerate(zip(bodies, rws))]
    return _finish(_merge_sources(None, parts), Rewriter(rewrite=False), "")


def validation_floor(bodies: List[bytes]) -> str:
    """The least a first scrape of these bodies does in pure Python with a validating
    regex: decode each body, validate every line (expfmt.slices._LINES, one findall), gather its
    series in a set (duplicates) and splice one label in with one replace. No families,
    no HELP/TYPE, no template for the next scrape: a floor, not a merge."""
    out = []
    for i, body in enumerate(bodies):
        text = body.decode()
        found = _LINES.findall(text)
        assert len(found) == text.count("\n") + 1  # every line valid (the last one empty)
        series = set(part for part, name, _, _ in found if name)  # duplicates found here
        assert series
        out.append(text.replace("{", '{exporter_name="b%d",' % i))
    return "".join(out)


class _Families:
    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return self.families


def prometheus_client_round_trip(bodies: List[bytes]) -> bytes:
    out = []
    for body in bodies:
        registry = CollectorRegistry()
        registry.register(_Families(list(text_string_to_metric_families(body.decode()))))
        out.append(generate_latest(registry))
    return b"".join(out)


def median_seconds(fn: Callable[[List[bytes]], object], inputs: List[List[bytes]]) -> float:
    times = []
    for bodies in inputs:
        started = time.perf_counter()
        fn(bodies)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


STEADY_TARGET, FIRST_TARGET = 20.0, 10.0


def throughput(samples: int, runs: int) -> Tuple[float, float]:
    # Every run gets new values for the same series, as successive scrapes do.
    inputs = [[node_like(samples // BACKENDS, seed=1000 * run + i) for i in range(BACKENDS)]
              for run in range(runs + 1)]
    n = sum(1 for b in inputs[0] for line in b.split(b"\n")
            if line and not line.startswith(b"#"))
    rws = rewriters()
    ours(inputs[0], rws)  # the first scrape of a source fills its cache of validated series
    t_warm = median_seconds(lambda bodies: ours(bodies, rws), inputs[1:])
    t_cold = median_seconds(lambda bodies: ours(bodies, rewriters()), inputs[1:])
    t_pc = median_seconds(prometheus_client_round_trip, inputs[1:])
    t_floor = median_seconds(validation_floor, inputs[1:])
    ratio, first = t_pc / t_warm, t_pc / t_cold
    print("1. throughput, %d samples from %d backends, median of %d runs" % (n, BACKENDS, runs))
    print("   sidecar merge, steady state (series seen last scrape): %9.0f samples/s"
          % (n / t_warm))
    print("   sidecar merge, first scrape (every line tokenized):    %9.0f samples/s"
          % (n / t_cold))
    print("   prometheus_client parse + generate_latest:             %9.0f samples/s"
          % (n / t_pc))
    print("   first-scrape floor (validating regex, set and splice):   %9.0f samples/s (%.1fx)"
          % (n / t_floor, t_pc / t_floor))
    print("   ratio: %.1fx steady state, %.1fx first scrape (targets >= %.0fx, >= %.0fx)"
          % (ratio, first, STEADY_TARGET, FIRST_TARGET))
    return ratio, first


def memory() -> float:
    bodies = [node_like(100000 // BACKENDS, seed=i) for i in range(BACKENDS)]
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    rws = rewriters()
    text = ours(bodies, rws)
    peak = tracemalloc.get_traced_memory()[1] - base
    del text
    kept = tracemalloc.get_traced_memory()[0] - base  # the series caches, kept between scrapes
    tracemalloc.stop()
    mib = peak / 1048576.0
    print("2. memory: tracemalloc peak while merging 100,000 samples (first scrape): %.1f MiB "
          "(%.0f bytes/sample); kept between scrapes (series caches): %.1f MiB"
          % (mib, peak / 100000.0, kept / 1048576.0))
    del rws
    return mib


def serve(body: Callable[[], bytes]) -> ThreadingHTTPServer:
    """An HTTP backend on a free loopback port answering every GET with body()."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            data = body()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


async def ticker(lates: List[float], done: asyncio.Event) -> None:
    """Appends to `lates` how late (s) each 1 ms tick of the running loop fires, until
    `done` is set."""
    while not done.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        lates.append(time.perf_counter() - started - 0.001)


def stall(samples: int, scrapes: int) -> float:
    data = node_like(samples)
    server = serve(lambda: data)
    spec = new_spec("big", "http")
    spec.url = "http://127.0.0.1:%d/metrics" % server.server_address[1]
    spec.validate()

    async def run() -> Tuple[List[float], List[float]]:
        merger = Merger([build_source(spec)])
        lates: List[float] = []
        done = asyncio.Event()

        tick = asyncio.ensure_future(ticker(lates, done))
        await merger.collect(None, timeout=10)  # first scrape: connection, thread, caches
        lates.clear()
        started = time.perf_counter()
        for _ in range(scrapes):
            text = await merger.collect(None, timeout=10)
        busy = time.perf_counter() - started
        assert text.count('exporter_name="big"') >= samples
        scraping = list(lates)
        lates.clear()
        await asyncio.sleep(busy)  # the same time with nothing to do: the machine's own noise
        done.set()
        await tick
        await merger.close()
        return scraping, lates

    scraping, idle = asyncio.run(run())
    server.shutdown()
    server.server_close()
    worst = max(scraping) * 1000
    scraping.sort()
    idle.sort()
    print("3. event loop while collecting a %d-sample backend %d times: longest stall %.2f ms, "
          "p99 %.2f ms over %d ticks (target < 5 ms); idle loop, same duration: longest %.2f ms,"
          " p99 %.2f ms" % (samples, scrapes, worst, scraping[int(len(scraping) * 0.99)] * 1000,
                            len(scraping), idle[-1] * 1000, idle[int(len(idle) * 0.99)] * 1000))
    return worst


def hostile_bodies() -> List[Tuple[str, bytes, bytes]]:
    """(what, a first body, the hostile body scraped after it) for the loop-stall check:
    each hostile body follows a first scrape of a well-formed one, so the template path
    meets it as well as the line and slice paths."""
    def counters(n: int, last: str = "") -> bytes:
        lines = ['my_counter{n="%d"} %d' % (i, 1234567890 + i) for i in range(n)]
        if last:
            lines[-1] = 'my_counter{n="%d"} %s' % (n - 1, last)
        return ("# TYPE my_counter counter\n" + "\n".join(lines) + "\n").encode()

    def labelled(n: int, size: int, value: str = "1") -> bytes:
        return "".join('big{i="%d",v="%s"} %s\n' % (i, "x" * size, value)
                       for i in range(n)).encode()

    good = counters(20000)
    return [
        ("one bad value after 20,000 integer series (the freeze)", good, counters(20000, "12x")),
        ("every value a 5,000-digit run, then a bad character", good,
         b"".join(b'my_counter{n="%d"} %sx\n' % (i, b"1" * 5000) for i in range(400))),
        ("10 kB label values, 200 lines", labelled(200, 10000), labelled(200, 10000, "2")),
        ("10 kB label values, each line failing at its end", labelled(200, 10000),
         labelled(200, 10000, "2x")),
        ("1 MB lines among good ones", good,
         good + b"".join(b'huge{v="%s"} 1\n' % (b"y" * (1 << 20)) for _ in range(4))),
        ("a 16 MB line", good, b'huge{v="' + b"y" * (16 << 20) + b'"} 1\n' + good),
        ("20,000 lines each failing late", good,
         b"".join(b'late_failure{a="%d",b="%s"} 123456789 12x\n' % (i, b"z" * 40)
                  for i in range(20000))),
    ]


def hostile_stall() -> float:
    """Longest loop stall while a Merger collects each hostile body (hostile_bodies())."""
    body = [b""]
    server = serve(lambda: body[0])
    spec = new_spec("hostile", "http")
    spec.url = "http://127.0.0.1:%d/metrics" % server.server_address[1]
    spec.max_bytes = 64 << 20
    spec.validate()
    worst_all = 0.0

    async def run(first: bytes, hostile: bytes) -> Tuple[float, float]:
        merger = Merger([build_source(spec)])
        lates: List[float] = []
        done = asyncio.Event()

        body[0] = first
        tick = asyncio.ensure_future(ticker(lates, done))
        await merger.collect(None, timeout=30)
        lates.clear()
        body[0] = hostile
        started = time.perf_counter()
        for _ in range(3):
            await merger.collect(None, timeout=30)
        took = (time.perf_counter() - started) / 3
        done.set()
        await tick
        await merger.close()
        return max(lates) * 1000, took

    print("4. event loop while collecting hostile bodies (target: longest stall < 5 ms)")
    for what, first, hostile in hostile_bodies():
        worst, took = asyncio.run(run(first, hostile))
        worst_all = max(worst_all, worst)
        print("   %-58s longest stall %6.2f ms, scrape %7.1f ms" % (what, worst, took * 1000))
    server.shutdown()
    server.server_close()
    return worst_all


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-hostile", action="store_true",
                        help="skip 4. (for code older than the hostile bodies' fixes, which "
                        "hangs on them)")
    args = parser.parse_args()
    print("Python %s, %d CPUs" % (sys.version.split()[0], os.cpu_count() or 0))
    ratio, first = throughput(args.samples, args.runs)
    mib = memory()
    worst = stall(20000, 10)
    hostile = hostile_stall() if not args.no_hostile else float("nan")
    print("\nsummary: %.1fx prometheus_client in steady state (target >= %.0fx: %s), %.1fx on a "
          "first scrape (target >= %.0fx: %s); %.1f MiB per 100k samples; longest loop stall "
          "%.2f ms (target < 5 ms: %s), on hostile bodies %.2f ms (target < 5 ms: %s)"
          % (ratio, STEADY_TARGET, "met" if ratio >= STEADY_TARGET else "NOT met", first,
             FIRST_TARGET, "met" if first >= FIRST_TARGET else "NOT met", mib, worst,
             "met" if worst < 5 else "NOT met", hostile, "met" if hostile < 5 else "NOT met"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
