"""The merge: one header per family, conflicts and duplicates dropped and counted, stable order."""
from __future__ import annotations

import random

from moonraker_prometheus.sidecar.expfmt import Rewriter
from moonraker_prometheus.sidecar.merge import MergeState
from tests.sidecar.support import assert_no_duplicates, promtool_check, series_ids


def rw(name: str, rewrite: bool = True) -> Rewriter:
    return Rewriter([("exporter_name", name)], rewrite=rewrite)


def merged(*parts) -> MergeState:
    state = MergeState()
    for name, text, rewrite in parts:
        state.add(name, rw(name, rewrite), [text.encode()])
    state.drop_member_clashes()
    return state


def headers(text: str):
    return [x for x in text.splitlines() if x.startswith("#")]


def test_same_family_from_two_sources_has_one_help_and_type():
    a = "# HELP go_goroutines Goroutines.\n# TYPE go_goroutines gauge\ngo_goroutines 5\n"
    b = "# HELP go_goroutines Other help.\n# TYPE go_goroutines gauge\ngo_goroutines 7\n"
    out = merged(("a", a, True), ("b", b, True)).render()
    assert headers(out) == ["# HELP go_goroutines Goroutines.", "# TYPE go_goroutines gauge"]
    assert 'go_goroutines{exporter_name="a"} 5' in out
    assert 'go_goroutines{exporter_name="b"} 7' in out
    promtool_check(out)


def test_type_conflict_drops_the_later_sources_family_and_counts_it():
    state = merged(("a", "# TYPE x gauge\nx 1\n", True),
                   ("b", '# TYPE x counter\nx{k="1"} 1\nx{k="2"} 1\ny 1\n', True))
    out = state.render()
    assert "exporter_name=\"b\"} 1" in out  # b's other family y stays
    assert 'x{exporter_name="b"' not in out
    assert state.dropped["b"] == {"type_conflict": 2}
    assert state.samples == {"a": 1, "b": 1}


def test_duplicate_series_across_untouched_sources_are_dropped_and_counted():
    state = merged(("a", "x 1\nz 1\n", False), ("b", "x 2\ny 2\n", False))
    out = state.render()
    assert "x 1" in out and "x 2" not in out and "y 2" in out
    assert state.dropped["b"] == {"duplicate_series": 1}
    assert_no_duplicates(series_ids(out))


def test_histogram_series_stays_whole_when_a_later_source_clashes():
    h1 = ('# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 3\nh_count 2\n')
    h2 = ('# TYPE h histogram\nh_bucket{le="0.5"} 0\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 9\n'
          'h_sum 9\nh_count 9\nh_bucket{k="v",le="+Inf"} 1\nh_sum{k="v"} 1\nh_count{k="v"} 1\n')
    state = merged(("a", h1, False), ("b", h2, False))
    out = state.render()
    assert 'h_bucket{le="0.5"}' not in out  # b's clashing series went whole, no mixed buckets
    assert 'h_bucket{k="v",le="+Inf"} 1' in out  # its other series merged
    assert state.dropped["b"] == {"duplicate_series": 5}
    promtool_check(out)


def test_family_named_like_a_histogram_member_is_dropped():
    state = merged(("a", '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', True),
                   ("b", "# TYPE h_count gauge\nh_count 3\n", True))
    out = state.render()
    assert "# TYPE h_count" not in out
    assert state.dropped["b"] == {"name_conflict": 1}
    promtool_check(out)


def test_untyped_samples_join_a_typed_family_of_the_same_name():
    state = merged(("a", "# TYPE up gauge\nup 1\n", True), ("b", "up 1\n", True))
    out = state.render()
    assert headers(out) == ["# TYPE up gauge"]
    assert out.count("up{") == 2


def test_output_order_is_deterministic_whatever_the_input_order():
    fams = ["# TYPE f%d gauge\nf%d{i=\"%d\"} 1\n" % (i, i, i) for i in range(30)]
    outs = set()
    for seed in range(5):
        random.Random(seed).shuffle(fams)
        outs.add(merged(("a", "".join(fams), True)).render())
    assert len(outs) == 1
    names = [x.split()[2] for x in outs.pop().splitlines() if x.startswith("# TYPE")]
    assert names == sorted(names)


def test_hostile_input_still_yields_output_promtool_accepts():
    rnd = random.Random(7)
    pieces = ["# TYPE a gauge", "# TYPE a counter", "# HELP a \\x bad escape", "a 1",
              'a{x="\\"q\\""} 2', "a{", "}", "a{x=\"1\"} NaN", "# TYPE h histogram",
              'h_bucket{le="+Inf"} 1', "h_sum 1", "h_count 1", "h 3", "# TYPE h_sum gauge",
              "h_sum 4", "# TYPE s summary", 's{quantile="0.5"} 1', "s_count 1",
              'b{a="1",a="2"} 1', "\x00 1", "# EOF", "c 1 2", "d{a=\"\n\"} 1", "e 1e400",
              "f -0", "g{le=\"x\"} 1", "ü 1", "h_bucket{le=\"1\"} 1"]
    for round_ in range(20):
        text = "\n".join(rnd.choice(pieces) for _ in range(60))
        state = MergeState()
        state.add("a", rw("a"), [text.encode()])
        state.add("b", rw("b", rewrite=False), [text.encode()])
        state.drop_member_clashes()
        out = state.render()
        promtool_check(out)
        assert_no_duplicates(series_ids(out))


