"""The tokenizer: validates every line like Go's parser, splices labels, drops and counts junk."""
from __future__ import annotations

import random
import re
from typing import List, Optional

from moonraker_prometheus.sidecar import expfmt
from moonraker_prometheus.sidecar.expfmt import Parsed, Rewriter, decode, parse, render
from moonraker_prometheus.sidecar.expfmt.model import BodyState
from tests.sidecar.expfmt_corpus import COMMENTS, SAMPLES, documents
from tests.sidecar.support import promtool_check, series_ids

NODE = Rewriter([("exporter_name", "node"), ("site", "lab")])


def lines_of(text: str, rw: Rewriter = NODE) -> Parsed:
    return parse(text, rw)


def all_lines(p: Parsed):
    return [x for f in p.families.values() for x in f.lines()]


def test_labels_are_spliced_in_front_and_values_kept_verbatim():
    p = lines_of('# TYPE a gauge\na{x="1"} 1.5e3\na 2 1700000000000\n')
    assert all_lines(p) == [
        'a{exporter_name="node",site="lab",x="1"} 1.5e3',
        'a{exporter_name="node",site="lab"} 2 1700000000000',
    ]


def test_clashing_backend_label_is_kept_as_exported_label():
    p = lines_of('a{exporter_name="inner",site="x",exported_site="y"} 1\n')
    assert all_lines(p) == ['a{exporter_name="node",site="lab",exported_exporter_name="inner",'
                            'exported_exported_site="x",exported_site="y"} 1']


def test_honor_labels_keeps_the_backend_value():
    rw = Rewriter([("exporter_name", "node"), ("site", "lab")], honor_labels=True)
    assert all_lines(lines_of('a{site="x"} 1\n', rw)) == ['a{exporter_name="node",site="x"} 1']


def test_no_rewrite_passes_samples_through():
    rw = Rewriter([("exporter_name", "node")], rewrite=False)
    assert all_lines(lines_of('a{b="c"} 1\nb 2\n', rw)) == ['a{b="c"} 1', "b 2"]


def test_odd_label_values_survive_escaped_and_parse_with_promtool():
    text = ('# HELP odd Help with \\\\ backslash and \\n newline\n# TYPE odd gauge\n'
            'odd{q="say \\"hi\\"",b="back\\\\slash",n="new\\nline",u="zürich ✓ 東京"} 1\n'
            'odd { q = "spaced" , } 2\n')
    p = lines_of(text)
    assert p.dropped == {}
    out = render(p.families.values())
    promtool_check(out)
    labels = [dict(l) for _, l in series_ids(out)]
    assert labels[0]["q"] == 'say "hi"' and labels[0]["n"] == "new\nline"
    assert labels[0]["b"] == "back\\slash" and labels[0]["u"] == "zürich ✓ 東京"
    assert labels[1]["q"] == "spaced"


def test_invalid_lines_are_dropped_and_counted_never_passed_through():
    bad = [
        "no_value",
        "1starts_with_digit 1",
        'a{x="unterminated} 1',
        'a{x="1",,y="2"} 1',  # (`\\t` is no error: Prometheus stores a backslash and t)
        'a{x="1",x="2"} 1',
        'a{__name__="b"} 1',
        "a 1_000",
        "a 0x10",
        "a NaNs",
        'a{x=unquoted} 1',
        "a 1 12.5",
        "a 1 2 3",
    ]
    p = lines_of("\n".join(bad + ["good 1"]) + "\n")
    assert p.dropped == {"invalid_line": len(bad)}
    assert all_lines(p) == ['good{exporter_name="node",site="lab"} 1']


def test_special_values_are_accepted_and_crlf_lines_refused_as_prometheus_does():
    p = lines_of("a +Inf\nb -Inf\nc NaN\nd .5\ne 1.\nf +5\ng 1\r\n")
    assert [x.split(" ")[1] for x in all_lines(p)] == ["+Inf", "-Inf", "NaN", ".5", "1.", "+5"]
    assert p.dropped == {"invalid_line": 1}  # Go reads the value "1\r" and fails


def test_a_histogram_or_summary_whose_le_or_quantile_is_no_number_is_served_untyped():
    # Prometheus' scrape stores such a line as written (Go's text parser would refuse it)
    text = ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="x"} 1\nh_sum 2\n'
            '# TYPE s summary\ns{quantile="0.5"} 1\ns{quantile="half"} 1\n')
    p = lines_of(text)
    assert p.dropped == {}
    assert {n: (f.type, f.count) for n, f in p.families.items()} == {
        "h_bucket": ("untyped", 2), "h_sum": ("untyped", 1), "s": ("untyped", 2)}


def test_non_utf8_lines_are_dropped_and_counted():
    parsed = Parsed()
    text = decode(b"ok 1\nbad{x=\"\xff\xfe\"} 1\nalso_ok 2\n", parsed)
    parse(text, NODE, parsed)
    assert parsed.dropped == {"invalid_utf8": 1}
    assert len(all_lines(parsed)) == 2


