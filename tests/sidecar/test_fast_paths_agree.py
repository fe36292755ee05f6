"""The fast paths of the parser give the reference's result for every body (issue 17).

expfmt.parse() reads a body line by line (the reference, expfmt.lines), a slice at a time
with C-level passes (expfmt.slices), or by replaying the layout of the same source's
previous body (expfmt.template). tests/sidecar/fast_paths.py mutates seeded documents and
realistic bodies (one byte changed, added or removed, a value made long, odd or cut, a
line dropped or doubled, the last newline removed), parses each mutated body after a
scrape of the good one with the same Rewriter (so the Template is tried first), with a
fresh Rewriter (the slice path where the rewriter allows it) and with the reference alone
(fast=False), and compares the rendered output, the drops and each family's lines and
series identities; files of a glob meet each other's Templates. It runs in a subprocess
with a time-out, as a parse that backtracks holds the GIL: a hang ends as a failure.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

from moonraker_prometheus.sidecar.expfmt import Rewriter, parse, render
from moonraker_prometheus.sidecar.expfmt.model import SLICE_BYTES
from tests.sidecar.fast_paths import REWRITERS
from tests.sidecar.test_prometheus_oracle import KINDS, variants

REPO = Path(__file__).resolve().parent.parent.parent


def _compare(args: List[str], timeout: float, cases: str = "") -> Tuple[List[dict],
                                                                       Dict[str, int]]:
    """Runs `python -m tests.sidecar.fast_paths ARGS` (cases as JSON on stdin for `stdin`):
    (the problems found, the counts of cases and paths)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.sidecar.fast_paths"] + args,
                            cwd=str(REPO), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        out, _ = proc.communicate(cases, timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        started = [x for x in out.splitlines() if x.startswith('{"started"')]
        pytest.fail("no result within %d s: a parse hangs (body, rewriter %s)"
                    % (timeout, json.loads(started[-1])["started"] if started else "?"))
    assert proc.returncode == 0, out[-3000:]
    rows = [json.loads(x) for x in out.splitlines()]
    problems = [r for r in rows if "problems" in r]
    return problems, rows[-1]["counts"]


def _report(problems: List[dict]) -> str:
    return "%d cases disagree, e.g.\n%s" % (len(problems), "\n".join(
        json.dumps(p, indent=1)[:3000] for p in problems[:5]))


def _check_sweep(mode: str, timeout: float, least: int) -> None:
    problems, counts = _compare([mode], timeout)
    assert not problems, _report(problems)
    # Each path ran (Template applied or refused, slices taken on a first scrape and after
    # a refused Template), so agreement was tested where it can fail.
    for path in ("template", "template refused, then slices", "template refused, then lines",
                 "fresh: slices", "fresh: lines"):
        assert counts.get(path, 0) >= least, counts
    assert counts["cases"] >= 40 * least


@pytest.mark.unit
def test_fast_paths_give_the_reference_result_on_mutated_bodies():
    """A sample (every realistic body with 60 mutations, every eighth seeded document)."""
    _check_sweep("quick", 60, 100)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fast_paths_give_the_reference_result_on_the_whole_mutated_corpus():
    """400 mutations of each realistic body, 40 of each seeded document (~55,000 cases)."""
    _check_sweep("full", 540, 1000)


@pytest.mark.unit
def test_each_file_of_a_glob_gives_the_reference_result_whatever_template_it_meets():
    """Templates are kept by position: files swapped, mutated, gone, added, or of the same
    layout meet another file's Template (or none)."""
    problems, counts = _compare(["globs"], 60)
    assert not problems, _report(problems)
    assert counts["template"] >= 20 and counts["template refused"] >= 20, counts


# Disagreements (and a crash) the sweep found, fixed: the minimal bodies.
FOUND = [
    # series_identity() split label text without escapes at every '",', also after the
    # opening quote of a value starting with a comma: the reference gave both series the
    # identity m{a=",b=",x",y"} and dropped the second as a duplicate.
    pytest.param("as_is", '# TYPE m gauge\nm{a=",x",b=",y"} 1\nm{a=",y",b=",x"} 2\n',
                 id="a_value_starting_with_a_comma"),
    # _timestamp() called int() on a timestamp of any length: past 4300 digits Python
    # raises ValueError, out of parse() and the whole merge.
    pytest.param("tagged", "# TYPE a gauge\na 1 %s\n" % ("1" * 4301),
                 id="a_timestamp_of_4301_digits"),
]


@pytest.mark.unit
@pytest.mark.parametrize("rewriter, body", FOUND)
def test_bodies_the_sweep_found_give_the_reference_result(rewriter, body):
    """Each path, on the body after a scrape of itself (the Template replays it) and as a
    str; the reference keeps every line a distinct series or drops it as invalid."""
    problems, _ = _compare(["stdin"], 60, json.dumps([[rewriter, body, body]]))
    assert not problems, _report(problems)
    parsed = parse(body, Rewriter(rewrite=False))
    assert set(parsed.dropped) <= {"invalid_line"}
    render(parsed.families.values())


@pytest.mark.unit
def test_what_prometheus_takes_gives_the_reference_result_on_each_path():
    """The bodies of each kind Prometheus' scrape takes and Go's text parser refuses
    (test_prometheus_oracle.py), as written and without the last newline, under every
    rewriter: after a scrape of itself, and after a scrape of the next kind's body; and a
    label value whose raw newlines span the end of a slice (SLICE_BYTES)."""
    bodies = [b.decode() for k in KINDS for doc in k.bodies for b in variants(list(doc))]
    lead = "a 1\n" * (SLICE_BYTES // 4 - 2)
    bodies += [lead + 'a{b="x\nyy\nz"} 1\nb 2\n', lead + 'a{b="x\nyy\nz} 1\nb 2\n']
    cases = [[rw, a, b] for rw in REWRITERS for a, b in zip(bodies, bodies)] + [
        [rw, a, b] for rw in ("as_is", "tagged") for a, b in zip(bodies, bodies[1:])]
    problems, counts = _compare(["stdin"], 120, json.dumps(cases))
    assert not problems, _report(problems)
    assert counts["cases"] >= len(cases), counts
    long_value = parse(bodies[-2], Rewriter(rewrite=False))
    assert 'a{b="x\\nyy\\nz"} 1' in render(long_value.families.values())
    assert long_value.dropped == {"duplicate_series": SLICE_BYTES // 4 - 3}