def test_series_equal_up_to_label_order_or_empty_labels_are_one_series_within_a_source():
    text = ('m{a="1",b="2"} 1\nm{b="2",a="1"} 2\nm{a=""} 3\nm 4\nm{b="2",a="1",c=""} 5\n'
            'm{a="1",b="3"} 6\n')
    state = merged(("a", text, True))
    out = state.render()
    assert [x for x in out.splitlines() if not x.startswith("#")] == [
        'm{exporter_name="a",a="1",b="2"} 1', 'm{exporter_name="a",a=""} 3',
        'm{exporter_name="a",a="1",b="3"} 6']
    assert state.dropped["a"] == {"duplicate_series": 3}
    promtool_check(out)


def test_series_equal_up_to_label_order_or_empty_labels_are_one_series_across_sources():
    state = merged(("a", 'm{a="1",b="2"} 1\nn{x=""} 1\n', False),
                   ("b", 'm{b="2",a="1"} 2\nn 2\nm{a="2"} 2\n', False))
    out = state.render()
    assert "m{b=" not in out and "n 2" not in out and 'm{a="2"} 2' in out
    assert state.dropped["b"] == {"duplicate_series": 2}
    assert state.samples == {"a": 2, "b": 1}


def test_files_of_one_source_share_series_identity():
    state = MergeState()
    r = rw("tf")
    state.add("tf", r, [b'm{a="1",b="2"} 1\n', b'm{b="2",a="1",c=""} 2\nm{a="3"} 3\n'])
    assert state.dropped["tf"] == {"duplicate_series": 1}
    assert state.samples == {"tf": 2}


def test_histogram_clashing_in_another_label_order_is_dropped_whole():
    h1 = '# TYPE h histogram\nh_bucket{a="1",b="2",le="+Inf"} 1\nh_sum{a="1",b="2"} 1\n'
    h2 = ('# TYPE h histogram\nh_bucket{le="1",b="2",a="1"} 0\nh_bucket{b="2",le="+Inf",a="1"} 9\n'
          'h_sum{b="2",a="1"} 9\nh_count{b="2",a="1",c=""} 9\n')
    state = merged(("a", h1, False), ("b", h2, False))
    out = state.render()
    assert "} 9" not in out and "} 0" not in out  # b's series went whole
    assert state.dropped["b"] == {"duplicate_series": 4}
    promtool_check(out)


def test_an_untouched_source_repeating_a_tagged_sources_series_is_dropped():
    state = merged(("a", 'm{cpu="0"} 1\nm{cpu="1"} 1\n', True),
                   ("b", 'm{cpu="0",exporter_name="a"} 2\nm{exporter_name="a",cpu="2"} 2\n',
                    False))
    assert state.dropped["b"] == {"duplicate_series": 1}
    assert state.samples == {"a": 2, "b": 1}
    promtool_check(state.render())


def _scrape(rewriters, bodies, sources=()):
    """One merge of (name, bodies) per source, with each source's rewriter in `rewriters`."""
    state = MergeState(sources)
    for name, texts in bodies:
        state.add(name, rewriters[name], [t.encode() for t in texts])
    state.drop_member_clashes()
    return state


def test_steady_state_merge_of_whole_family_blocks_counts_and_writes_as_line_by_line():
    # a and b are tagged (b from two files, the second repeating a series of the first), c
    # is untagged and repeats a's series; all share families, one of them a health family.
    # Only a and b write g.
    def bodies(v):
        return [
            ("a", ['# TYPE g gauge\ng{k="1"} %d\ng{k="2"} %d\n' % (v, v)
                   + '# TYPE m gauge\nm{cpu="0"} %d\nm{cpu="1"} %d\nm_bare %d\n' % (v, v, v)
                   + '# TYPE h histogram\nh_bucket{le="1"} %d\nh_bucket{le="+Inf"} %d\n'
                   'h_sum %d\nh_count %d\n' % (v, v, v, v)]),
            ("b", ['# TYPE m gauge\nm{cpu="0"} %d\nm{cpu="2"} %d\n# TYPE g gauge\ng{k="1"} %d\n'
                   % (v, v, v),
                   'm{cpu="2"} %d\nm{cpu="3"} %d\n' % (v, v)]),
            ("c", ['# TYPE m gauge\nm{exporter_name="a",cpu="1"} %d\nm{cpu="9"} %d\n' % (v, v)
                   + '# TYPE h histogram\nh_bucket{exporter_name="a",le="+Inf"} %d\n'
                   'h_sum{exporter_name="a"} %d\nh_count{exporter_name="a"} %d\n' % (v, v, v)
                   + '# TYPE klipper_exporter_source_up gauge\n'
                   'klipper_exporter_source_up{exporter_name="a"} %d\n'
                   'klipper_exporter_source_up{exporter_name="other"} %d\n' % (v, v)]),
        ]

    def rewriters():
        return {"a": rw("a"), "b": rw("b"), "c": rw("c", rewrite=False)}

    kept = rewriters()
    _scrape(kept, bodies(1), ["a", "b", "c"])
    for v in (2, 3):  # the kept rewriters' templates write each family as one block
        steady = _scrape(kept, bodies(v), ["a", "b", "c"])
        assert len(steady.families["g"].blocks) == 2 and steady.families["g"].count == 3
        first = _scrape(rewriters(), bodies(v), ["a", "b", "c"])  # one line at a time
        assert steady.samples == first.samples == {"a": 9, "b": 4, "c": 2}
        assert steady.dropped == first.dropped == {"b": {"duplicate_series": 1},
                                                   "c": {"duplicate_series": 5}}
        assert steady.render() == first.render()
