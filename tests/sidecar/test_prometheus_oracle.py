"""What a real Prometheus stores when it scrapes a body directly, the merge serves.

The oracle for "valid" is Prometheus' own scrape parser (`textparse.PromParser`), as a real
Prometheus (Debian's 2.42) scraping the body shows, not `promtool check metrics` (Go's
`expfmt` text parser), which is stricter in places and more lenient in others. One
in-process HTTP server serves about 2,000 bodies, one path each (see corpus()): the
documents of the seeded corpus (tests/sidecar/expfmt_corpus.py), the lines it leaves out on
purpose and forms the scrape parser takes beyond promtool (EXTRA_DOCUMENTS), the minimal
bodies of KINDS, each as written and without its last newline; and the mutated lines the
merge refuses, each alone. ONE Prometheus scrapes them all as separate targets of one job
(about 10 s in all, most of it Prometheus' first target update). A scrape fails whole, so
per target:

- `up == 1`: the merge (`parse` with `Rewriter(rewrite=False)`, then `render`) must serve
  exactly the series Prometheus stored, with their values (NaN equals NaN, -0 is not 0),
  and count no drop but the repeated series Prometheus also left out (it stores the first
  sample of a series repeated in a scrape; `scrape_samples_scraped` counts them all);
- `up == 0`: nothing is stored; the merge's output must still pass promtool (so must all
  of them).

The job sets `honor_timestamps: false`: Prometheus still parses every timestamp (a bad one
fails the scrape) but stores each sample at the scrape's time, so a document with a
timestamp far in the future cannot move the head and make the other targets' samples
out of bounds. How the merge writes a timestamp is tested in test_expfmt_differential.py.

Each place where the merge refused what Prometheus' scrape stores (and promtool refuses) is
a kind in KINDS, with bodies of its own; the merge now serves what Prometheus stores for
each (test_the_merge_serves_what_prometheus_stores_for_each_kind), and
test_expfmt_differential.py takes Prometheus' word over promtool's for the lines of these
kinds. Any disagreement fails `test_the_merge_serves_what_prometheus_stores`.
"""
from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, FrozenSet, List, Sequence, Tuple

import pytest
import tornado.httpserver
import tornado.netutil
from tornado import httputil

from moonraker_prometheus.sidecar.expfmt import Rewriter, parse, render
from simulator.farm import PrometheusServer
from tests.sidecar.expfmt_corpus import COMMENTS, SAMPLES, documents
from tests.promtool import check_metrics
from tests.sidecar.support import promtool_check

Series = Tuple[str, FrozenSet[Tuple[str, str]]]
# The merge's drops that Prometheus makes too (it stores a repeated series' first sample).
_LIKE_PROMETHEUS = "duplicate_series"
_HAND_WRITTEN = set(SAMPLES + COMMENTS) | {"# TYPE a gauge", "# TYPE h histogram",
                                         "# TYPE s summary"}
# Scrapes a second that this machine (2 cores, shared) serves without timeouts: with more,
# timed-out scrapes cost Prometheus new connections and the server falls behind for good.
_RATE = 700
_DOC_LABEL = "oracle_doc"  # the target label telling documents apart (no body uses it)
_SCRAPE_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "scrape_samples_post_metric_relabeling", "scrape_series_added"}

