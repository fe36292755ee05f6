"""Bodies built to make a parser slow: each is merged in time linear in its size.

The merge runs in a worker thread, but a regular expression or a big string operation
holds the GIL, and so Moonraker's event loop, for as long as it runs (docs/architecture.md,
"Linear-time parsing"). These run each parse in a subprocess with a time-out: a parse that
backtracks exponentially cannot be interrupted in-process, and must end the test as a
failure, not hang the suite.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from moonraker_prometheus.sidecar.expfmt import MAX_LINE, Rewriter, parse, render

REPO = Path(__file__).resolve().parents[2]

# Runs in a subprocess: a first scrape of the good body, then the bad one with the same
# rewriter (so the template path meets it first), then a fresh parse of the bad one.
_SCRIPT = """
import json, sys, time
from moonraker_prometheus.sidecar.expfmt import Rewriter, parse, render
good, bad = json.loads(sys.stdin.read())
rw = Rewriter([("exporter_name", "x")])
parse(good.encode(), rw); rw.rotate()
started = time.perf_counter()
again = parse(bad.encode(), rw)
took = time.perf_counter() - started
fresh = parse(bad.encode(), Rewriter([("exporter_name", "x")]))
print(json.dumps({"seconds": took, "dropped": again.dropped,
                  "text": render(again.families.values()),
                  "fresh": render(fresh.families.values()), "fresh_dropped": fresh.dropped}))
"""


def _guarded(good: str, bad: str, timeout: float = 20.0) -> dict:
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], input=json.dumps([good, bad]),
                          capture_output=True, text=True, timeout=timeout, cwd=str(REPO),
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _counters(n: int, last: str = "") -> str:
    lines = ['my_counter{n="%d"} %d' % (i, 1234567890 + i) for i in range(n)]
    if last:
        lines[-1] = 'my_counter{n="%d"} %s' % (n - 1, last)
    return "# TYPE my_counter counter\n" + "\n".join(lines) + "\n"


@pytest.mark.unit
@pytest.mark.parametrize("n", [10, 100, 1000])
def test_one_bad_value_after_a_first_scrape_is_dropped_at_once(n):
    """Issue 17: the template's value check backtracked exponentially in the lines before
    a bad last value (6 lines: 2.7 s; 40: not in a lifetime)."""
    try:
        result = _guarded(_counters(n), _counters(n, "12x"))
    except subprocess.TimeoutExpired:
        pytest.fail("parsing %d lines with one bad value did not end within 20 s" % n)
    assert result["dropped"] == {"invalid_line": 1}
    assert result["text"] == result["fresh"]
    assert result["text"].count("\n") == n - 1 + 1  # the TYPE line and n - 1 samples
    assert result["seconds"] < 1.0


@pytest.mark.unit
@pytest.mark.parametrize("bad", [
    "1" * 5000 + "x",  # a long run of digits that fails at its end
    "1." + "1" * 5000 + "e",
    "1 " + "1" * 5000 + "x",  # a long timestamp
    "1" * 5000 + " 12x",
])
def test_long_runs_that_fail_at_their_end_are_dropped_at_once(bad):
    body = "".join('my_counter{n="%d"} %s\n' % (i, bad) for i in range(200))
    result = _guarded(_counters(200), body)
    assert result["dropped"] == {"invalid_line": 200}
    assert result["text"] == ""
    assert result["seconds"] < 1.0


@pytest.mark.unit
def test_long_label_values_are_served_and_failing_ones_dropped():
    value = "v" * 10000  # 10 kB label values pass
    good = "".join('big{i="%d",v="%s"} 1\n' % (i, value) for i in range(50))
    bad = good.replace("} 1\n", "} 1x\n", 10)
    result = _guarded(good, bad)
    assert result["dropped"] == {"invalid_line": 10}
    assert result["text"] == result["fresh"]
    assert result["text"].count("\n") == 41


@pytest.mark.unit
@pytest.mark.parametrize("kind", [bytes, str])
def test_a_line_longer_than_a_slice_is_dropped_and_counted_not_read(kind):
    huge = 'huge{v="%s"} 1' % ("y" * (1 << 20))
    text = "a 1\n" + huge + "\nb 2\n" + huge + "\n" + "c 3"  # no newline at the end
    body = text.encode() if kind is bytes else text
    rw = Rewriter(rewrite=False)
    for _ in range(2):  # the first scrape, then what the template path makes of it
        parsed = parse(body, rw)
        rw.rotate()
        assert parsed.dropped == {"line_too_long": 2}
        assert render(parsed.families.values()) == (
            "# TYPE a untyped\na 1\n# TYPE b untyped\nb 2\n# TYPE c untyped\nc 3\n")


@pytest.mark.unit
def test_a_line_of_the_longest_length_read_is_served():
    line = 'long{v="%s"} 1' % ("y" * (MAX_LINE - len('long{v=""} 1')))
    assert len(line) == MAX_LINE
    body = line + "\n" + line.replace("long", "longer", 1) + "\n"  # one character too long
    parsed = parse(body, Rewriter(rewrite=False))
    assert parsed.dropped == {"line_too_long": 1}
    assert render(parsed.families.values()) == "# TYPE long untyped\n" + line + "\n"
