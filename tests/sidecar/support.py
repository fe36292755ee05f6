"""Helpers for the sidecar tests: stub backends, real exporters, promtool, series identity."""
from __future__ import annotations

import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import List, Optional, Tuple

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from moonraker_prometheus.sidecar import Merger, SourceSpec, build_source  # noqa: E402
from moonraker_prometheus.sidecar.sources import new_spec  # noqa: E402
from simulator.backend import Backend, write_script  # noqa: E402,F401  (used by the tests)
from tests.promtool import check_metrics  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_spec(name: str, kind: str, **options) -> SourceSpec:
    spec = new_spec(name, kind)
    for k, v in options.items():
        assert hasattr(spec, k), k
        setattr(spec, k, v)
    spec.validate()
    return spec


def merger_for(*specs: SourceSpec) -> Merger:
    return Merger([build_source(s) for s in specs])


def collect(merger: Merger, local_text: Optional[str] = None, timeout: float = 5.0) -> str:
    """One collect on a fresh loop, then close (for single-shot tests)."""
    async def run() -> str:
        try:
            return await merger.collect(local_text, timeout=timeout)
        finally:
            await merger.close()
    return asyncio.run(run())


def promtool_check(text: str) -> str:
    """`promtool check metrics` must parse the text: exit 0, or 3 (lint findings only).

    Backends bring their own lint findings, so only a parse error (exit 1) fails here.
    """
    code, lines = check_metrics(text)
    out = "\n".join(lines)
    assert code in (0, 3), "promtool rejected the output (%d): %s" % (code, out[:2000])
    return out


SeriesId = Tuple[str, frozenset]


def series_ids(text: str) -> List[SeriesId]:
    """Every sample as (sample name, label set), in order, duplicates kept."""
    from prometheus_client.parser import text_string_to_metric_families

    out: List[SeriesId] = []
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.append((s.name, frozenset(s.labels.items())))
    return out


def from_source(ids: List[SeriesId], name: str) -> List[SeriesId]:
    """Samples tagged exporter_name=name, with that label removed (and exported_ restored).

    The sidecar's own health families are left out.
    """
    out = []
    for sname, labels in ids:
        if sname.startswith("klipper_exporter_"):
            continue
        d = dict(labels)
        if d.pop("exporter_name", None) != name:
            continue
        if "exported_exporter_name" in d:
            d["exporter_name"] = d.pop("exported_exporter_name")
        out.append((sname, frozenset(d.items())))
    return out


def assert_no_duplicates(ids: List[SeriesId]) -> None:
    dups = [k for k, n in collections.Counter(ids).items() if n > 1]
    assert not dups, "duplicate series: %s" % dups[:5]


class Exporter:
    """A real exporter process on a loopback port, in its own process group."""

    def __init__(self, argv: List[str], port: int, path: str = "/metrics",
                 cwd: Optional[str] = None) -> None:
        self.port = port
        self.url = "http://127.0.0.1:%d%s" % (port, path)
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("exporter exited: %s" % self.proc.stderr.read()[-2000:])
            try:
                self.fetch()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("exporter on port %d not ready" % self.port)

    def fetch(self) -> str:
        with urllib.request.urlopen(self.url, timeout=5) as r:
            return r.read().decode("utf-8")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def exporter_starter():
    """Returns (start, stop_all); start(binary, *args, path=, flag=) -> Exporter."""
    started: List[Exporter] = []

    def start(binary: str, *args: str, path: str = "/metrics", flag: str = "--web.listen-address",
              cwd: Optional[str] = None) -> Exporter:
        exe = shutil.which(binary)
        if exe is None:
            pytest.fail("%s is not installed: run scripts/bootstrap.sh" % binary)
        port = free_port()
        e = Exporter([exe, flag, "127.0.0.1:%d" % port, *args], port, path, cwd)
        started.append(e)
        return e

    def stop_all() -> None:
        for e in started:
            e.stop()

    return start, stop_all


def children_of_self() -> List[int]:
    """Pids whose parent is this process (zombies included)."""
    me = str(os.getpid())
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me:
            out.append(int(pid))
    return out


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
