"""Differential check of expfmt.parse()'s fast paths against its line-by-line reference.

parse() reads a body three ways: line by line (the reference, expfmt.lines), a slice at a
time with C-level passes (expfmt.slices.read_slice, when `rw.bulk` is set), and by replaying the previous
scrape's layout (`Template.apply`, when the same Rewriter parsed a body at the same
position in the previous scrape). For each base body (the seeded documents of
expfmt_corpus.documents() and realistic bodies), rewriter and mutation of the body, three
parses of the mutated body must give the same result: after a first scrape of the unmutated
body with the same Rewriter (so its Template is tried first), with a fresh Rewriter that may
use the slice path, and the reference (a fresh Rewriter with `bulk` off: no Template, no
slice: `parse(..., fast=False)`). Which path ran is seen by wrapping Template.apply and read_slice (each wrapper
calls the real function and notes whether it did the work); every parse is timed.

A source reading several files keeps a Template per position: globs() has files swapped,
mutated, gone or added between two scrapes, each file compared with the reference.

Run as a script (`python -m tests.sidecar.fast_paths quick|full|globs`, or `stdin` with
cases as JSON) it prints a JSON line per disagreement, crash or slow parse, then one with
the counts of cases and paths; tests/sidecar/test_fast_paths_agree.py runs it in a
subprocess with a time-out, as a regular expression that backtracks would hold the GIL
(nothing in-process could stop it).
"""
from __future__ import annotations

import json
import random
import re
import sys
import time
from itertools import accumulate
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from bench.merge_corpus import node_like
from moonraker_prometheus.sidecar import expfmt
from moonraker_prometheus.sidecar.expfmt import Parsed, Rewriter, parse, render
from moonraker_prometheus.sidecar.expfmt.model import MAX_LINE, SLICE_BYTES
from moonraker_prometheus.sidecar.expfmt.template import Template
from tests.sidecar.expfmt_corpus import documents

Body = Union[bytes, str]
# The longest a parse may take here (bodies of at most ~100 kB).
MAX_SECONDS = 1.0

# Rewriters as rewriter_for() builds them (exporter_name first), and as-is (rewrite=False).
# `cpu` and `b` clash with labels of the bodies; "a\"b\\c\nd" needs escapes.
_OURS = [("exporter_name", "src"), ("b", "ours"), ("cpu", "7"), ("zone", 'a"b\\c\nd')]
_KEEP = [re.compile(r"node_.*|http_.*|rpc_.*|a|h|s|o1|x:y|my_counter|esc_info|ts_total")]
_DROP = [re.compile(r".*filesystem.*|h|rpc_duration_seconds")]
REWRITERS: Dict[str, Callable[[], Rewriter]] = {
    "as_is": lambda: Rewriter(rewrite=False),
    "tagged": lambda: Rewriter([("exporter_name", "src")]),
    "labels": lambda: Rewriter(_OURS),
    "honor_labels": lambda: Rewriter(_OURS, honor_labels=True),
    "keep_drop": lambda: Rewriter([("exporter_name", "src")], keep=_KEEP, drop=_DROP),
    "no_rewrite_filtered": lambda: Rewriter(_OURS, rewrite=False, keep=_KEEP, drop=_DROP),
}

HISTOGRAMS = """\
# HELP rpc_duration_seconds RPC latency.
# TYPE rpc_duration_seconds histogram
rpc_duration_seconds_bucket{le="0.05",method="get"} 24054
rpc_duration_seconds_bucket{le="0.1",method="get"} 33444
rpc_duration_seconds_bucket{le="0.5",method="get"} 100392
rpc_duration_seconds_bucket{le="+Inf",method="get"} 144320
rpc_duration_seconds_sum{method="get"} 53423.5
rpc_duration_seconds_count{method="get"} 144320
rpc_duration_seconds_bucket{method="post",le="0.05"} 1
rpc_duration_seconds_bucket{method="post",le="1e1"} 2
rpc_duration_seconds_bucket{method="post",le="+Inf"} 3
rpc_duration_seconds_sum{method="post"} 0.25
rpc_duration_seconds_count{method="post"} 3
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="Inf"} 2
h_sum 3.5e-3
h_count 2
"""