# Lines beyond the corpus: the ones it leaves out because the merge is stricter there than
# promtool, and forms the scrape parser takes where promtool stops (blanks at the end and
# between labels, escapes and raw characters in label values, HELP and TYPE anywhere).
EXTRA_DOCUMENTS: List[List[str]] = [
    ["a 1 -5"], ['# TYPE h histogram', 'h_bucket{le="1",le="2"} 1'],
    ["# TYPE g gauge_histogram", "g 1"], ["# TYPE g gauge_histogram", "g_bucket{le=\"1\"} 1"],
    ["a 1 "], ["a 1\t"], ["a 1 5 "], ["a 1 5\t\t"], ['a{b="c"} 1 '], ["a 1 ", "b 2"],
    ['a{b="c" d="e"} 1'], ['a{b="c"d="e"} 1'], ['a{b="c"\td="e",} 1'], ['a{ b="c" } 1'],
    ['a{b="\\q"} 1'], ['a{b="\\x41"} 1'], ['a{b="\\u00e9"} 1'], ['a{b="c\\\\"} 1'],
    ['a{b="x', 'y"} 1'], ['a{b="', '"} 1'], ['a{b="\t"} 1'], ['a{b="\x0b\x1f"} 1'],
    ["# HELP a bad \\t escape", "a 1"], ["# HELP a trailing \\", "a 1"],
    ["# HELP a one", "# HELP a two", "a 1"], ["a 1", "# HELP a late"],
    ["a 1", "# TYPE a gauge"], ["# TYPE a gauge", "# TYPE a counter", "a 1"],
    ["# TYPE a gauge", "# TYPE a gauge", "a 1"], ["# TYPE a gauge", "a 1", "# TYPE a gauge"],
    ["#TYPE a bogus", "a 1"], ["#TYPE a counter", "# TYPE a gauge", "a 1"],
    ["#HELP a bad \\t escape", "a 1"], ["# TYPE a gauge", "b 1", "# TYPE b counter"],
    ["# TYPE h histogram", 'h_bucket{le="x"} 1'], ["# TYPE h histogram", 'h_bucket 1'],
    ["# TYPE h histogram", 'h_bucket{le=""} 1'], ["# TYPE s summary", 's{quantile="x"} 1'],
    ["# TYPE h histogram", 'h_bucket{le="1"} 1', 'h_bucket{le="1"} 2', "h_sum 3"],
    ["# TYPE h histogram", 'h_bucket{le="1"} 1', "h_count 2", 'h_bucket{le="1"} 3'],
    ["# TYPE s summary", 's{quantile="0.5"} 1', "s_sum 2", 's{quantile="0.5"} 3'],
    ["a 1", "a 2"], ["a 1", 'a{b=""} 2'], ["a NaN", "a 1"], ["a 1e-400"], ["a 4.9e-324"],
    ["a 0." + "0" * 400 + "1"], ["a " + "9" * 400], ["a 1 +5"], ["a 1 -0"], ["a 1 0017"],
    ["a 1", "", "", "b 2"], ["a 1", "#", "# ", "#x", "# EOF", "b 2"], ["\ta 1"],
    ["# TYPE a gauge"], ["# TYPE a untyped", "a 1"], ["# TYPE a unknown", "a 1"],
]


def variants(doc: List[str]) -> List[bytes]:
    """A document as written (every line ends with a newline), then without its last
    newline (the last line as several exporters and scripts end it)."""
    text = "".join(x + "\n" for x in doc).encode("utf-8")
    return [text, text[:-1]]


@dataclass
class Stored:
    """What Prometheus made of one target's latest scrape."""
    up: int = -1
    scraped: int = -1  # scrape_samples_scraped: samples parsed, repeated series included
    error: str = ""  # the target's lastError
    series: Dict[Series, float] = field(default_factory=dict)


