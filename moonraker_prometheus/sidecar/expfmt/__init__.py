"""Text exposition format 0.0.4: a validating tokenizer that splices labels into sample lines.

Why not prometheus_client's parser: a parse and re-encode is about 10x slower, regroups
nothing, mangles counter names and accepts what Prometheus rejects. Here a line is accepted
when Prometheus' scrape parser (`textparse.PromParser`: what a Prometheus scraping the
exporter directly stores) accepts it, and it is written out in a canonical form that Go's
text parser (`expfmt.TextParser`, which `promtool check metrics` runs) reads too: blanks at
the end and pairs without commas are left out, label values escaped, a histogram or summary
whose `le`/`quantile` is no float served untyped (lines.untype), a later HELP or TYPE ignored.
Where the scrape parser is stricter, the merge is too (negative timestamps, a repeated
`le`/`quantile` label, `gauge_histogram`); it stays as lenient as promtool for `+5` as a
timestamp and a TYPE keyword in any case. tests/sidecar/test_prometheus_oracle.py holds this
against a real Prometheus, tests/sidecar/test_expfmt_differential.py against promtool.

A rejected line is dropped and counted, and is as if absent: it creates no family. Labels are
spliced into the label text without re-encoding values, and lines are grouped into families
(resolved as Go does: `x_count` joins a summary or histogram `x` declared before it) so the
merger can emit one HELP/TYPE per family. Quoted UTF-8 names (Prometheus 3) are served
escaped to legacy names as Prometheus' `underscores` escaping writes them; what the escaping
makes collide is dropped and counted (see lines.escape_families). Work is linear in the input.

One parse, three ways (docs/architecture.md, "The merge engine"):
- lines.py, the reference: a line at a time, each validated in full (a line whose
  name-and-labels part the source sent before only has its value checked);
- slices.py: a first scrape's slice of lines at a time with C-level calls, where its lines
  allow; else the reference reads the slice;
- template.py: a body laid out line for line as the source's previous one is replayed from
  that scrape's layout, its values checked a few thousand lines per C call.
grammar.py holds the patterns and value checks, model.py what a parse reads into.
"""
from __future__ import annotations

from itertools import chain
from typing import Iterable, List, Optional, Union

from .. import reasons
from ...exposition import header_lines
from .grammar import escape_name, unescape_help
from .lines import escape_families, read_lines, untype
from .model import (MAX_LINE, BodyState, Pacer, Parsed, ParsedFamily, Recorder, Rewriter,
                    body_slices, decode, full_identity, label_text, series_identity)
from .slices import read_slice
from .template import record

__all__ = ["MAX_LINE", "Parsed", "ParsedFamily", "Rewriter", "decode", "escape_name",
           "full_identity", "label_text", "parse", "render", "series_identity", "unescape_help"]


def parse(body: Union[str, bytes], rw: Rewriter, parsed: Optional[Parsed] = None,
          fast: bool = True) -> Parsed:
    """Tokenizes one exposition body (text, or UTF-8 bytes) into `parsed` (a new Parsed
    unless given; then the body is read as one of the source's, but no layout is recorded).

    A body laid out as the same source's body at this position in the previous scrape, line
    for line, only has its values checked (template.Template.apply). Otherwise each slice of
    lines is read by the slice fast path where it can (slices.read_slice), else by the
    reference (lines.read_lines). `fast=False` reads every line with the reference and
    neither uses nor records a layout: what the fast paths are tested against.
    """
    rec: Optional[Recorder] = None
    if parsed is None:
        index = rw.bodies
        rw.bodies += 1
        template = rw.templates.get(index) if fast else None
        if template is not None:
            done = template.apply(body)
            if done is not None:
                rw.used += template.count
                return done
        parsed = Parsed()
        rec = Recorder() if fast else None
    st = BodyState(rw, parsed, rec)
    bulk = fast and rw.bulk
    for lines in chain(body_slices(body, parsed, st.pacer), (None,)):
        more = lines is not None  # else no slice follows: carried lines are read now
        if st.carry:
            lines = st.carry + (lines or [])
            st.carry = []
        elif lines is None:
            break
        elif bulk and read_slice(lines, st):
            continue
        read_lines(lines, st, more)
    if st.bad:
        parsed.drop(reasons.INVALID_LINE, st.bad)
    if st.dups:
        parsed.drop(reasons.DUPLICATE_SERIES, st.dups)
    if st.quoted:
        st.count -= escape_families(parsed, st.quoted)
    if st.untyped:
        untype(parsed, st.untyped)
    rw.used += st.count
    if rec is not None:
        if st.untyped:
            rec.whole = False  # its slots went to a family that is no more
        if reasons.INVALID_UTF8 in parsed.dropped or reasons.LINE_TOO_LONG in parsed.dropped:
            rec.whole = False  # lines body_slices() dropped are not in the recording
        rw.templates[index] = record(rec, parsed, st.count, rw.prefix)
    return parsed


def render(families: Iterable[ParsedFamily]) -> str:
    """One text, built family by family so no single join holds the GIL for long.

    Consumes the families' blocks (freed as they are joined, to keep the peak low).
    """
    out: List[str] = []
    pacer = Pacer()
    for fam in families:
        if not fam.count:
            continue
        out.append(header_lines(fam.name, fam.type or "untyped", fam.help))
        out.append("\n".join(fam.blocks))
        out.append("\n")
        fam.blocks, fam.ids, fam.count = [], [], 0
        pacer.nap()
    return "".join(out)
