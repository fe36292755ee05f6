"""The merge accepts exactly the lines Prometheus accepts: tested against promtool, and where
promtool and Prometheus' scrape parser disagree, against Prometheus.

promtool (`check metrics`, Go's expfmt text parser) stops at the first bad line, so each
document of the generated corpus is run again without that line until promtool accepts the
rest: that yields the lines Go's text parser rejects, each in its context. Of those, the
lines of a kind that Prometheus' scrape parser takes (KINDS of test_prometheus_oracle.py,
where a real Prometheus scrapes them: the oracle for "valid") are kept; the merge must drop
exactly the others (as many, and its output equal to its output of the document without
them), and everything it writes, all documents merged as sources, must parse.
"""
from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import pytest

from moonraker_prometheus.sidecar.expfmt import Parsed, Rewriter, parse, render
from moonraker_prometheus.sidecar.merge import MergeState
from tests.promtool import check_metrics
from tests.sidecar.expfmt_corpus import documents
from tests.sidecar.support import promtool_check
from tests.sidecar.test_prometheus_oracle import KINDS, lines_merged_alone

_ERROR_LINE = re.compile(r"text format parsing error in line (\d+):")
_REJECTED = ("invalid_line", "invalid_type", "type_conflict")


def promtool_rejected(lines: List[str]) -> List[int]:
    """Indexes of the lines promtool rejects, each found with the earlier ones removed."""
    left = list(range(len(lines)))
    rejected: List[int] = []
    while True:
        code, out = check_metrics("".join(lines[i] + "\n" for i in left))
        if code in (0, 3):  # 3: lint findings only, the text parsed
            return rejected
        m = _ERROR_LINE.search(" ".join(out))
        assert code == 1 and m, "promtool failed otherwise (%d): %s" % (code, out)
        rejected.append(left.pop(int(m.group(1)) - 1))


def ours(lines: List[str]) -> Tuple[str, Parsed]:
    parsed = parse("".join(x + "\n" for x in lines), Rewriter(rewrite=False))
    dropped = {r: n for r, n in parsed.dropped.items() if r in _REJECTED}
    return render(parsed.families.values()), dropped


def prometheus_takes(line: str) -> bool:
    """A line promtool rejected is of a kind Prometheus' scrape parser takes: a comment
    line of such a kind, or a sample line of such a kind that the merge takes alone
    (test_prometheus_oracle.py serves each in its document to a real Prometheus, and each
    line the merge refuses alone)."""
    return any(kind.takes(line) for kind in KINDS) and (
        line.lstrip(" \t").startswith("#") or lines_merged_alone(line))


def disagreement(lines: List[str]) -> str:
    rejected = [i for i in promtool_rejected(lines) if not prometheus_takes(lines[i])]
    kept = [x for i, x in enumerate(lines) if i not in rejected]
    out_all, dropped_all = ours(lines)
    out_kept, dropped_kept = ours(kept)
    if dropped_kept or sum(dropped_all.values()) != len(rejected) or out_all != out_kept:
        return ("document %r\n  promtool rejects, Prometheus too, %r\n  the merge drops %s, "
                "and of the rest %s\n  output %r\n  output without the rejected lines %r"
                % (lines, [lines[i] for i in rejected], dropped_all, dropped_kept, out_all,
                   out_kept))
    return ""


@pytest.mark.slow  # ~2,000 promtool runs of ~35 ms each: not in `-m unit`
def test_merge_accepts_exactly_the_lines_promtool_accepts():
    docs = documents()
    assert sum(len(d) for d in docs) > 2500
    with ThreadPoolExecutor(4) as pool:
        problems = [p for p in pool.map(disagreement, docs) if p]
    assert not problems, "%d of %d documents disagree, e.g.\n%s" % (
        len(problems), len(docs), "\n".join(problems[:5]))


def test_merged_output_of_the_whole_corpus_parses():
    state = MergeState()
    for n, doc in enumerate(documents()):
        body = ("".join(x + "\n" for x in doc)).encode()
        state.add("t%d" % n, Rewriter([("exporter_name", "t%d" % n)]), [body])
        state.add("u%d" % n, Rewriter([("exporter_name", "u%d" % n)], rewrite=False), [body])
    state.drop_member_clashes()
    out = state.render()
    assert out.count("\n") > 500
    promtool_check(out)


@pytest.mark.parametrize("text, served", [
    # The scrape parser reads a timestamp as digits only.
    ("a 1 -5", ""),
    # A series has one value per label name (Go's text parser skips a repeated `le`).
    ('# TYPE h histogram\nh_bucket{le="1",le="2"} 1', ""),
    # The scrape parser knows no gauge_histogram: the samples are served untyped.
    ("# TYPE g gauge_histogram\ng 1", "# TYPE g untyped\ng 1\n"),
])
def test_merge_is_stricter_where_prometheus_scrape_parser_is(text, served):
    assert check_metrics(text + "\n")[0] in (0, 3)  # promtool would take it
    out, dropped = ours(text.split("\n"))
    assert sum(dropped.values()) == 1
    assert out == served


def test_timestamps_are_written_as_the_scrape_parser_reads_them():
    out, dropped = ours(["a 1 +5", "b 1 0017", "c 1 9223372036854775807", "d 1 -0"])
    assert not dropped
    assert out.splitlines()[1::2] == ["a 1 5", "b 1 17", "c 1 9223372036854775807", "d 1 0"]


def test_a_last_line_without_its_newline_is_served_as_prometheus_scrape_stores_it():
    # promtool's parser refuses it, Prometheus' scrape parser stores it (the oracle:
    # tests/sidecar/test_scrape_oracle.py), and several exporters and scripts end so.
    text = "# TYPE a gauge\na 1\nb 12"
    assert check_metrics(text)[0] == 1
    parsed = parse(text, Rewriter(rewrite=False))
    assert render(parsed.families.values()) == "# TYPE a gauge\na 1\n# TYPE b untyped\nb 12\n"
    assert parsed.dropped == {}
    assert parse("a 1\n  ", Rewriter(rewrite=False)).dropped == {}  # blanks are no line


def test_a_body_without_its_last_newline_is_served_by_the_template_path_too():
    rw = Rewriter([("exporter_name", "x")])
    for value in ("1", "2", "3"):  # first scrape, then the template's replays
        parsed = parse("# TYPE a gauge\na 1\nb " + value, rw)
        rw.rotate()
        assert render(parsed.families.values()).endswith('b{exporter_name="x"} %s\n' % value)
    assert rw.templates[0] is not None


def test_a_line_of_nul_bytes_is_as_a_blank_line_and_what_follows_is_served():
    # A Prometheus scraping `a 1\n\x00\n` stores `a` and reports no error (a NUL byte
    # starting a line ends the body for it: the oracle's kind nul_ends_the_body), so the
    # padding of a file zero-filled after a crash is no dropped line. Prometheus would lose
    # what follows such a line, silently; the merge serves it.
    for text, dropped in (("a 1\n\x00\nb 2\n", {}), ("a 1\n\x00\x00\n\x00", {}),
                          ("a 1\n \x00x\n\x00\n\nb 2\n", {"invalid_line": 1})):
        parsed = parse(text, Rewriter(rewrite=False))
        out = render(parsed.families.values())
        assert out.startswith("# TYPE a untyped\na 1\n") and out.endswith(
            "b 2\n" if "b" in text else "a 1\n")
        assert parsed.dropped == dropped
