"""Scrape latency and event-loop stalls of /server/metrics on the rich simulated printer.

Starts real Klippy (live against the simulated MCUs, simulator/printer.cfg) and real Moonraker with
`[prometheus]` (trusted loopback) and the bench-only `[loop_monitor]` component
(bench/loop_monitor.py, linked into Moonraker's components folder), then:

1. Latency: over ONE keep-alive HTTP connection, interleaves `GET /server/info`,
   `GET /server/metrics` (all modules) and `GET /server/metrics?modules=klippy,printer`
   (rotating the order every round) and reports medians and the ratio
   metrics / info (target <= 1.15). The all-modules vs klippy,printer difference is what
   the Moonraker-side collectors add.
2. CPU, two ways, the bench ticker stopped (target: metrics / info <= 1.25):
   - per request: the CPU time of Moonraker's event-loop thread (/proc/PID/schedstat,
     user and system) read around each request of `--rounds` more interleaved rounds, with
     Moonraker idle before and after each (medians);
   - in bursts: the CPU time of all Moonraker's threads (/proc/PID/stat, clock ticks)
     over alternating bursts of `--burst-requests` requests of each path, `--burst-rounds`
     of each (medians). Back-to-back requests keep Moonraker's code and data in the CPU's
     caches; a scraper's requests, seconds apart, do not.
3. Event-loop stalls: the longest single loop callback (wall and CPU time, with what it
   ran and its garbage collection) and the lateness of a ~1 ms asyncio ticker inside
   Moonraker during an idle window and bursts of each request (target: no callback in a
   /server/metrics burst uses 1 ms of CPU; wall time also counts preemption by other
   processes on a busy host).
4. Spaced: `--spaced` pairs of /server/info and /server/metrics requests, each one second
   after the previous request, as a scraper's arrive (Moonraker's code and data no longer in
   the CPU's caches, printer objects and proc_stats changed since): median latencies and the
   collectors' render time taken from the scrape's own duration samples. No target: this is
   what a real scrape costs.
5. `--profile`: cProfile of the printer render path in this process, on the printer's
   real status (queried once from Klippy), cached and rendered in full from a fresh
   state, and of the component's render inside Moonraker.

A scrape every 250 ms or more often finds some printer objects changed since the last
one (Klippy pushes temperatures every 250 ms, MCU statistics every second) and re-renders
only those; the other collectors re-render when what they read changes (proc_stats every
second). Back-to-back requests therefore measure the path of a scrape that finds most of
its text cached, plus the re-renders a live printer causes per second.

Usage: .venv/moonraker/bin/python bench/bench_scrape.py [--rounds 600] [--burst 3]
       [--flavour klipper|kalico] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import http.client
import io
import json
import os
import pstats
import statistics
import sys
import time
from typing import Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_simulated_mcus import cpu_seconds  # noqa: E402

from simulator import Klippy, Moonraker, component_link  # noqa: E402

LOOP_MONITOR = os.path.join(REPO, "bench", "loop_monitor.py")
RATIO_TARGET = 1.15
CPU_TARGET = 1.25
STALL_TARGET = 0.001  # CPU time of the longest loop callback in a /server/metrics burst
PATHS = {
    "info": "/server/info",
    "metrics": "/server/metrics",
    "klippy,printer": "/server/metrics?modules=klippy,printer",
}


def link_loop_monitor() -> str:
    components = os.path.dirname(component_link())
    link = os.path.join(components, "loop_monitor.py")
    if os.path.realpath(link) != os.path.realpath(LOOP_MONITOR):
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(LOOP_MONITOR, link)
    return link


class Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=30)

    def get(self, path: str) -> Tuple[float, bytes]:
        start = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        body = response.read()
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status}: {body[:200]!r}")
        return elapsed, body

    def json(self, path: str) -> Dict:
        return json.loads(self.get(path)[1])["result"]


def wait_printer_series(client: Client, timeout: float = 15.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, body = client.get(PATHS["metrics"])
        if b"klipper_webhooks_state_info" in body:
            return body
        time.sleep(0.1)
    raise RuntimeError("printer series never appeared")


def latency(client: Client, rounds: int) -> Dict[str, List[float]]:
    names = list(PATHS)
    times: Dict[str, List[float]] = {n: [] for n in names}
    for i in range(rounds):
        order = names[i % len(names):] + names[:i % len(names)]
        for name in order:
            times[name].append(client.get(PATHS[name])[0])
    return times


def loop_cpu_seconds(pid: int) -> float:
    """CPU time (user and system) of a process's main thread so far, in seconds: Moonraker's
    event loop (/proc/PID/schedstat, nanoseconds)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def cpu_in_bursts(client: Client, pid: int, rounds: int, requests: int
                  ) -> Dict[str, List[float]]:
    """Moonraker's CPU seconds per request of /server/info and /server/metrics, one value
    per burst of `requests`, alternating which comes first, the bench ticker stopped."""
    client.json("/server/loop_monitor?ticker=false")
    per: Dict[str, List[float]] = {"info": [], "metrics": []}
    for r in range(rounds):
        for name in ("info", "metrics") if r % 2 == 0 else ("metrics", "info"):
            cpu = cpu_seconds(pid)
            for _ in range(requests):
                client.get(PATHS[name])
            per[name].append((cpu_seconds(pid) - cpu) / requests)
    client.json("/server/loop_monitor?ticker=true")
    return per