class Oracle:
    """One Prometheus scraping each body as a target of its own, every second (every
    ceil(n / _RATE) seconds for n bodies), from one in-process HTTP server: body i is path
    /i, labelled oracle_doc="i"."""

    def __init__(self, folder: str, bodies: Sequence[bytes]) -> None:
        self.bodies = list(bodies)
        self.server = BodyServer(self.bodies)
        groups = [{"targets": [self.server.address],
                   "labels": {"__metrics_path__": "/%d" % i, _DOC_LABEL: str(i)}}
                  for i in range(len(self.bodies))]
        # 1 s, or longer when 1 s would mean more than _RATE scrapes a second
        interval = "%ds" % -(-len(self.bodies) // _RATE)
        job = ("  - job_name: oracle\n    scrape_interval: %s\n    scrape_timeout: %s\n"
               "    honor_timestamps: false\n    static_configs: %s\n"
               % (interval, interval, json.dumps(groups)))
        self.prom = PrometheusServer(folder, job, interval=interval)
        try:
            self.prom.start()
        except BaseException:
            self.server.close()
            raise

    def close(self) -> None:
        self.prom.stop()
        self.server.close()

    def stored(self, timeout: float = 40.0) -> List[Stored]:
        """What Prometheus stored from its latest scrape of each target, once every target
        has been scraped (the bodies do not change)."""
        wanted = set(map(str, range(len(self.bodies))))
        deadline = time.monotonic() + timeout
        while True:
            times = self.prom.query('timestamp(up{job="oracle"})')
            fresh = {s["metric"][_DOC_LABEL] for s in times}
            failed: List[str] = []
            if fresh == wanted:
                result = self.prom.query('{job="oracle"}')
                errors = {t["labels"][_DOC_LABEL]: t["lastError"] for t in self.prom.targets()}
                # a scrape that failed on the way (not on the body) does not count
                failed = [e for e in errors.values() if e.startswith("Get ")]
                if not failed:
                    break
            assert time.monotonic() < deadline, (
                "Prometheus did not scrape every target: %d of %d, %d failed (%s)\n%s" % (
                    len(fresh), len(wanted), len(failed), failed[:3], self.prom.log()))
            time.sleep(0.5)
        out = {i: Stored(error=errors[i]) for i in wanted}
        for s in result:
            labels = dict(s["metric"])
            doc = out[labels.pop(_DOC_LABEL)]
            del labels["job"], labels["instance"]
            name = labels.pop("__name__")
            if name == "up":
                doc.up = int(s["value"][1])
            elif name == "scrape_samples_scraped":
                doc.scraped = int(s["value"][1])
            elif name not in _SCRAPE_SERIES:
                doc.series[(name, frozenset(labels.items()))] = float(s["value"][1])
        return [out[str(i)] for i in range(len(self.bodies))]


class BodyServer:
    """Tornado on a thread of its own serving bodies[i] at /i, with keep-alive and no
    RequestHandler: Prometheus scrapes about 2,000 targets a second here, and a server that
    falls behind makes scrapes time out, which costs it new connections."""

    def __init__(self, bodies: Sequence[bytes]) -> None:
        ok = httputil.ResponseStartLine("HTTP/1.1", 200, "OK")
        missing = httputil.ResponseStartLine("HTTP/1.1", 404, "Not Found")

        def respond(request: httputil.HTTPServerRequest) -> None:
            index = request.path[1:]
            found = index.isascii() and index.isdigit() and int(index) < len(bodies)
            body = bodies[int(index)] if found else b""
            headers = httputil.HTTPHeaders({"Content-Type": "text/plain; version=0.0.4",
                                            "Content-Length": str(len(body))})
            request.connection.write_headers(ok if found else missing, headers, body)
            request.connection.finish()

        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1", backlog=4096)
        self.address = "127.0.0.1:%d" % sockets[0].getsockname()[1]
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = tornado.httpserver.HTTPServer(respond)
            server.add_sockets(sockets)
            self.loop.call_soon(started.set)
            self.loop.run_forever()
            server.stop()
            self.loop.run_until_complete(server.close_all_connections())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        started.wait(10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# The merge's output is canonical text format 0.0.4 (and promtool checks it): a sample line
# is a name, labels in braces (values escaped with \\, \" and \n), one blank, the value and
# maybe a blank and a timestamp. prometheus_client's parser would rename counters (`_total`)
# and read `-0` as 0.
_SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?[0-9]+)?')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?')
_UNESCAPE = re.compile(r'\\(.)')