SUMMARIES = """\
# HELP go_gc_duration_seconds A summary of the pause duration of garbage collection cycles.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0"} 4.9351e-05
go_gc_duration_seconds{quantile="0.25"} 7.424100000000001e-05
go_gc_duration_seconds{quantile="0.5"} 8.3835e-05
go_gc_duration_seconds{quantile="1"} 0.011689149
go_gc_duration_seconds_sum 3.584e-02
go_gc_duration_seconds_count 99
# TYPE s summary
s{quantile="0.99",b="x"} NaN
s_sum{b="x"} -0
s_count{b="x"} 0
"""

ESCAPES = """\
# HELP esc_info Label values with escapes: \\\\ and \\n.
# TYPE esc_info gauge
esc_info{nl="a\\nb",path="C:\\\\data\\\\x",quote="say \\"hi\\""} 1
esc_info{nl="x",path="{weird}",quote=""} 2
esc_info{nl="\\\\n",path="zürich ✓",quote="=,"} 3
esc_info{path="}{",b="c"} 4
esc_info{b="",nl="y"} 5
"""

TIMESTAMPS = """\
# TYPE ts_total counter
ts_total{a="1"} 5 1700000000000
ts_total{a="2"} 6 1700000000001
ts_total { a = "3" , } 7
ts_total{a="4"} 8 +5
bare 1
bare_with_ts 2 1700000000000
bare_with_ts{} 3
x:y{cpu="1"} +Inf
"""

# UTF-8 names (Prometheus 3): a quoted metric name inside the braces, quoted label names.
QUOTED_NAMES = """\
# HELP "http.requests.total" Requests.
# TYPE "http.requests.total" counter
{"http.requests.total",method="get"} 10
{"http.requests.total","my.label"="x",method="post"} 11
# TYPE m gauge
m{"a.b"="v"} 1
m{"a\\"q"="w",z="1"} 2
m{z="2"} 3
"""
# UTF-8 names that escaping (`.` to `_`) makes collide with legacy ones, and each other.
COLLISIONS = """\
# TYPE a_b gauge
a_b{k="1"} 5
{"a.b",k="2"} 6
# TYPE "c.d" counter
{"c.d"} 7
c_d 8
m{"l.x"="v",l_x="w"} 4
m{"l.y"="v"} 9
{"e:f"} 10
{"e.f"} 11
"""

# What Prometheus' scrape parser takes and Go's text parser refuses (issue 18 item 6): blanks
# at the end, pairs without commas, any escape and raw newlines in label values, le and
# quantile that are no floats, HELP escapes, HELP and TYPE again or late, #TYPE.
PROMETHEUS_TAKES = """\
# HELP lax_info Lines as a Prometheus scrape takes them: bad \\t escape \\
# TYPE lax_info gauge
# HELP lax_info again
lax_info{a="1" b="2"} 1 \t
lax_info{a="2"b="\\q\\t\\\\"} 2 1700000000000\t
lax_info{a="3",b="x
y"} 3
# TYPE lax_info counter
# TYPE h histogram
h_bucket{le="1"} 1
h_bucket{le="x"} 2
h_sum 3
h_count 2
#TYPE lax bogus
lax 4 \n"""


def issue17(lines: int = 40) -> str:
    """The body of issue 17: integer series of one counter."""
    return "# TYPE my_counter counter\n" + "".join(
        'my_counter{n="%d"} %d\n' % (i, 1234567890 + i) for i in range(lines))


