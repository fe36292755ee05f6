"""The sidecar merge of two revisions side by side, in one process, on the same bodies.

    .venv/moonraker/bin/python bench/bench_merge_ab.py --before REV [--scrapes 11]

bench_merge.py's ratios divide by a prometheus_client round trip timed in the same run,
which varies by 30 % and more between runs on a shared machine; comparing two revisions
by those ratios measures mostly that noise. Here the package at REV (`git archive`, into a
temporary folder, imported under another name: its modules import each other relatively)
and the working tree's merge the same node_exporter-like bodies (4 sources, 20,000
samples) in turn, scrape after scrape, steady state (the sources' series seen in the
previous scrape) and first scrape (new rewriters). Prints the medians and how much a
bench_merge.py ratio changes (time before / time after - 1).
"""
from __future__ import annotations

import argparse
import importlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from typing import Any, Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from merge_corpus import node_like  # noqa: E402

SOURCES = 4


def load_revision(rev: str, folder: str) -> Any:
    """moonraker_prometheus at `rev`, importable as `mp_before` from `folder`."""
    archive = subprocess.run(["git", "-C", REPO, "archive", rev, "moonraker_prometheus"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder)
    os.rename(os.path.join(folder, "moonraker_prometheus"), os.path.join(folder, "mp_before"))
    sys.path.insert(0, folder)
    return importlib.import_module("mp_before")


def merger(package: str) -> Any:
    merge = importlib.import_module(package + ".sidecar.merge")
    expfmt = importlib.import_module(package + ".sidecar.expfmt")

    def rewriters() -> List[Any]:
        return [expfmt.Rewriter([("exporter_name", "b%d" % i), ("site", "lab")])
                for i in range(SOURCES)]

    def run(bodies: List[bytes], rws: List[Any]) -> str:
        parts = [("b%d" % i, rw, [body]) for i, (body, rw) in enumerate(zip(bodies, rws))]
        return merge._finish(merge._merge_sources(None, parts),
                             expfmt.Rewriter(rewrite=False), "")

    return rewriters, run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True, help="git revision to compare with")
    parser.add_argument("--scrapes", type=int, default=11)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="merge-ab-")
    try:
        load_revision(args.before, folder)
        sides = {"before": merger("mp_before"), "after": merger("moonraker_prometheus")}
        inputs = [[node_like(args.samples // SOURCES, seed=1000 * run + i)
                   for i in range(SOURCES)] for run in range(args.scrapes + 1)]
        warm = {name: rewriters() for name, (rewriters, _) in sides.items()}
        for name, (_, run) in sides.items():
            run(inputs[0], warm[name])
        times: Dict[str, Dict[str, List[float]]] = {
            name: {"steady": [], "first": []} for name in sides}
        for bodies in inputs[1:]:
            for name, (rewriters, run) in sides.items():
                started = time.perf_counter()
                run(bodies, warm[name])
                times[name]["steady"].append(time.perf_counter() - started)
                fresh = rewriters()
                started = time.perf_counter()
                run(bodies, fresh)
                times[name]["first"].append(time.perf_counter() - started)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print("Python %s; %d samples from %d sources; medians of %d scrapes, interleaved"
          % (sys.version.split()[0], args.samples, SOURCES, args.scrapes))
    for kind in ("steady", "first"):
        before = statistics.median(times["before"][kind])
        after = statistics.median(times["after"][kind])
        print("%-6s before (%s) %6.1f ms, after %6.1f ms: a bench_merge.py ratio %+.1f %%"
              % (kind, args.before, before * 1000, after * 1000, (before / after - 1) * 100))
    return 0


if __name__ == "__main__":
    sys.exit(main())