def served_series(text: str) -> Dict[Series, float]:
    """{(name, label set without empty values): value} of the merge's output; a series
    written twice is an error."""
    out: Dict[Series, float] = {}
    for line in text.split("\n"):
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.fullmatch(line)
        assert m, "not a canonical sample line: %r" % line
        labels, end = [], 0
        for lm in _LABEL.finditer(m.group(2) or ""):
            assert lm.start() == end, "not canonical labels: %r" % line
            end = lm.end()
            value = _UNESCAPE.sub(lambda e: "\n" if e.group(1) == "n" else e.group(1),
                                  lm.group(2))
            if value:
                labels.append((lm.group(1), value))
        assert end == len(m.group(2) or ""), "not canonical labels: %r" % line
        key = (m.group(1), frozenset(labels))
        assert key not in out, "series served twice: %r" % line
        out[key] = float(m.group(3))
    return out


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b and math.copysign(1, a) == math.copysign(1, b)


@dataclass
class Merged:
    """What the merge made of a body: its output and its drops by reason."""
    text: str
    dropped: Dict[str, int]


def merged(body: bytes) -> Merged:
    """The merge of one body as a source with no_rewrite (no labels added)."""
    parsed = parse(body, Rewriter(rewrite=False))
    return Merged(render(parsed.families.values()), dict(parsed.dropped))


def disagreement(body: bytes, stored: Stored, ours: Merged) -> str:
    """Why the merge's output of `body` is not what Prometheus stored ("" if it is)."""
    if stored.up != 1:
        return ""
    try:
        served = served_series(ours.text)
    except AssertionError as e:
        return str(e)
    problems = []
    missing = {k: v for k, v in stored.series.items() if k not in served}
    extra = {k: v for k, v in served.items() if k not in stored.series}
    changed = {k: (v, served[k]) for k, v in stored.series.items()
               if k in served and not _same(v, served[k])}
    if missing:
        problems.append("Prometheus stored, the merge does not serve: %s" % _show(missing))
    if extra:
        problems.append("the merge serves, Prometheus did not store: %s" % _show(extra))
    if changed:
        problems.append("stored and served values differ: %s" % _show(changed))
    repeated = stored.scraped - len(stored.series)  # samples Prometheus did not store
    if {r: n for r, n in ours.dropped.items() if r != _LIKE_PROMETHEUS} \
            or ours.dropped.get(_LIKE_PROMETHEUS, 0) != repeated:
        problems.append("the merge counts drops %s, Prometheus left out %d repeated samples"
                        % (ours.dropped, repeated))
    return "; ".join(problems)


def _show(series: Dict[Series, object]) -> str:
    return ", ".join("%s{%s} %s" % (k[0], ",".join("%s=%r" % kv for kv in sorted(k[1])), v)
                     for k, v in sorted(series.items(), key=repr))


@dataclass
class Case:
    """One target: a document (lines), the body served, what Prometheus stored from it
    and what the merge made of it."""
    doc: List[str]
    body: bytes
    stored: Stored
    merged: Merged


def lines_merged_alone(line: str) -> bool:
    """The merge takes `line` as a document of its own (drops nothing)."""
    return not merged(line.encode("utf-8") + b"\n").dropped


def corpus() -> Tuple[List[List[str]], List[List[str]]]:
    """The documents served (each also without its last newline), and the lines served
    alone.

    The seeded corpus mixes about one bad line into each mutated document, and one bad
    line fails a scrape whole: Prometheus would store none of them. So each mutated
    document is served without the lines the merge refuses alone, and each line the merge
    refuses is served alone: where Prometheus stores such a line, the merge refuses what
    Prometheus' scrape stores; the rest of the document, where Prometheus takes it,
    shows how lines act together (HELP and TYPE anywhere, repeated series, members).
    """
    docs = documents()
    hand = [d for d in docs if all(x in _HAND_WRITTEN for x in d)]
    mutated = [d for d in docs if not all(x in _HAND_WRITTEN for x in d)]
    refused = {x for d in mutated for x in d if not lines_merged_alone(x)}
    reduced = [[x for x in d if x not in refused] for d in mutated]
    minimal = [list(b) for k in KINDS for b in k.bodies]
    return (hand + EXTRA_DOCUMENTS + minimal + [d for d in reduced if d],
            [[x] for x in sorted(refused - _HAND_WRITTEN)])  # those are in `hand`


