"""UTF-8 metric and label names (Prometheus 3, node_exporter's textfile collector): quoted
names are served in the text format 0.0.4 escaped as Prometheus' `underscores` escaping
writes them, and what the escaping makes collide is dropped and counted
(`escape_collision`), never silently."""
from __future__ import annotations

import pytest

from moonraker_prometheus.sidecar.expfmt import Rewriter, escape_name, parse, render
from moonraker_prometheus.sidecar.merge import MergeState
from tests.sidecar.support import assert_no_duplicates, promtool_check, series_ids


def rewriter(**options) -> Rewriter:
    return Rewriter([("exporter_name", "tf")], **options)


def merged(body: str, rw: Rewriter = None, scrapes: int = 1):
    """(rendered text, dropped lines by reason) of `scrapes` merges of `body` by one
    source (the same Rewriter: from the second on, its series cache and templates)."""
    rw = rw or rewriter()
    results = []
    for _ in range(scrapes):
        state = MergeState(["tf"])
        state.add("tf", rw, [body.encode()])
        state.drop_member_clashes()
        results.append((state.render(), state.dropped.get("tf", {})))
    assert all(r == results[0] for r in results), results
    return results[0]


def samples(text: str):
    return [x for x in text.splitlines() if x and not x.startswith("#")]


# prometheus/common model/metric_test.go (UnderscoreEscaping), then ours: a digit is legal
# after the first place only; `:` is no part of a label name in the text format 0.0.4.
ESCAPED = [("no:escaping_required", False, "no:escaping_required"),
           ("mysystem.prod.west.cpu.load", False, "mysystem_prod_west_cpu_load"),
           ("mysystem.prod.west.cpu.load_total", False, "mysystem_prod_west_cpu_load_total"),
           ("http.status:sum", False, "http_status:sum"),
           ("label with \U0001f631", False, "label_with__"),
           ("\u82b1\u706b", False, "__"),
           ("label with \u0100", False, "label_with__"),
           ("9lives", False, "_lives"), ("a9", False, "a9"),
           ("probe:name", True, "probe_name"), ("probe.name", True, "probe_name")]


def test_names_are_escaped_as_prometheus_escapes_them_with_underscores():
    assert [escape_name(name, label) for name, label, _ in ESCAPED] == [x for _, _, x in ESCAPED]


def test_quoted_metric_and_label_names_are_served_escaped():
    body = ('{"chamber.humidity","probe.name"="sht-2"} 41\n'
            'metric{"label.x"="v"} 1\n'
            '{"a.b", c="d"} 1\n'
            '{"already_legal"} 2\n'
            'm{"a:b"="1","exporter.name"="backend"} 3\n'
            '{"9lives","\u00e9t\u00e9"="\u00e9t\u00e9"} 4\n')
    text, dropped = merged(body)
    assert samples(text) == [
        '_lives{exporter_name="tf",_t_="\u00e9t\u00e9"} 4',
        'a_b{exporter_name="tf",c="d"} 1',
        'already_legal{exporter_name="tf"} 2',
        'chamber_humidity{exporter_name="tf",probe_name="sht-2"} 41',
        'm{exporter_name="tf",a_b="1",exported_exporter_name="backend"} 3',
        'metric{exporter_name="tf",label_x="v"} 1',
    ]
    assert dropped == {}
    promtool_check(text)


def test_quoted_names_are_read_as_prometheus_reads_them():
    """Blanks, a trailing comma, escapes in a name, the name after the labels are read
    as Prometheus 3's scrape parser and Go's text parser read them; what either refuses is
    an invalid line, as before."""
    accepted = ('{ "a.b" , c = "1" , } 1\n'
                '{c="2","a.b"} 2\n'
                '\t{"a.b",c="3"}3 1700000000000\n'
                '{"q\\"u\\\\o\\nte",c="4"} 4\n')
    refused = ['"a.b" 1', '"a.b"{c="5"} 1', '{"a.b","c.d"} 1', 'm{"a.b"} 1', '{""} 1',
               '{c="6"} 1', 'm{""="1"} 1', 'm{"x.y"="1","x.y"="2"} 1', 'm{"__name__"="m"} 1',
               '{"a\\q"} 1', '{,"a.b"} 1', '{"a.b",,} 1', '{"a.b"} ', '{"a.b" c="7"} 1',
               'a{"b.c"="1"}} 1', '{"a.b"} 1 2 3']
    text, dropped = merged(accepted + "\n".join(refused) + "\n")
    assert samples(text) == ['a_b{exporter_name="tf",c="1"} 1',
                             'a_b{exporter_name="tf",c="2"} 2',
                             'a_b{exporter_name="tf",c="3"} 3 1700000000000',
                             'q_u_o_te{exporter_name="tf",c="4"} 4']
    assert dropped == {"invalid_line": len(refused)}
    promtool_check(text)


