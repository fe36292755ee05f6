"""Soak: 10,000 scrapes of /server/metrics from 20 clients, with misbehaving sources.

Starts real Moonraker (no Klippy: the printer path is not what this measures) with
`[prometheus exporter]` sections for every kind of misbehaviour issue 8 found:

- `huge`: a fast backend answering 50 MB with a Content-Length (default max_bytes, 16 MiB)
- `stream`: a fast backend streaming 50 MB without a length (ends by closing)
- `hung`: a backend that accepts and never answers (timeout 0.3 s)
- `garbage`: binary and HTML noise around one valid line
- `dead`: nothing listening
- `orphans`: `sleep 6007 & echo x 1` (the shell exits, the sleep holds stdout; timeout 0.3 s)
- `failing`: a script writing to stderr and exiting 3
- `good`: a textfile of 500 series

Reports Moonraker's RSS, open fds, threads, child processes, leftover `sleep 6007`
processes anywhere, and log bytes: at start (no scrape yet), before (after 20 warm-up
scrapes), peak during the soak (sampled every 0.2 s), after it, and after 10 s idle. Targets: peak RSS within baseline + a few times
max_bytes (16 MiB), back near baseline after; fds, threads and children back to their
baseline; no sleep left; log growth independent of the number of scrapes.

Usage: .venv/moonraker/bin/python bench/bench_soak.py [--scrapes 10000] [--clients 20]
"""
from __future__ import annotations

import argparse
import collections
import http.client
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from simulator import Moonraker  # noqa: E402
from simulator.backend import Backend, write_script  # noqa: E402

BIG = 50 * 1000 * 1000
MARKER = "sleep 6007"


def serve_big(h, length: bool) -> None:
    h.send_response(200)
    if length:
        h.send_header("Content-Length", str(BIG))
    else:
        h.send_header("Connection", "close")
    h.end_headers()
    block = b"big_series 1\n" * 5000
    sent = 0
    while sent < BIG:
        h.wfile.write(block)
        sent += len(block)
    h.close_connection = True


def proc_facts(pid: int) -> Dict[str, int]:
    facts = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                facts["rss_kib"] = int(value.split()[0])
            elif key == "Threads":
                facts["threads"] = int(value)
    facts["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    children = sleeps = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        children += ppid == pid
        sleeps += cmdline == MARKER
    facts["children"] = children
    facts["sleep_6007"] = sleeps
    return facts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scrapes", type=int, default=10000)
    parser.add_argument("--clients", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="soak-")
    backend = Backend()
    backend.routes["/huge"] = lambda h: serve_big(h, True)
    backend.routes["/stream"] = lambda h: serve_big(h, False)
    backend.body("/garbage", b"<html>\x00\x01\xff</html>\nok_series 1\n{}\n")
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(1024)  # accepted by the kernel, never answered
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # bound, not listening: connection refused
    with open(os.path.join(tmp, "good.prom"), "w") as f:
        f.write("# TYPE good_series gauge\n")
        f.write("".join('good_series{n="%d"} %d\n' % (i, i) for i in range(500)))
    failing = write_script(os.path.join(tmp, "failing.sh"), "echo 'sensor gone' >&2\nexit 3\n")
    extra = f"""
[prometheus exporter huge]
url: {backend.url("/huge")}
[prometheus exporter stream]
url: {backend.url("/stream")}
[prometheus exporter hung]
url: http://127.0.0.1:{hung.getsockname()[1]}/metrics
timeout: 0.3
[prometheus exporter garbage]
url: {backend.url("/garbage")}
[prometheus exporter dead]
url: http://127.0.0.1:{dead.getsockname()[1]}/metrics
[prometheus exporter orphans]
type: exec
shell: True
command: {MARKER} & echo x 1
timeout: 0.3
[prometheus exporter failing]
type: exec
command: {failing}
[prometheus exporter good]
type: file
path: {tmp}/*.prom
"""
    with Moonraker(None, extra_config=extra) as server:
        pid = server.proc.pid
        start = proc_facts(pid)

        def scrape(conn: http.client.HTTPConnection) -> int:
            conn.request("GET", "/server/metrics")
            response = conn.getresponse()
            body = response.read()
            assert b'good_series{exporter_name="good",n="499"} 499' in body, body[-500:]
            return response.status

        warm = http.client.HTTPConnection(server.host, server.port, timeout=30)
        for _ in range(20):
            scrape(warm)
        warm.close()
        time.sleep(1)
        before = proc_facts(pid)
        log_before = os.path.getsize(server.log_path)
        peak = dict(before)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                try:
                    for k, v in proc_facts(pid).items():
                        peak[k] = max(peak[k], v)
                except OSError:
                    return

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        remaining = iter(range(args.scrapes))
        lock = threading.Lock()
        statuses: "collections.Counter[int]" = collections.Counter()
        latencies: List[float] = []

        def client() -> None:
            conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
            while True:
                with lock:
                    n = next(remaining, None)
                if n is None:
                    break
                started = time.perf_counter()
                status = scrape(conn)
                elapsed = time.perf_counter() - started
                with lock:
                    statuses[status] += 1
                    latencies.append(elapsed)
            conn.close()

        started = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        duration = time.monotonic() - started
        done.set()
        sampler.join()
        after = proc_facts(pid)
        log_after = os.path.getsize(server.log_path)
        time.sleep(10)
        idle = proc_facts(pid)
        log_idle = os.path.getsize(server.log_path)
        huge_requests = sum(1 for p, _ in backend.requests if p == "/huge")
    backend.close()
    print("%d scrapes from %d clients in %.0f s: statuses %s, latency median %.0f ms, "
          "max %.0f ms" % (args.scrapes, args.clients, duration, dict(statuses),
                           1000 * statistics.median(latencies), 1000 * max(latencies)))
    print("requests to the 50 MB backend: %d (shared runs)" % huge_requests)
    print("%-12s %10s %10s %10s %10s %10s" % ("", "start", "before", "peak", "after",
                                              "after 10s"))
    for key in ("rss_kib", "fds", "threads", "children", "sleep_6007"):
        print("%-12s %10d %10d %10d %10d %10d" % (key, start[key], before[key], peak[key],
                                                    after[key], idle[key]))
    print("%-12s %10s %10d %10s %10d %10d" % ("log_bytes", "", log_before, "", log_after,
                                              log_idle))
    print("log growth during the soak: %d bytes (%.2f bytes per scrape)"
          % (log_after - log_before, (log_after - log_before) / args.scrapes))


if __name__ == "__main__":
    main()