def run_oracle(folder: str) -> List[Case]:
    """Every document of corpus(), both variants, and every line alone: what Prometheus
    stored from each, and what the merge made of it."""
    docs, alone = corpus()
    served = [(d, b) for d in docs for b in variants(d)] + [(x, variants(x)[0]) for x in alone]
    oracle = Oracle(folder, [b for _, b in served])
    try:
        cases = [Case(d, b, Stored(), merged(b)) for d, b in served]  # while it scrapes
        for case, stored in zip(cases, oracle.stored()):
            case.stored = stored
    finally:
        oracle.close()
    return cases


# Places where Prometheus' scrape stores what promtool refuses (and the merge refused), each
# with bodies (one document each, as lines) and a test for whether a document has a line of
# the kind (test_expfmt_differential.py takes Prometheus' word for such lines).
@dataclass(frozen=True)
class Kind:
    """`bodies`: documents Prometheus stores and promtool refuses; `explains`: whether a
    document has a line of the kind; `takes`: whether a line promtool refused is one."""
    name: str
    reason: str
    bodies: Tuple[Tuple[str, ...], ...]
    explains: Callable[[Sequence[str]], bool]
    # Whether a line promtool refuses is one of this kind, which Prometheus' scrape takes.
    takes: Callable[[str], bool]


def _samples(doc: Sequence[str]) -> List[str]:
    return [x for x in doc if x.strip() and not x.lstrip().startswith("#")]


_COMMENT = re.compile(r"[ \t]*#[ \t]*(HELP|TYPE)[ \t]+([a-zA-Z_:][a-zA-Z0-9_:]*)")
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
                       r"|[+-]?(?i:inf|infinity)|(?i:nan)", re.ASCII)  # not ı for i


def _not_go_float(value: str) -> bool:
    """Go's ParseFloat refuses it (out of range included)."""
    return not _GO_FLOAT.fullmatch(value) or (
        not value.lstrip("+-")[:1].isalpha() and math.isinf(float(value)))


def _headers(doc: Sequence[str], kind: str) -> List[Tuple[int, str]]:
    out = []
    for i, x in enumerate(doc):
        m = _COMMENT.match(x)
        if m and m.group(1) == kind:
            out.append((i, m.group(2)))
    return out


def _type_late(doc: Sequence[str]) -> bool:
    first = next((i for i, x in enumerate(doc) if x in _samples(doc)), len(doc))
    return any(i > first for i, _ in _headers(doc, "TYPE")) or any(
        re.match(r"[ \t]*#TYPE", x) for x in doc[first:])


def _is_sample(line: str) -> bool:
    return bool(_samples([line]))


def _trailing_blank(line: str) -> bool:
    return _is_sample(line) and line[-1] in " \t"


def _without_comma(line: str) -> bool:
    return _is_sample(line) and bool(re.search(r'"[ \t]*[a-zA-Z_][a-zA-Z0-9_]*[ \t]*=', line))


def _unknown_escape(line: str) -> bool:
    return _is_sample(line) and bool(re.search(r'\\[^\\"n]', line.replace("\\\\", "")))


def _not_float_label(line: str) -> bool:
    return _is_sample(line) and any(
        _not_go_float(v) for v in re.findall(r'\b(?:le|quantile)[ \t]*=[ \t]*"([^"]*)"', line))


def _help_line(line: str) -> bool:
    """A HELP line Prometheus' scrape parser takes (any text after a metric name)."""
    return bool(re.match(r"[ \t]*#[ \t]+HELP[ \t]+[a-zA-Z_:]", line))


def _type_line(line: str) -> bool:
    """A TYPE line the merge takes: a metric name and a known type (Prometheus' scrape
    parser wants it in lower case, the merge, as Go's text parser, in any case)."""
    return bool(re.fullmatch(r"[ \t]*#[ \t]+TYPE[ \t]+[a-zA-Z_:][a-zA-Z0-9_:]*[ \t]+"
                             r"(?i:counter|gauge|histogram|summary|untyped)", line))


