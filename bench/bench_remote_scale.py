"""1,000 printers on one central exporter: its CPU, memory and probe latency at 10, 100 and
1,000 targets.

The printers are stand-in Moonrakers (bench/bench_remote_standins.py), all in one process
of their own, each on its own loopback port: they answer the exporter's JSON-RPC calls with
the answers of the live simulated printer and replay its notifications (status pushes at
Klippy's 250 ms cadence while heating, proc_stats every second), recorded once by
bench/bench_remote_record.py (`--fixture`; recorded first when the file does not exist).
The exporter runs as its own process with every stand-in listed; this process probes each
target every `--interval` seconds, the probes spread evenly, all modules, gzip accepted
and connections kept alive as Prometheus does. After every target has answered once and
one more round, it measures over `--window` seconds: the exporter's CPU (user + system
from /proc, % of one core), its RSS at the end, and each probe's latency (sent to last
byte). Per printer: CPU and the RSS above the exporter's own before its first target.
The exporter runs under bench/remote_profiled.py, which measures over the same window what
the exporter itself controls whatever the machine's load: its longest cyclic GC pause and
its loop's lag (a 10 ms ticker's lateness), and with `--profile FILE` a cProfile (slower:
not for the CPU figures). `--exporter-root DIR` runs another checkout's exporter (a git
worktree of an older commit) against the same stand-ins, for a before/after. `--idle`:
no probe in the window (after the first probe of each target): what the connections alone
cost, per websocket message.
Usage: `.venv/moonraker/bin/python bench/bench_remote_scale.py [--counts 10,100,1000]`
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.bench_remote_record import DEFAULT_FIXTURE, load_or_record  # noqa: E402
from bench.procfs import cpu_seconds, rss_bytes  # noqa: E402
from simulator import free_port  # noqa: E402
from simulator.procs import REPO_ROOT, terminate  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class Client:
    """HTTP/1.1 GETs on kept-alive connections to 127.0.0.1:`port` (a small pool)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: List[Tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def get(self, path: str) -> Tuple[int, bytes]:
        while self.idle:  # a kept connection the server closed meanwhile: the next one
            reader, writer = self.idle.pop()
            if not reader.at_eof():
                break
            writer.close()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        conn = reader, writer
        writer.write(f"GET {path} HTTP/1.1\r\nHost: exporter\r\nAccept-Encoding: gzip\r\n"
                     f"X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(int(line.split(":", 1)[1]) for line in lines
                      if line.lower().startswith("content-length:"))
        body = await reader.readexactly(length)
        self.idle.append(conn)
        return status, body


async def probe(client: Client, target: str) -> Tuple[float, bool]:
    """(seconds to the last byte, probe_success 1)."""
    started = time.perf_counter()
    status, body = await client.get(f"/probe?target={target}")
    took = time.perf_counter() - started
    if status == 200 and body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return took, status == 200 and b"\nprobe_success 1.0\n" in b"\n" + body


async def run_count(count: int, fixture: str, interval: float, window: float,
                    tmp: str, root: str = REPO_ROOT, profile: str = "",
                    tick: float = 0.01, idle: bool = False) -> Dict[str, float]:
    standins = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "bench_remote_standins.py"), fixture, str(count),
         str(tick)],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    exporter: Optional[subprocess.Popen] = None
    try:
        ports = json.loads(standins.stdout.readline())  # type: ignore[union-attr]
        targets = [f"127.0.0.1:{p}" for p in ports]
        config = os.path.join(tmp, f"remote-{count}.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(f"max_targets: {count}\ntargets:\n"
                    + "".join(f"  - address: {t}\n" for t in targets))
        port = free_port()
        log = open(os.path.join(tmp, f"remote-{count}.log"), "w")
        stats = os.path.join(tmp, f"remote-{count}.stats.json")
        exporter = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "remote_profiled.py"), "--listen",
             f"127.0.0.1:{port}", "--config", config, "--log.level", "warning"],
            cwd=root, env={**os.environ, "PYTHONPATH": root, "BENCH_EXPORTER_ROOT": root,
                           "BENCH_REMOTE_STATS": stats, "BENCH_REMOTE_PROFILE": profile},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = Client(port)

        async def up() -> bool:
            try:
                status, _ = await client.get("/")
                return status == 200
            except OSError:
                return False
        deadline = time.monotonic() + 20
        while not await up():
            assert time.monotonic() < deadline and exporter.poll() is None, "no exporter"
            await asyncio.sleep(0.2)
        base_rss = rss_bytes(exporter.pid) / 2**20
        # every target connected and loaded, 50 first probes at a time
        pending = list(targets)
        deadline = time.monotonic() + 120
        while pending:
            assert time.monotonic() < deadline, f"{len(pending)} targets never answered"
            results = []
            for i in range(0, len(pending), 50):
                batch = pending[i:i + 50]
                results += zip(batch, await asyncio.gather(
                    *(probe(Client(port), t) for t in batch)))
            pending = [t for t, (_, ok) in results if not ok]
            if pending:
                await asyncio.sleep(1)

        latencies: List[float] = []
        failed = 0
        measuring = False
        cpu_before = 0.0
        started_window = 0.0
        tasks = set()

        async def one(target: str) -> None:
            nonlocal failed
            took, ok = await probe(client, target)
            if measuring:
                latencies.append(took)
                failed += not ok

        loop = asyncio.get_running_loop()
        step = interval / count
        started = loop.time()
        n = 0
        while True:
            now = loop.time()
            if not measuring and now - started >= interval:  # one round unmeasured
                measuring, cpu_before, started_window = True, cpu_seconds(exporter.pid), now
                exporter.send_signal(signal.SIGUSR1)
            if measuring and now - started_window >= window:
                break
            while not idle and started + n * step <= now:
                task = loop.create_task(one(targets[n % count]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                n += 1
            await asyncio.sleep(min(step, 0.01))
        cpu = (cpu_seconds(exporter.pid) - cpu_before) / (loop.time() - started_window) * 100
        rss = rss_bytes(exporter.pid) / 2**20
        exporter.send_signal(signal.SIGUSR2)
        measuring = False
        await asyncio.gather(*tasks)
        for _ in range(100):  # written at SIGUSR2 (after a profile's dump)
            if os.path.exists(stats) and os.path.getsize(stats):
                break
            await asyncio.sleep(0.1)
        own = json.loads(open(stats, encoding="utf-8").read())
        ordered = sorted(latencies)
        return {"printers": count, "cpu": cpu, "rss": rss, "base_rss": base_rss,
                "probes": len(latencies), "failed": failed,
                "gc_longest_ms": max(own["gc_longest_ms"]), "gc_full": own["gc_count"][2],
                "lag_max_ms": own["lag_max_ms"], "lag_p99_ms": own["lag_p99_ms"],
                "cpu_per_probe_ms": own["cpu_seconds"] / max(1, len(latencies)) * 1000,
                "gc_tracked": own["gc_tracked"],
                "median_ms": statistics.median(ordered) * 1000 if ordered else 0.0,
                "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
                if ordered else 0.0}
    finally:
        if exporter is not None:
            terminate(exporter)
        terminate(standins)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,100,1000")
    parser.add_argument("--interval", type=float, default=15.0,
                        help="seconds between two probes of one target")
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--exporter-root", default=REPO_ROOT,
                        help="the checkout whose exporter runs (default: this one)")
    parser.add_argument("--tick", type=float, default=0.01,
                        help="the stand-ins' replay resolution, seconds (bench_remote_standins"
                             ".py: all printers' pushes of a tick arrive together)")
    parser.add_argument("--idle", action="store_true",
                        help="no probes in the window: the connections' own cost")
    parser.add_argument("--profile", default="",
                        help="a cProfile of the exporter over the window, to this file "
                             "(suffixed with the count)")
    parser.add_argument("--fixture", default=DEFAULT_FIXTURE,
                        help="bench_remote_record.py's fixture (recorded when missing)")
    args = parser.parse_args()
    load_or_record(args.fixture, 30.0)
    tmp = tempfile.mkdtemp()
    rows = []
    for count in (int(c) for c in args.counts.split(",")):
        row = asyncio.run(run_count(count, args.fixture, args.interval, args.window, tmp,
                                    os.path.abspath(args.exporter_root),
                                    f"{args.profile}.{count}" if args.profile else "",
                                    args.tick, args.idle))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nprobe every {args.interval:g} s per printer, {args.window:g} s window, "
          f"stand-ins' tick {args.tick * 1000:g} ms; "
          f"exporter log: {tmp}")
    print("| printers | exporter CPU (% of one core) | RSS | probe median | probe p99 "
          "| CPU per printer | RSS per printer | probes (failed) | longest GC pause "
          "(full GCs) | loop lag p99 / max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['printers']} | {r['cpu']:.1f} % | {r['rss']:.0f} MiB "
              f"| {r['median_ms']:.2f} ms | {r['p99_ms']:.2f} ms "
              f"| {r['cpu'] / r['printers']:.3f} % "
              f"| {(r['rss'] - r['base_rss']) * 1024 / r['printers']:.0f} KiB "
              f"| {r['probes']} ({r['failed']}) "
              f"| {r['gc_longest_ms']:.0f} ms ({r['gc_full']}) "
              f"| {r['lag_p99_ms']:.1f} / {r['lag_max_ms']:.0f} ms |")


if __name__ == "__main__":
    main()