def short_lines(lines: int = 4700) -> str:
    """Untyped series of 7-byte lines: a slice holds more than Template.apply's step."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join("x%s%s%s %d\n" % (digits[i // 1296], digits[i // 36 % 36], digits[i % 36],
                                      i % 7) for i in range(lines))


# Bodies of several slices (SLICE_BYTES), mutated under fewer rewriters.
BIG = {"node_like_big": ("as_is", "labels"), "short_lines": ("tagged", "no_rewrite_filtered")}


def bases(quick: bool) -> List[Tuple[str, bytes]]:
    """(name, body) of the bodies mutated: realistic ones, then the seeded documents."""
    out = [("node_like", node_like(100)), ("node_like_big", node_like(1000)),
           ("short_lines", short_lines().encode()), ("histograms", HISTOGRAMS.encode()),
           ("summaries", SUMMARIES.encode()), ("escapes", ESCAPES.encode()),
           ("timestamps", TIMESTAMPS.encode()), ("quoted_names", QUOTED_NAMES.encode()),
           ("collisions", COLLISIONS.encode()), ("issue17", issue17().encode()),
           ("prometheus_takes", PROMETHEUS_TAKES.encode())]
    docs = documents()
    if quick:
        docs = docs[::8]
    out += [("doc%d" % i, "".join(x + "\n" for x in doc).encode()) for i, doc in enumerate(docs)]
    return out


# Values put in place of a sample's value: long ones (30, 400 and 5000 digits, a line over
# MAX_LINE), exponent forms that overflow or nearly do, other spellings, cut ones,
# and a bad value after a good prefix.
LONG_VALUES = ["1" * 30, "1" * 400, "1" * 5000, "9" * 309, "9" * 310, "1." + "0" * 5000,
               "0." + "9" * 400, "-" + "9" * 400, "1" * 41, "1" * 40, "1" * 70000]
EXPONENTS = ["1e400", "-1e400", "1e-400", "1.7976931348623157e308", "1.8e308", "1e+308",
             "0e99999", "1e" + "9" * 30, "1" * 300 + "e10", "1E5", "Inf", "-inf", "nan", "NaN"]
ODD_VALUES = ["12x", "1e", "1.", ".5", "+1", "-0", "01", "1 1700000000000", "1 -5",
              "1 " + "9" * 19, "1 007", "1\t2", "", " ", "1 2 3", "0x10", "1_0", "١"]
# Bytes put in place of one byte: each breaks, or nearly breaks, the format somewhere.
BYTES = [b"x", b"9", b"0", b" ", b"\t", b"\n", b'"', b"{", b"}", b"\\", b"e", b".", b"-", b"+",
         b"#", b",", b"=", b"\xff", b"\r", b"_", b":", b"I"]


def _value_span(line: bytes) -> Optional[Tuple[int, int]]:
    """Where a sample line's value token starts and ends, or None for other lines."""
    if not line.strip() or line.lstrip()[:1] == b"#":
        return None
    end = line.rfind(b"}") + 1 or line.find(b" ")
    if end <= 0:
        return None
    start = end
    while start < len(line) and line[start:start + 1] in b" \t":
        start += 1
    stop = start
    while stop < len(line) and line[stop:stop + 1] not in b" \t":
        stop += 1
    return (start, stop) if stop > start else None