def _help_go_refuses(line: str) -> bool:
    """A HELP line Go's text parser refuses and Prometheus' scrape parser takes: a bad
    escape or a trailing backslash, a name running into other text; or any line written
    `#HELP ...` (a comment to Prometheus, a HELP line to Go)."""
    m = re.match(r"[ \t]*#([ \t]*)HELP[ \t]", line)
    if not m:
        return False
    if not m.group(1):
        return True
    name = re.match(r"[ \t]*[a-zA-Z_:][a-zA-Z0-9_:]*", line[m.end():])
    if not name:
        return False  # both refuse it
    text = line[m.end() + name.end():]
    return text[:1] not in ("", " ", "\t") or bool(
        re.search(r"\\(?:[^\\n]|$)", text.replace("\\\\", "")))


def _hash_type_go_refuses(line: str) -> bool:
    """A line `#TYPE ...` (a comment to Prometheus) that Go's text parser refuses as a TYPE
    line (a type it does not know, no metric name), or whose type Prometheus' scrape
    parser does not know (gauge_histogram)."""
    return bool(re.match(r"[ \t]*#TYPE[ \t]", line)) and not re.fullmatch(
        r"[ \t]*#TYPE[ \t]+[a-zA-Z_:][a-zA-Z0-9_:]*[ \t]+"
        r"(?i:counter|gauge|histogram|summary|untyped)", line)


def _repeated(doc: Sequence[str], kind: str) -> bool:
    names = [n for _, n in _headers(doc, kind)]
    if kind == "TYPE":
        names += [x.split()[1] for x in doc if re.match(r"[ \t]*#TYPE[ \t]+[^ \t]", x)]
    return len(names) != len(set(names))