def cpu_per_request(client: Client, pid: int, rounds: int) -> Dict[str, List[float]]:
    """CPU seconds Moonraker's event-loop thread spends per request, for each request of
    PATHS, interleaved like `latency()` (bench ticker stopped). The kernel brings a running
    thread's CPU time up to date when it sleeps, so each reading waits until Moonraker is
    idle again (0.3 ms)."""
    client.json("/server/loop_monitor?ticker=false")
    names = list(PATHS)
    per: Dict[str, List[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names):] + names[:i % len(names)]:
            time.sleep(0.0003)
            cpu = loop_cpu_seconds(pid)
            client.get(PATHS[name])
            time.sleep(0.0003)
            per[name].append(loop_cpu_seconds(pid) - cpu)
    client.json("/server/loop_monitor?ticker=true")
    return per


def spaced(client: Client, pairs: int) -> Dict[str, List[float]]:
    """Latency of /server/info and /server/metrics requests one second apart, and the sum of
    the collectors' duration samples of each scrape (seconds)."""
    found: Dict[str, List[float]] = {"info": [], "metrics": [], "render": []}
    for _ in range(pairs):
        for name in ("info", "metrics"):
            time.sleep(1.0)
            elapsed, body = client.get(PATHS[name])
            found[name].append(elapsed)
        found["render"].append(sum(
            float(line.rsplit(" ", 1)[1]) for line in body.decode().splitlines()
            if line.startswith("klipper_exporter_collector_duration_seconds{")))
    return found


def stall(client: Client, path: str, seconds: float) -> Dict:
    """Loop-monitor report of a burst of `path` requests (or an idle window)."""
    client.json("/server/loop_monitor?reset=true")
    deadline = time.monotonic() + seconds
    requests = 0
    if path:
        while time.monotonic() < deadline:
            client.get(path)
            requests += 1
    else:
        time.sleep(seconds)
    report = client.json("/server/loop_monitor?reset=true")
    report["requests"] = requests
    return report