def test_help_and_type_of_a_quoted_name_apply_to_its_escaped_family():
    body = ('# HELP "chamber.humidity" Relative humidity \\\\ in %.\n'
            '# TYPE "chamber.humidity" gauge\n'
            '{"chamber.humidity","probe.name"="sht-2"} 41\n'
            '# TYPE "door.opened" counter\n'
            '#  HELP\t"door.opened"\tOpenings.\n'
            '{"door.opened"} 3\n'
            '# TYPE "bad.type"gauge\n')  # type `auge`, as Prometheus reads it
    text, dropped = merged(body)
    assert text.splitlines() == [
        "# HELP chamber_humidity Relative humidity \\\\ in %.",
        "# TYPE chamber_humidity gauge",
        'chamber_humidity{exporter_name="tf",probe_name="sht-2"} 41',
        "# HELP door_opened Openings.",
        "# TYPE door_opened counter",
        'door_opened{exporter_name="tf"} 3',
    ]
    assert dropped == {"invalid_type": 1}
    promtool_check(text)


def test_histogram_and_summary_of_quoted_names_keep_their_members():
    body = ('# TYPE "req.seconds" histogram\n'
            '{"req.seconds_bucket","path.name"="/",le="0.5"} 1\n'
            '{"req.seconds_bucket","path.name"="/",le="+Inf"} 2\n'
            '{"req.seconds_sum","path.name"="/"} 0.7\n'
            '{"req.seconds_count","path.name"="/"} 2\n'
            '{"req.seconds_bucket","path.name"="/",le="1",le="2"} 2\n'
            '# TYPE "rpc.latency" summary\n'
            '{"rpc.latency","quantile"="0.5"} 0.1\n'
            '{"rpc.latency_sum"} 5\n'
            '{"rpc.latency_count"} 50\n')
    text, dropped = merged(body)
    assert text.splitlines() == [
        "# TYPE req_seconds histogram",
        'req_seconds_bucket{exporter_name="tf",path_name="/",le="0.5"} 1',
        'req_seconds_bucket{exporter_name="tf",path_name="/",le="+Inf"} 2',
        'req_seconds_sum{exporter_name="tf",path_name="/"} 0.7',
        'req_seconds_count{exporter_name="tf",path_name="/"} 2',
        "# TYPE rpc_latency summary",
        'rpc_latency{exporter_name="tf",quantile="0.5"} 0.1',
        'rpc_latency_sum{exporter_name="tf"} 5',
        'rpc_latency_count{exporter_name="tf"} 50',
    ]
    assert dropped == {"invalid_line": 1}  # a repeated le
    promtool_check(text)


@pytest.mark.parametrize("legacy_first", [True, False])
def test_a_legacy_name_wins_over_a_quoted_name_escaped_to_it_in_either_order(legacy_first):
    legacy = "# HELP chamber_humidity Legacy.\nchamber_humidity 1\n"
    quoted = ('# HELP "chamber.humidity" Quoted.\n# TYPE "chamber.humidity" gauge\n'
              '{"chamber.humidity","probe"="a"} 41\n{"chamber.humidity","probe"="b"} 42\n')
    text, dropped = merged(legacy + quoted if legacy_first else quoted + legacy)
    assert text.splitlines() == ["# HELP chamber_humidity Legacy.",
                                 "# TYPE chamber_humidity untyped",
                                 'chamber_humidity{exporter_name="tf"} 1']
    assert dropped == {"escape_collision": 2}


@pytest.mark.parametrize("first,second", [('"a.b"', '"a-b"'), ('"a-b"', '"a.b"')])
def test_among_quoted_names_escaped_alike_the_first_in_the_body_wins(first, second):
    body = ("{%s} 1\n{%s,k=\"1\"} 2\n{%s} 3\n{%s} 4\n" % (first, first, second, first))
    text, dropped = merged(body)
    assert samples(text) == ['a_b{exporter_name="tf"} 1', 'a_b{exporter_name="tf",k="1"} 2']
    assert dropped == {"escape_collision": 1, "duplicate_series": 1}
    assert_no_duplicates(series_ids(text))


def test_a_quoted_histogram_loses_to_a_legacy_family_named_like_its_member():
    body = ('# TYPE "x.y" histogram\n{"x.y_bucket",le="+Inf"} 1\n{"x.y_sum"} 1\n'
            '{"x.y_count"} 1\nx_y_sum 5\n')
    text, dropped = merged(body)
    assert samples(text) == ['x_y_sum{exporter_name="tf"} 5']
    assert dropped == {"escape_collision": 3}
    promtool_check(text)


@pytest.mark.parametrize("legacy_first", [True, False])
def test_label_names_that_collide_once_escaped_are_dropped_and_counted(legacy_first):
    lines = ['m{a_b="1"} 1', 'm{"a.b"="1"} 2']
    if not legacy_first:
        lines.reverse()
    body = "\n".join(lines + ['m{"a.b"="2"} 3', 'm{"a-b"="2"} 4',
                              'm{"a.b"="1",a_b="2"} 5', 'm{"a.b"="1","a:b"="2"} 6',
                              'm{"__name.."="1"} 7', 'n{"a.b"="1",c=""} 8']) + "\n"
    text, dropped = merged(body)
    assert samples(text) == ['m{exporter_name="tf",a_b="1"} 1', 'm{exporter_name="tf",a_b="2"} 3',
                             'n{exporter_name="tf",a_b="1",c=""} 8']
    assert dropped == {"escape_collision": 5}
    assert_no_duplicates(series_ids(text))
    promtool_check(text)