KINDS = [
    Kind("trailing_blank",
         "blanks or tabs after the value or the timestamp: Prometheus stores the sample; "
         "the merge serves it without them",
         (("a 1 ",), ("a 1\t",), ("a 1 5 ",), ('a{b="c"} 1\t\t',), ("a 1 \t ", "b 2"),
          ('a{b="c"} +Inf\t17 ',)),
         lambda doc: any(x[-1] in " \t" for x in _samples(doc)), _trailing_blank),
    Kind("labels_without_comma",
         "label pairs without a comma between them: Prometheus stores the series; the merge "
         "serves it with commas",
         (('a{b="c" d="e"} 1',), ('a{b="c"d="e"} 1',), ('a{b="c"\td="e",} 1',),
          ('a{ b = "c"  d="e" } 1',), ('a{b="c"d="e"f="g"} 1',)),
         lambda doc: any(map(_without_comma, _samples(doc))), _without_comma),
    Kind("label_value_unknown_escape",
         "a backslash before a character other than \\, \" or n in a label value: "
         "Prometheus stores the backslash and the character as they are; the merge serves "
         "the backslash escaped (\\\\)",
         (('a{b="\\q"} 1',), ('a{b="\\t"} 1',), ('a{b="\\u00e9"} 1',), ('a{b="\\\\\\q"} 1',),
          ('a{b="x\\\u00e9"} 1',), ('a{b="\\a\\"\\n\\\\"} 1',)),
         lambda doc: any(map(_unknown_escape, _samples(doc))), _unknown_escape),
    Kind("label_value_raw_newline",
         "a raw newline inside a quoted label value: Prometheus stores the value with the "
         "newline; the merge serves it escaped (\\n)",
         (('a{b="x', 'y"} 1'), ('a{b="', '"} 1'), ('a{b="x', '', 'y",c="1', '2"} 1'),
          ("a 1", 'a{b="#', '"} 2 5', "b 3")),
         lambda doc: any(re.sub(r"\\.", "", x).count('"') % 2 for x in _samples(doc)),
         lambda line: False),  # a line alone is no sample: nothing to take
    Kind("le_or_quantile_not_a_float",
         "a histogram's le or a summary's quantile that is not a float (or empty, or out of "
         "range): Prometheus stores the series with the label as written; the merge serves "
         "the family's lines untyped, one family per sample name, as Go's text parser reads "
         "them without the TYPE line",
         (("# TYPE h histogram", 'h_bucket{le="x"} 1'),
          ("# TYPE h histogram", 'h_bucket{le=""} 1'),
          ("# TYPE h histogram", 'h_bucket{le="1e999"} 1'),
          ("# TYPE h histogram", 'h_sum{le="x"} 1'),
          ("# TYPE s summary", 's{quantile="half"} 1'),
          ("# TYPE s summary", 's_count{quantile="x"} 1'),
          ("# HELP h x", "# TYPE h histogram", 'h_bucket{le="1"} 1', 'h_bucket{le="1_000"} 2',
           "h_sum 3", "h_count 2"),
          ("# TYPE h histogram", 'h_bucket{le="0x1p3"} 1'),
          ("# TYPE s summary", 's{quantile="+Inf "} 1', "s_sum 1")),
         lambda doc: any(map(_not_float_label, _samples(doc))), _not_float_label),
    Kind("help_refused",
         "a HELP line with an escape other than \\\\ and \\n, a trailing backslash, no blank "
         "after the name, or written #HELP: Prometheus takes it (#HELP is a comment to it) "
         "and stores the samples; the merge serves them and the HELP text as Prometheus "
         "reads it (a backslash before another character is itself), and counts nothing",
         (("# HELP a bad \\t escape", "a 1"), ("# HELP a trailing \\", "a 1"),
          ("# HELP a{ x", "a 1"), ("#HELP a bad \\t escape", "a 1"), ("# HELP a x\\y", "a 1"),
          ("#HELP 1x", "a 1")),
         lambda doc: any(map(_help_go_refuses, doc)), _help_go_refuses),
    Kind("help_repeated",
         "a second HELP line for a metric: Prometheus takes it; the merge serves the samples "
         "and the first HELP, and counts nothing",
         (("# HELP a one", "# HELP a two", "a 1"), ("# HELP a one", "a 1", "# HELP a one"),
          ("# HELP a one", "# HELP a", "# HELP a two", "a 1")),
         lambda doc: _repeated(doc, "HELP"), _help_line),
    Kind("type_after_samples",
         "a TYPE line after samples of its family: Prometheus stores the samples (a TYPE "
         "line never changes what it stores); the merge serves them with the family's "
         "first type (untyped for a sample before any TYPE line), and counts nothing",
         (("a 1", "# TYPE a gauge"), ("# TYPE a gauge", "b 1", "# TYPE b counter"),
          ('a{x="1"} 1', "# TYPE a gauge", 'a{x="2"} 2'),
          ("# TYPE h histogram", 'h_bucket{le="1"} 1', "# TYPE h_bucket gauge")),
         _type_late, _type_line),
    Kind("type_repeated",
         "a second TYPE line for a metric, the same type or another, or a #TYPE line (a "
         "comment to Prometheus) before a TYPE line: Prometheus stores the samples; the "
         "merge serves them with the first TYPE line's type, and counts nothing",
         (("# TYPE a gauge", "# TYPE a gauge", "a 1"),
          ("# TYPE a gauge", "# TYPE a counter", "a 1"),
          ("#TYPE a counter", "# TYPE a gauge", "a 1")),
         lambda doc: _repeated(doc, "TYPE"), _type_line),
    Kind("hash_type_unknown",
         "#TYPE without a blank after the # and a type Go does not know, or no metric name: "
         "a comment to Prometheus, which stores the samples; the merge serves them "
         "untyped, and counts nothing",
         (("#TYPE a bogus", "a 1"), ("#TYPE a gauge_histogram", "a 1"),
          ("#TYPE 1x gauge", "a 1"), ("#TYPE a GAUGE x", "a 1")),
         lambda doc: any(map(_hash_type_go_refuses, doc)),
         lambda line: bool(re.match(r"[ \t]*#TYPE[ \t]", line))),  # any: a comment
    Kind("nul_ends_the_body",
         "a line starting with a NUL byte (after blanks, if any): Prometheus' scrape parser "
         "reads it as the end of the body and stores what came before (a file padded with "
         "zeros after a crash); the merge reads a line of NUL bytes and blanks as a blank "
         "line (and serves what follows: test_expfmt_differential.py)",
         (("a 1", "\x00"), ("# TYPE a gauge", "a 1", "\x00\x00\x00", "\x00"),
          ("a 1", "  \x00")),
         lambda doc: any(x.lstrip(" \t").startswith("\x00") for x in doc),
         lambda line: not line.strip(" \t\x00")),
]


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> List[Case]:
    return run_oracle(str(tmp_path_factory.mktemp("prometheus")))