def profile_render(klippy: Klippy, repeat: int) -> str:
    """cProfile the printer render path in-process on the printer's real status."""
    from moonraker_prometheus.catalogue.printer import BINDINGS
    from moonraker_prometheus.collectors.printer import Plan, PrinterState

    plan = Plan(klippy.object_list(), BINDINGS)
    status = klippy.query(plan.subscription)
    state = PrinterState(plan, status)
    out = io.StringIO()
    start = time.perf_counter()
    for _ in range(repeat):
        state.render()
    cached = (time.perf_counter() - start) / repeat

    def full() -> None:
        for _ in range(repeat):
            PrinterState(plan, status).render()
    start = time.perf_counter()
    full()
    uncached = (time.perf_counter() - start) / repeat
    profiler = cProfile.Profile()
    profiler.enable()
    full()
    profiler.disable()
    body = state.render()
    out.write(f"printer render in-process: {len(plan.entries)} entries, "
              f"{body.count(chr(10))} lines, {len(body)} bytes\n")
    out.write(f"  cached render     {cached * 1e6:8.1f} us\n")
    out.write(f"  fresh state, rendered in full {uncached * 1e6:8.1f} us\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(15)
    return out.getvalue()


def ms(v: float) -> str:
    return f"{v * 1000:7.3f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--burst", type=float, default=3.0, help="seconds per stall window")
    parser.add_argument("--spaced", type=int, default=15, help="pairs one second apart")
    parser.add_argument("--burst-rounds", type=int, default=5)
    parser.add_argument("--burst-requests", type=int, default=1000)
    parser.add_argument("--flavour", default="klipper")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    link_loop_monitor()
    with Klippy(args.flavour) as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, extra_config="[loop_monitor]\n") as moonraker:
            moonraker.wait_klippy_ready()
            client = Client(moonraker.host, moonraker.port)
            body = wait_printer_series(client)
            lines = [ln for ln in body.decode().splitlines() if ln and not ln.startswith("#")]
            latency(client, 50)  # warm up
            times = latency(client, args.rounds)
            med = {name: statistics.median(v) for name, v in times.items()}
            p90 = {name: sorted(v)[int(0.9 * len(v))] for name, v in times.items()}
            cpu = cpu_per_request(client, moonraker.proc.pid, args.rounds)
            bursts = cpu_in_bursts(client, moonraker.proc.pid, args.burst_rounds,
                                   args.burst_requests)
            cold = spaced(client, args.spaced)
            stalls = {
                "idle": stall(client, "", args.burst),
                "/server/info burst": stall(client, PATHS["info"], args.burst),
                "/server/metrics burst": stall(client, PATHS["metrics"], args.burst),
                "klippy,printer burst": stall(client, PATHS["klippy,printer"], args.burst),
            }
            profile = ""
            if args.profile:
                profile = profile_render(klippy, 200)
                for mods in ("", "klippy,printer"):
                    rep = client.json(f"/server/loop_monitor/profile?n=300&modules={mods}")
                    profile += (f"\ncomponent.render({','.join(rep['modules'])}) inside "
                                f"Moonraker: {rep['render_seconds'] * 1e6:.1f} us per render\n"
                                + rep["stats"])

    ratio = med["metrics"] / med["info"]
    ratio_printer = med["klippy,printer"] / med["info"]
    extra = med["metrics"] - med["klippy,printer"]
    print(f"simulated printer ({args.flavour}): {len(lines)} samples, {len(body)} bytes "
          f"per full scrape; {args.rounds} interleaved rounds on one keep-alive connection")
    print(f"{'request':28s} {'median':>10s} {'p90':>10s}")
    for name in PATHS:
        print(f"{PATHS[name]:40s} {ms(med[name])} {ms(p90[name])}")
    print(f"ratio metrics / info (median)            {ratio:6.2f}  (target <= {RATIO_TARGET})")
    print(f"ratio klippy,printer / info (median)     {ratio_printer:6.2f}")
    print(f"Moonraker collectors add (median diff)   {ms(extra)}")
    cpu_med = {name: statistics.median(v) for name, v in cpu.items()}
    cpu_ratio = cpu_med["metrics"] / cpu_med["info"]
    print("Moonraker event-loop CPU per request (median): " + ", ".join(
        f"{PATHS[name]} {ms(v)}" for name, v in cpu_med.items())
        + f"; ratio metrics / info {cpu_ratio:.2f}  (target <= {CPU_TARGET})")
    burst_med = {name: statistics.median(v) for name, v in bursts.items()}
    burst_ratio = burst_med["metrics"] / burst_med["info"]
    print(f"Moonraker CPU per request in bursts (median of {args.burst_rounds} bursts of "
          f"{args.burst_requests}): /server/info {ms(burst_med['info'])}, /server/metrics "
          f"{ms(burst_med['metrics'])}, ratio {burst_ratio:.2f}  (target <= {CPU_TARGET}; "
          "bursts: " + ", ".join(f"{i * 1e3:.3f}/{m * 1e3:.3f}" for i, m in
                                 zip(bursts["info"], bursts["metrics"])) + " ms)")
    cold_med = {name: statistics.median(v) for name, v in cold.items()}
    print(f"spaced one second apart ({args.spaced} pairs, medians): /server/info "
          f"{ms(cold_med['info'])}, /server/metrics {ms(cold_med['metrics'])}, ratio "
          f"{cold_med['metrics'] / cold_med['info']:.2f}; the collectors' render "
          f"{ms(cold_med['render'])} (max {ms(max(cold['render']))})")
    print("event loop: longest single callback, and lateness of a 1 ms ticker (max / p99):")
    for name, rep in stalls.items():
        print(f"  {name:24s} callback max {ms(rep['max_callback'])} "
              f"(CPU {ms(rep['max_callback_cpu'])}), >1 ms: "
              f"{rep['callbacks_over_1ms']:3d}, >2 ms: {rep['callbacks_over_2ms']:3d} | ticker "
              f"max {ms(rep['max_lateness'])} p99 {ms(rep['p99_lateness'])} "
              f"({rep['requests']} requests)")
    for name, rep in stalls.items():
        print(f"  slowest callback, {name}: wall: {rep['slowest_callback'][:120]} (garbage "
              f"collection in it: {ms(rep['slowest_callback_gc'])}); CPU: "
              f"{rep['slowest_cpu_callback'][:120]} (garbage collection in it: "
              f"{ms(rep['slowest_cpu_callback_gc'])})")
    worst = stalls["/server/metrics burst"]["max_callback"]
    worst_cpu = stalls["/server/metrics burst"]["max_callback_cpu"]
    print(f"longest callback during scrapes {ms(worst)} wall, {ms(worst_cpu)} CPU "
          f"(target < {STALL_TARGET * 1000:.0f} ms CPU; wall time includes preemption on a "
          f"busy host: compare with the /server/info burst)")
    if profile:
        print(profile)
    ok = (ratio <= RATIO_TARGET and cpu_ratio <= CPU_TARGET and burst_ratio <= CPU_TARGET
          and worst_cpu < STALL_TARGET)
    print("RESULT:", "targets met" if ok else "target missed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