def _spots(line: bytes) -> List[int]:
    """Positions in a line worth one changed byte: the first, inside the name, inside a
    label name and a label value, around the value, its last byte and its end (the newline)."""
    spots = {0, min(2, len(line)), len(line)}
    for ch in (b"{", b"=", b'"', b",", b"}"):
        at = line.find(ch)
        if at >= 0:
            spots.update((at, at + 1))
    quote = line.find(b'"')
    if quote >= 0:
        spots.add(quote + 2)
    span = _value_span(line)
    if span is not None:
        start, stop = span
        spots.update((start - 1, start, (start + stop) // 2, stop - 1, stop))
    elif line.startswith(b"#"):
        spots.update((1, 2, 6, 7, len(line) // 2))
    return sorted(x for x in spots if 0 <= x <= len(line))


def mutations(body: bytes, rnd: random.Random, quick: bool
              ) -> Iterator[Tuple[str, bytes]]:
    """(what was done, mutated body) of one body: the body itself (the Template must take
    it), one byte changed, added or removed at spots of its lines, a value made long, odd
    or cut, a line dropped or doubled, the last newline removed."""
    yield "same", body
    lines = body.split(b"\n")[:-1]  # every line had its newline
    head = [0] + list(accumulate(len(x) + 1 for x in lines))  # where each line starts
    many = len(lines) > 20
    picked = sorted(rnd.sample(range(len(lines)), 12)) if many else range(len(lines))
    if len(body) > SLICE_BYTES:  # the lines around each slice's end too
        ends = range(SLICE_BYTES, len(body), SLICE_BYTES)
        near = {i + d for i in range(len(lines)) for d in (-1, 0, 1)
                if any(head[i] <= end < head[i] + len(lines[i]) + 1 for end in ends)}
        picked = sorted(set(picked) | {i for i in near if 0 <= i < len(lines)})
    if quick and not many:
        picked = sorted(rnd.sample(range(len(lines)), min(3, len(lines))))
    for i in picked:
        line = lines[i]
        for pos in _spots(line):
            at = head[i] + pos
            for new in (rnd.sample(BYTES, 2) if quick or many else rnd.sample(BYTES, 6)):
                yield "line %d byte %d = %r" % (i, pos, new), body[:at] + new + body[at + 1:]
            yield "line %d byte %d removed" % (i, pos), body[:at] + body[at + 1:]
            new = rnd.choice(BYTES)
            yield "line %d byte %r added at %d" % (i, new, pos), body[:at] + new + body[at:]
        span = _value_span(line)
        if span is not None:
            start, stop = span
            values = LONG_VALUES + EXPONENTS + ODD_VALUES + [
                line[start:(start + stop) // 2].decode("utf-8", "replace")]
            if quick or many:
                values = rnd.sample(values, 4) + ["1" * 400, "1e400", "12x"]
            for value in values:
                new_line = line[:start] + value.encode() + line[stop:]
                yield ("line %d value %r" % (i, value[:20] + "..." * (len(value) > 20)),
                       b"\n".join(lines[:i] + [new_line] + lines[i + 1:]) + b"\n")
            yield "line %d cut after the value's first byte" % i, (
                b"\n".join(lines[:i] + [line[:start + 1]] + lines[i + 1:]) + b"\n")
            yield "line %d cut before the value" % i, (
                b"\n".join(lines[:i] + [line[:start]] + lines[i + 1:]) + b"\n")
        yield "line %d dropped" % i, b"\n".join(lines[:i] + lines[i + 1:]) + b"\n"
        yield "line %d doubled" % i, b"\n".join(lines[:i + 1] + lines[i:]) + b"\n"
        yield "line %d copied to the end" % i, body + line + b"\n"
    yield "last newline removed", body[:-1]
    yield "a blank line added", body + b"\n"
    yield "every value made long", b"\n".join(
        x[:s[0]] + b"1" * 400 + x[s[1]:] if s else x
        for x, s in zip(lines, map(_value_span, lines))) + b"\n"


class Paths:
    """Notes which path parse() took: wraps Template.apply and expfmt.read_slice (the
    module global parse() calls) with functions that call them and record whether they
    did the work (a Parsed, True) or declined (None, False)."""

    def __init__(self) -> None:
        self.applied: List[bool] = []
        self.sliced: List[bool] = []
        apply, bulk = Template.apply, expfmt.read_slice

        def noted_apply(template: Template, body):  # type: ignore[no-untyped-def]
            done = apply(template, body)
            self.applied.append(done is not None)
            return done

        def noted_bulk(*args):  # type: ignore[no-untyped-def]
            done = bulk(*args)
            self.sliced.append(done)
            return done

        Template.apply = noted_apply  # type: ignore[method-assign]  # noting, then calling it
        expfmt.read_slice = noted_bulk  # type: ignore[attr-defined]  # the same

    def clear(self) -> None:
        self.applied, self.sliced = [], []


def outcome(parsed: Parsed) -> Tuple[str, Dict[str, int], list]:
    """(rendered text, drops, per family its name, type, typed, help, lines, identities)."""
    details = [(f.name, f.type, f.typed, f.help, list(f.lines()), list(f.identities()))
               for f in parsed.families.values()]
    return render(parsed.families.values()), dict(parsed.dropped), details


def _timed(body: Body, rw: Rewriter, problems: List[str], what: str, fast: bool = True
           ) -> tuple:
    """outcome() of parse(body, rw, fast=fast), or the exception it raised (a problem too)."""
    began = time.perf_counter()
    try:
        done = outcome(parse(body, rw, fast=fast))
    except Exception as e:  # noqa: BLE001 - any exception out of parse() is a bug
        problems.append("%s raised %r" % (what, e))
        done = ("raised %s" % type(e).__name__, {}, [])
    took = time.perf_counter() - began
    if took > MAX_SECONDS:
        problems.append("%s took %.2f s" % (what, took))
    return done


def compare(original: Body, mutated: Body, make: Callable[[], Rewriter], paths: Paths,
            counts: Dict[str, int], canonical: bool) -> List[str]:
    """The problems of one case: a fast path whose result differs from the reference's,
    a parse over MAX_SECONDS, a path that did not run as it should (`canonical`: the
    Template must replay the original body itself)."""
    problems: List[str] = []
    # The reference alone (fast=False): neither fast path runs.
    paths.clear()
    reference = _timed(mutated, make(), problems, "the reference", fast=False)
    if paths.applied or paths.sliced:
        problems.append("a fast path ran in the reference parse")
    # The template path: the same Rewriter scraped the original body before.
    rw = make()
    first = _timed(original, rw, problems, "the first scrape")
    rw.rotate()
    template = rw.templates.get(0)
    paths.clear()
    second = _timed(mutated, rw, problems, "the second scrape")
    if template is None:
        path = "no template"
    elif paths.applied != [True] and paths.applied != [False]:
        problems.append("Template.apply ran %r times" % paths.applied)
        path = "?"
    elif paths.applied[0]:
        path = "template"
        if rw.templates.get(0) is not template:
            problems.append("the Template was replaced although it applied")
    else:
        path = "template refused, then " + ("slices" if any(paths.sliced) else "lines")
    counts[path] = counts.get(path, 0) + 1
    if second[:2] != reference[:2]:
        problems.append("second scrape (%s): %s" % (path, _diff(second, reference)))
    elif second != reference:
        problems.append("second scrape (%s), families' details: %s"
                        % (path, _diff(second, reference)))
    if original == mutated and canonical and path != "template":
        problems.append("the Template did not apply to the same body (%s)" % path)
    if original == mutated and first != reference:
        problems.append("first scrape: %s" % _diff(first, reference))
    # The slice path: a fresh Rewriter, where `bulk` is set.
    rw = make()
    if rw.bulk:
        paths.clear()
        fresh = _timed(mutated, rw, problems, "the fresh scrape")
        path = "fresh: " + ("slices" if any(paths.sliced) else "lines")
        counts[path] = counts.get(path, 0) + 1
        if fresh != reference:
            problems.append("fresh scrape (%s): %s" % (path, _diff(fresh, reference)))
    return problems


def _diff(got: tuple, want: tuple) -> str:
    if got[1] != want[1]:
        return "dropped %r, the reference %r" % (got[1], want[1])
    if got[0] != want[0]:
        a, b = got[0].splitlines(), want[0].splitlines()
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return "output differs at line %d: %r, the reference %r" % (
            at + 1, a[at][:200] if at < len(a) else None, b[at][:200] if at < len(b) else None)
    for g, w in zip(got[2], want[2]):
        if g != w:
            return "family %r: %r, the reference %r" % (g[0], g[1:], w[1:])
    return "families %r, the reference %r" % ([g[0] for g in got[2]], [w[0] for w in want[2]])


# Bodies every line of which the Template takes as it is: its second scrape of the same
# body must be a replay.
CANONICAL = {"node_like", "node_like_big", "short_lines", "histograms", "summaries",
             "escapes", "issue17", "issue17_40", "issue17_1000"}

Case = Tuple[str, str, str, bytes, bytes]  # base, rewriter, what was done, original, mutated


def _with_value(body: bytes, line: int, value: bytes) -> bytes:
    lines = body.split(b"\n")
    start, stop = _value_span(lines[line])  # type: ignore[misc]
    lines[line] = lines[line][:start] + value + lines[line][stop:]
    return b"\n".join(lines)


def cases(quick: bool) -> Iterator[Case]:
    """Every case compared: first issue 17's (its last value broken after a scrape of the
    good body, at 40 and 1,000 lines), then each base body's mutations under each rewriter.

    quick: 60 mutations of each realistic body (node_like's 30, those of several slices 3),
    30 of every eighth seeded document (seconds); else 400 of each realistic body (60 of
    those of several slices), 40 of each document (a minute or so).
    """
    for lines in (40, 1000):
        good = issue17(lines).encode()
        for value in (b"12x", b"1" * 400, b"12345678901"):
            for rw_name in REWRITERS:
                yield ("issue17_%d" % lines, rw_name, "last value %r" % value[:20], good,
                       _with_value(good, lines, value))
    rnd = random.Random(17)
    for base_name, body in bases(quick):
        rewriters = list(BIG.get(base_name, REWRITERS))
        if base_name.startswith("doc"):  # small: two rewriters each, in turn
            at = int(base_name[3:])
            rewriters = [rewriters[at % len(rewriters)], rewriters[(at + 3) % len(rewriters)]]
        for rw_name in rewriters:
            done = list(mutations(body, rnd, quick))
            if base_name.startswith("doc"):
                budget = 30 if quick else 40
            else:
                budget = (3 if quick else 60) if base_name in BIG else \
                    (30 if base_name == "node_like" else 60) if quick else 400
            if len(done) > budget + 1:  # the body itself, then a sample
                done = done[:1] + rnd.sample(done[1:], budget)
            for what, mutated in done:
                yield base_name, rw_name, what, body, mutated


def run(todo: Iterable[Case], out=sys.stdout) -> Dict[str, int]:
    """Compares every case; prints a JSON line per problem (a line naming each base body
    and rewriter as they start) and returns the counts of cases and of the paths taken."""
    paths = Paths()
    counts: Dict[str, int] = {"cases": 0}
    group = None
    for base_name, rw_name, what, body, mutated in todo:
        if (base_name, rw_name) != group:
            group = (base_name, rw_name)
            print(json.dumps({"started": group}), file=out, flush=True)
        make = REWRITERS[rw_name]
        # The component's own text is parsed as str: realistic bodies are tried both ways.
        as_str = rw_name == "as_is" and not base_name.startswith("doc")
        for kind in ("bytes", "str") if as_str else ("bytes",):
            counts["cases"] += 1
            if kind == "str":
                problems = compare(body.decode(), mutated.decode("utf-8", "replace"), make,
                                   paths, counts, base_name in CANONICAL)
            else:
                problems = compare(body, mutated, make, paths, counts, base_name in CANONICAL)
            if problems:
                print(json.dumps({
                    "base": base_name, "rewriter": rw_name, "mutation": what, "kind": kind,
                    "problems": problems, "body": mutated.decode("utf-8", "backslashreplace")
                    if len(mutated) < 4000 else None}), file=out, flush=True)
    print(json.dumps({"counts": counts}), file=out, flush=True)
    return counts


def globs() -> Iterator[Tuple[str, List[bytes], List[bytes]]]:
    """(what, bodies of a first scrape, bodies of the second) of a source reading several
    files (a glob): Templates are kept by position, so a body may meet another's."""
    a, b = node_like(100), HISTOGRAMS.encode()
    a2 = _with_value(a, 5, b"12x")
    twin = a.replace(b"} 9", b"} 8")  # a's layout, other values
    yield "the same files", [a, b], [a, b]
    yield "the files swapped", [a, b], [b, a]
    yield "the second file mutated", [a, b], [a, b.replace(b"0.1", b"0.2")]
    yield "the first file mutated", [a, b], [a2, b]
    yield "a file gone", [a, b], [b]
    yield "a file added", [b], [b, a]
    yield "a file of the same layout", [a, twin], [twin, a]
    yield "a file's HELP changed", [a, b], [a.replace(b"Seconds the CPUs", b"Time CPUs"), b]


def compare_globs(out=sys.stdout) -> Dict[str, int]:
    """Each glob case under each rewriter: every body of the second scrape gives what the
    reference gives for it alone; prints a JSON line per problem, then the counts."""
    paths = Paths()
    counts: Dict[str, int] = {"cases": 0}
    for what, first, second in globs():
        for rw_name, make in REWRITERS.items():
            rw = make()
            for body in first:
                parse(body, rw)
            rw.rotate()
            for at, body in enumerate(second):
                counts["cases"] += 1
                problems: List[str] = []
                reference = _timed(body, make(), problems, "the reference", fast=False)
                template = rw.templates.get(at)
                paths.clear()
                got = _timed(body, rw, problems, "body %d of the second scrape" % at)
                path = "no template" if template is None else (
                    "template" if paths.applied == [True] else "template refused")
                counts[path] = counts.get(path, 0) + 1
                if got != reference:
                    problems.append("body %d (%s): %s" % (at, path, _diff(got, reference)))
                if problems:
                    print(json.dumps({"glob": what, "rewriter": rw_name,
                                      "problems": problems}), file=out, flush=True)
            rw.rotate()
            if set(rw.templates) != set(range(len(second))):
                print(json.dumps({"glob": what, "rewriter": rw_name, "problems": [
                    "templates kept for bodies %r" % sorted(rw.templates)]}), file=out)
    print(json.dumps({"counts": counts}), file=out, flush=True)
    return counts


if __name__ == "__main__":
    if sys.argv[1:] == ["globs"]:
        compare_globs()
    elif sys.argv[1:] == ["stdin"]:  # JSON cases [rewriter, original, mutated]
        run((("stdin", rw, "given", a.encode(), b.encode())
             for rw, a, b in json.load(sys.stdin)))
    else:
        run(cases(sys.argv[1:] == ["quick"]))