def test_the_merge_serves_what_prometheus_stores(cases):
    """Every body Prometheus stores (up == 1): the merge serves the same series with the
    same values and counts no drop but the repeated series Prometheus left out too."""
    stored = [c for c in cases if c.stored.up == 1]
    assert len(stored) > 600 and sum(len(c.stored.series) > 2 for c in stored) > 50
    assert all(c.stored.up in (0, 1) for c in cases)
    problems = ["%r: %s" % (c.body, disagreement(c.body, c.stored, c.merged))
                for c in stored if disagreement(c.body, c.stored, c.merged)]
    assert not problems, "%d of %d bodies Prometheus stores disagree:\n%s" % (
        len(problems), len(stored), "\n".join(problems[:20]))


def test_the_merged_output_passes_promtool_whatever_prometheus_made_of_the_body(cases):
    """Where Prometheus refuses a body (up == 0, a scrape fails whole) nothing is stored,
    but what the merge serves must still parse; so must what it serves of the others.
    One promtool run: each output's names get a prefix of their own, so outputs cannot
    clash."""
    outputs = sorted({c.merged.text for c in cases})
    assert sum(1 for c in cases if c.stored.up == 0 and c.merged.text) > 150
    text = []
    for n, out in enumerate(outputs):
        for line in out.split("\n")[:-1]:  # not splitlines(): \x0b, \u2028 are no ends
            if line.startswith(("# HELP ", "# TYPE ")):
                text.append("%sd%d_%s" % (line[:7], n, line[7:]))
            else:
                text.append("d%d_%s" % (n, line))
    promtool_check("".join(x + "\n" for x in text))


def test_prometheus_stores_what_promtool_refuses_in_the_body_of_every_kind(cases):
    """The premise of each kind below: Prometheus' scrape takes its bodies, both as written
    and without the last newline, and promtool refuses them (but for `#TYPE a
    gauge_histogram`, a type promtool knows and Prometheus' scrape parser does not: the
    merge refused it as the stricter of the two, though it is a comment to Prometheus)."""
    by_body = {c.body: c for c in cases}
    for kind in KINDS:
        for doc in kind.bodies:
            for body in variants(list(doc)):
                c = by_body[body]
                assert c.stored.up == 1 and c.stored.series, (kind.name, body, c.stored)
            assert kind.explains(list(doc)), (kind.name, doc)
            assert check_metrics(variants(list(doc))[0].decode())[0] == 1 or \
                doc[0] == "#TYPE a gauge_histogram", (kind.name, doc)


@pytest.mark.parametrize("kind", [pytest.param(k, id=k.name) for k in KINDS])
def test_the_merge_serves_what_prometheus_stores_for_each_kind(cases, kind):
    """`kind.reason`: what Prometheus does, and so what the merge serves."""
    by_body = {c.body: c for c in cases}
    problems = [(body, disagreement(body, by_body[body].stored, by_body[body].merged))
                for doc in kind.bodies for body in variants(list(doc))]
    assert not [p for p in problems if p[1]], problems