def test_samples_group_into_their_declared_family():
    text = ("# HELP h Latency.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 2\nh_count 1\n"
            "# TYPE c counter\nc_total 3\nloose 4\n")
    p = lines_of(text)
    assert list(p.families) == ["h", "c", "c_total", "loose"]
    assert len(p.families["h"].lines()) == 3 and p.families["h"].help == "Latency."
    assert p.families["c_total"].type == "untyped"  # a 0.0.4 counter is named with _total


def test_duplicate_series_in_one_body_are_dropped_and_counted():
    p = lines_of('a{x="1"} 1\na{x="1"} 2\na{x="2"} 3\n')
    assert p.dropped == {"duplicate_series": 1}
    assert len(all_lines(p)) == 2


def test_conflicting_type_line_in_one_body_is_ignored():
    # Prometheus' scrape takes a second TYPE line (nothing is dropped), fails on a bogus one
    p = lines_of("# TYPE a gauge\na 1\n# TYPE a counter\n# TYPE b summary_bogus\nb 1\n")
    assert p.families["a"].type == "gauge"
    assert p.dropped == {"invalid_type": 1}


def test_keep_and_drop_filter_whole_families_by_name():
    rw = Rewriter([("exporter_name", "n")], keep=[re.compile("node_.*|go_.*")],
                  drop=[re.compile("go_.*")])
    text = ("# TYPE go_info gauge\ngo_info 1\n# TYPE node_a gauge\nnode_a 1\n"
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nother 1\n")
    p = lines_of(text, rw)
    assert [f.name for f in p.families.values()] == ["node_a"]
    assert p.dropped == {}


def test_next_scrape_reuses_validated_series_but_still_checks_values_and_types():
    rw = Rewriter([("exporter_name", "n")])
    first = parse('# TYPE h gauge\nh_bucket{le="x"} 1\na{k="v"} 1\nb 2\n', rw)
    rw.rotate()
    assert len(rw.cache) == 3 and first.dropped == {}
    second = parse('# TYPE h histogram\nh_bucket{le="x"} 1\na{k="v"} 1_0\na{k="v"} 2 17\n'
                   "b 1e999\nb 3\n", rw)
    assert all_lines(second) == ['h_bucket{exporter_name="n",le="x"} 1',
                                 'a{exporter_name="n",k="v"} 2 17', 'b{exporter_name="n"} 3']
    assert second.families["h_bucket"].type == "untyped"  # le="x" in a histogram
    assert second.dropped == {"invalid_line": 2}


def test_series_cache_forgets_series_that_stopped_appearing():
    rw = Rewriter([("exporter_name", "n")])
    parse("".join("old%d 1\n" % i for i in range(3000)), rw)
    rw.rotate()
    parse("new 1\n", rw)
    rw.rotate()
    assert len(rw.cache) <= 1


def test_next_scrape_of_the_same_layout_checks_only_values():
    rw = Rewriter([("exporter_name", "n")])
    text = '# TYPE a gauge\na{k="v"} 1\nb 2 1700000000000\n'
    parse(text, rw)
    rw.rotate()
    rw.cache.clear()
    again = parse(text.replace(" 1\n", " 5\n").replace(" 2 ", " 3 "), rw)
    assert all_lines(again) == ['a{exporter_name="n",k="v"} 5',
                                'b{exporter_name="n"} 3 1700000000000']
    assert rw.cache == {}  # no line was tokenized again


_VALUES = ["7", "-3.5", "1e3", "1.5E-3", "1e400", "-1e400", "+Inf", "NaN", "1_0", "0x1", "",
           "12 1700000000000", "1 007", "1 -5", "1 0", "5\t6", " 5", "1 9223372036854775808",
           "9" * 50, "1" * 400, "1" * 41 + "e-300", "}"]


def _next_scrape(doc, rnd):
    """The document with new values, and now and then another line or a line less."""
    out = []
    for line in doc:
        end = line.rfind("}") + 1 or line.find(" ")
        if line and line[0] != "#" and end > 0 and rnd.random() < 0.8:
            value = rnd.choice(_VALUES) if rnd.random() < 0.3 else str(rnd.randrange(100))
            line = line[:end] + (" " if rnd.random() < 0.95 else "") + value
        out.append(line)
    if rnd.random() < 0.1:
        out.insert(rnd.randrange(len(out) + 1), rnd.choice(doc))
    if rnd.random() < 0.1 and out:
        del out[rnd.randrange(len(out))]
    return out


def result(p: Parsed):
    """Everything parse() says of a body, for comparing two ways of reading it."""
    return p.dropped, [(f.name, f.type, f.typed, f.help, f.lines(), f.count, f.identities())
                       for f in p.families.values()]


def test_a_scrape_laid_out_as_the_last_parses_as_a_first_scrape_would():
    rnd = random.Random(11)

    for doc in documents():
        rws = [Rewriter(rewrite=False), Rewriter([("exporter_name", "n"), ("site", "x")])]
        for scrape in range(4):
            lines = doc if scrape < 2 else _next_scrape(doc, rnd)
            text = "".join(x + "\n" for x in lines)
            for rw in rws:
                fresh = Rewriter(rw.labels) if rw.labels else Rewriter(rewrite=False)
                assert result(parse(text, rw)) == result(parse(text, fresh)), lines
                rw.rotate()


def _valid_alone(line: str) -> bool:
    return parse(line + "\n", Rewriter(rewrite=False)).dropped == {}


def _big_body(rnd: random.Random) -> str:
    """A few slices' worth (see expfmt.model.SLICE_BYTES) of what exporters write, with the
    lines the slice-at-a-time reading must leave to the reference mixed in."""
    out = []
    for block in range(160):
        out += ["# HELP c%d Counter." % block, "# TYPE c%d counter" % block]
        out += ['c%d{cpu="%d",mode="m%d"} %d' % (block, i, i % 3, rnd.randrange(99))
                for i in range(12)]
        out += ["# TYPE h%d histogram" % block]
        out += ['h%d_bucket{le="%s"} %d' % (block, le, i) for i, le in enumerate(
            ("0.5", "1", "+Inf") if block != 100 else ("0.5", "one", "+Inf"))]
        out += ["h%d_sum 3" % block, "h%d_count 2" % block, "bare%d 1.5e3 17" % block]
        out += ['odd%d{path="C:\\\\d%d",q="say \\"%d\\""} 1' % (block, i, i)
                for i in range(2)]
        out += ['mixed%d{b="%d",a="x"} 1' % (block, block)] if block % 5 == 0 else []
        out += ['empty%d{a="",b="1"} 1' % block] if block % 9 == 0 else []
        out += ['clash%d{site="inner"} 1' % block] if block % 11 == 0 else []
        out += ['s%d{quantile="0.5"} 1' % block, "s%d_count 1" % block]
        out += ["# TYPE s%d summary" % block] if block % 13 == 0 else []
    return "".join(x + "\n" for x in out)


def test_a_first_scrape_read_a_slice_at_a_time_parses_as_line_by_line(monkeypatch):
    rnd = random.Random(5)
    samples = [x for x in SAMPLES if x.strip() and _valid_alone(x)]
    comments = [x for x in COMMENTS if _valid_alone(x)]
    valid = [[rnd.choice(samples + comments) for _ in range(rnd.randint(1, 15))]
             for _ in range(300)]
    # One family over two slices, the second read line by line (an invalid line in it).
    spanning = "# TYPE big gauge\n" + "".join('big{i="%d"} 1\n' % i for i in range(4000)) + \
        "big{i=x} 1\n" + "".join('big{i="%d",j="x"} 1\n' % i for i in range(9))
    bodies = [_big_body(rnd), spanning] + ["".join(x + "\n" for x in doc)
                                           for doc in valid + documents()[:200]]
    read: List[Optional[int]] = []  # per slice: samples the slice path kept, None if declined
    read_slice = expfmt.read_slice

    def counting(lines: List[str], st: BodyState) -> bool:
        before = st.count
        done = read_slice(lines, st)
        read.append(st.count - before if done else None)
        return done

    monkeypatch.setattr(expfmt, "read_slice", counting)

    def rewriters():
        return [Rewriter(rewrite=False), Rewriter([("exporter_name", "n"), ("site", "x")]),
                Rewriter([("exporter_name", "n")], drop=[re.compile("c1.*|h.*")])]

    for text in bodies:
        for rw, reference in zip(rewriters(), rewriters()):
            reference.bulk = False
            for scrape in (text, text.replace(" 1\n", " 2\n")):
                assert result(parse(scrape, rw)) == result(parse(scrape, reference)), scrape
                assert rw.cache == reference.cache
                rw.rotate()
                reference.rotate()
    taken = [x for x in read if x is not None]
    assert len(taken) > 200 and sum(taken) > 6000  # most of the big body, many documents


def test_a_canonical_body_is_read_without_tokenizing_a_line(monkeypatch):
    monkeypatch.setattr(expfmt.lines, "tokenize", None)  # calling it fails the test
    monkeypatch.setattr(expfmt.slices, "tokenize", None)
    text = "".join('# TYPE m%d gauge\nm%d{a="1",b="2"} 1\nm%d 2 17\n' % (i, i, i)
                   for i in range(2000))
    p = parse(text, Rewriter([("exporter_name", "n")]))
    assert p.dropped == {} and len(p.families) == 2000
    assert p.families["m7"].lines() == ['m7{exporter_name="n",a="1",b="2"} 1',
                                      'm7{exporter_name="n"} 2 17']


def test_next_scrape_of_the_same_layout_splices_labels_only_after_a_name():
    # A `{` in a label value is no place for our labels, in any scrape.
    rw = Rewriter([("exporter_name", "n")])
    text = '# TYPE a gauge\na{k="{",j="x{"} 1\na{k="v"} 2\nb 3\n# TYPE c gauge\nc{k="}"} 4\n'
    want = ['a{exporter_name="n",k="{",j="x{"} 1', 'a{exporter_name="n",k="v"} 2',
            'b{exporter_name="n"} 3', 'c{exporter_name="n",k="}"} 4']
    for _ in range(3):
        assert all_lines(parse(text, rw)) == want
        rw.rotate()