def test_a_second_scrape_of_the_same_source_gives_the_same_answer():
    """The series cache and the template of the previous scrape (the path of every later
    scrape of a source) serve quoted names, and settle their collisions, as the first."""
    body = ("".join('node_load{cpu="%d"} %d\n' % (i, i) for i in range(50))
            + '# TYPE "chamber.humidity" gauge\n{"chamber.humidity"} 41\n'
            + 'chamber_temp{"a.b"="1"} 1\nchamber_temp{a_b="1"} 2\n'
            + '{"x.y"} 1\nx_y 2\n')
    rw = rewriter()
    text, dropped = merged(body, rw, scrapes=3)
    assert 'chamber_humidity{exporter_name="tf"} 41' in samples(text)
    assert dropped == {"escape_collision": 2}
    # A body of legacy names only, then one with quoted names in their place: the template
    # of the first does not serve the second.
    legacy = "".join('node_load{cpu="%d"} %d\n' % (i, i) for i in range(50)) + "x_y 2\n"
    merged(legacy, rw, scrapes=2)
    assert merged(body, rw) == (text, dropped)


def test_keep_and_drop_match_a_quoted_name_as_it_is_served():
    import re
    body = '{"chamber.humidity"} 41\n{"chamber.temp"} 30\n'
    text, _ = merged(body, rewriter(keep=[re.compile("chamber_humidity")]))
    assert samples(text) == ['chamber_humidity{exporter_name="tf"} 41']
    text, _ = merged(body, rewriter(drop=[re.compile("chamber_humidity")]))
    assert samples(text) == ['chamber_temp{exporter_name="tf"} 30']


def test_a_source_without_labels_of_its_own_serves_escaped_names_too():
    """no_rewrite (and the component's own text): nothing spliced in."""
    rw = Rewriter(rewrite=False)
    parsed = parse('{"a.b"} 1\n{"a.b",c="d"} 2\nm{"x.y"="1"} 3\n', rw)
    assert render(parsed.families.values()) == (
        "# TYPE a_b untyped\na_b 1\na_b{c=\"d\"} 2\n# TYPE m untyped\nm{x_y=\"1\"} 3\n")


def test_collisions_are_settled_across_the_slices_of_a_large_body():
    """A body read in slices (16 KiB each, the first ones a slice at a time): a legacy
    name in the first slice wins over a quoted one in a later slice."""
    body = ("x_y 1\n" + "".join('node_load{cpu="%d"} %d\n' % (i, i) for i in range(2000))
            + '{"x.y"} 2\n{"z.y"} 3\n')
    assert len(body) > 3 * 16384
    text, dropped = merged(body, scrapes=2)
    assert 'x_y{exporter_name="tf"} 1' in text and 'z_y{exporter_name="tf"} 3' in text
    assert "} 2\n" not in text.split("node_load", 1)[0]
    assert dropped == {"escape_collision": 1}


def test_a_legacy_family_without_samples_does_not_take_the_escaped_name():
    body = '# TYPE chamber_humidity counter\n{"chamber.humidity"} 41\n'
    text, dropped = merged(body)
    assert text.splitlines() == ["# TYPE chamber_humidity untyped",
                                 'chamber_humidity{exporter_name="tf"} 41']
    assert dropped == {}


@pytest.mark.parametrize("legacy_first", [True, False])
def test_a_histogram_series_whose_labels_collide_once_escaped_is_dropped_whole(legacy_first):
    """No bucket of the losing series joins the winner's: its buckets, sum and count go."""
    legacy = ['h_bucket{a_b="1",le="1"} 1', 'h_bucket{a_b="1",le="+Inf"} 2',
              'h_sum{a_b="1"} 3', 'h_count{a_b="1"} 2']
    quoted = ['h_bucket{"a.b"="1",le="0.5"} 7', 'h_bucket{"a.b"="1",le="1"} 8',
              'h_bucket{"a.b"="1",le="+Inf"} 9', 'h_sum{"a.b"="1"} 9', 'h_count{"a.b"="1"} 9',
              'h_bucket{"a.b"="2",le="+Inf"} 1', 'h_sum{"a.b"="2"} 1', 'h_count{"a.b"="2"} 1']
    lines = legacy + quoted if legacy_first else quoted + legacy
    text, dropped = merged("# TYPE h histogram\n" + "\n".join(lines) + "\n")
    assert sorted(samples(text)) == sorted(
        x.replace("{", '{exporter_name="tf",').replace('"a.b"', "a_b")
        for x in legacy + quoted[5:])
    assert dropped == {"escape_collision": 5}
    promtool_check(text)
