"""The reference parse: a body read one line at a time, each line validated in full as
Prometheus' Go parsers read it, families resolved as Go resolves them, UTF-8 names escaped.

The fast paths (slices.read_slice, template.Template.apply) must give exactly what this
gives for every body; tests/sidecar/test_fast_paths_agree.py holds them to it.
"""
from __future__ import annotations

import re
import sys
from collections import deque
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Set, Tuple, Union

from .. import reasons
from .grammar import (BLANKS, COMMENT_FAST, NAME_AT, PAIR, PAIR_ANY, QUOTED_AT, QUOTED_HEAD,
                      QUOTED_ITEM, SAMPLE_FAST, SAMPLE_LOOSE, VALUE, VALUE_ESCAPE,
                      canonical_timestamp, escape_name, in_range, is_go_float, type_keyword,
                      unescape_help, unquote)
from .model import (MAX_LINE, NAP_LINES, BodyState, Hit, Identity, Pacer, Parsed,
                    ParsedFamily, Rewriter, SeriesHit, plain_key, series_identity)

# tokenize()'s end of the name-and-labels part, for a line that gives no sample: a blank
# line, an invalid line, a comment after blanks, a line whose label names collide once
# escaped; and for a sample line of quoted (UTF-8) names.
END_BLANK = 0
END_INVALID = -1
END_COMMENT = -2
END_COLLISION = -3
END_QUOTED = -4
# tokenize() ends after which read_lines() may hand the GIL over at once: an invalid line,
# or one of quoted names, may have taken milliseconds (a 16 KiB line of a thousand labels).
_SLOW_ENDS = frozenset((END_INVALID, END_COLLISION, END_QUOTED))
_MEMBER_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
_SPECIAL_LABELS = {"histogram": "le", "summary": "quantile"}
# SeriesHit(...) from a tuple without the Python-level __new__ a NamedTuple has: half the
# time, for every new series of a first scrape that is not plain.
_series_hit = partial(tuple.__new__, SeriesHit)


def read_lines(lines: List[str], st: BodyState, more: bool) -> None:
    """Reads one slice of a body's lines, one line at a time, into `st`: the reference
    parse, which the fast paths (slices.read_slice, template.Template.apply) must agree
    with. A line whose name-and-labels part was validated in this or the previous scrape of
    the same source (rw.cache) only has its value checked: series are stable between
    scrapes. A repeated series (same identity) keeps its first line; the others count as
    duplicates. A line that leaves a label value open is read with the lines up to the one
    that closes it, as Prometheus' scrape parser reads a raw newline in a label value; if
    the slice ends first and `more` slices follow, the rest of the slice is left in
    st.carry."""
    rw, parsed, rec, pacer, seen = st.rw, st.parsed, st.rec, st.pacer, st.seen
    if rec is not None:
        mark, keep_fixed = rec.mask.append, rec.fixed.append
        slot_part, slot_hit, slot_outcome = rec.parts.append, rec.hits.append, rec.outcomes.append
    cache = rw.cache
    value_of = VALUE.fullmatch
    count = bad = dups = 0
    numbered = enumerate(lines)
    for at, line in numbered:
        if not at % NAP_LINES:
            pacer.nap()
        if not line or line[0] == "#":
            if line:
                comment(line, st)
            if rec is not None:
                mark(0)
                keep_fixed(line)
            continue
        # The name-and-labels part: up to the closing brace (values and timestamps
        # never hold a '}'), or up to the first blank for a line without labels.
        end = line.rfind("}") + 1 or line.find(" ")
        part = line[:end]
        hit = cache.get(part) if end > 0 else None
        m = value_of(line, end) if hit is not None else None
        if m is not None:
            value, ts = m.groups()
            slot = True  # this line's outcome depends on its name-and-labels part only
            utf8 = False
            if type(hit) is str:
                key = plain_key(rw.prefix, hit, part)
            else:
                key = hit.key  # type: ignore[union-attr]  # a SeriesHit: cache hits are not None
            if rec is not None:
                del cache[part]  # the template keeps `part`: one copy, not two
                cache[part] = hit  # type: ignore[assignment]  # not None: found above
        else:
            hit, key, value, ts, head = tokenize(line, rw)
            if head in _SLOW_ENDS:
                pacer.nap()
            if head == END_INVALID and _quotes(line) & 1:
                # A label value left open: Prometheus reads on, the newline included.
                span = _value_span(lines, at, more, pacer)
                if span == 0:
                    st.carry = lines[at:]
                    break
                if rec is not None:
                    rec.whole = False  # a Template cannot tell how lines join
                if span and not _CUT.intersection(parsed.dropped):
                    hit, key, value, ts, head = tokenize("\n".join(lines[at:at + span]), rw)
                    pacer.nap()
                    if hit is not None:
                        deque(islice(numbered, span - 1), 0)  # those lines are read
                        end = -1  # no slot
            if hit is None:
                if head == END_COMMENT:
                    comment(line.lstrip(BLANKS), st)
                elif head == END_INVALID and line.strip(_PADDING):
                    bad += 1
                elif head == END_COLLISION:
                    parsed.drop(reasons.ESCAPE_COLLISION)
                if rec is not None:
                    mark(0)
                    keep_fixed(line)
                continue
            slot = head == end
            if slot:
                cache[part] = hit
            # A line of quoted names is no slot (never cached): its collisions are
            # settled per body, and a body with one written out has no Template.
            utf8 = head == END_QUOTED
        kept: Optional[ParsedFamily] = None
        valid = not ("e" in value or "E" in value or len(value) > 40) or in_range(value)
        if valid and ts is not None:
            ts = canonical_timestamp(ts)
            valid = ts is not None
            if valid:
                value += " " + ts  # type: ignore[operator]  # ts is a str here
        if not valid:
            bad += 1
            slot = False
        else:
            ident: Identity
            if type(hit) is str:
                name, ident, le_ok, q_ok = hit, key, True, True
            else:
                if TYPE_CHECKING:  # a SeriesHit (not cast() to say so: a call per line)
                    assert isinstance(hit, SeriesHit)
                name, _, ident, le_ok, q_ok = hit
            try:
                fam = st.owner[name]
            except KeyError:
                fam = sample_family(name, st)
            if fam is None:
                pass
            elif ident in seen:
                dups += 1
            else:
                if not le_ok and fam.type == "histogram" or \
                        not q_ok and fam.type == "summary":
                    st.untyped[id(fam)] = fam
                seen.add(ident)
                fam.add(key + " " + value, ident)
                count += 1
                kept = fam
                if utf8:
                    st.quoted[id(fam)] = fam
        if rec is not None:
            if slot:
                mark(1)
                slot_part(part)
                slot_hit(hit)  # type: ignore[arg-type]  # a slot has a hit
                slot_outcome(kept)
            else:
                mark(0)
                keep_fixed(line)
                if kept is not None:
                    rec.whole = False
    st.count += count
    st.bad += bad
    st.dups += dups


# A line of NUL bytes and blanks alone is as a blank line: Prometheus' scrape parser reads a
# NUL byte starting a line as the end of the body and stores what came before (a file
# padded with zeros after a crash). The merge reads on (a line after it is not lost).
_PADDING = BLANKS + "\x00"
# Drops by body_slices() that leave out lines: lines either side of one do not join.
_CUT = frozenset((reasons.INVALID_UTF8, reasons.LINE_TOO_LONG))


def _quotes(line: str) -> int:
    """The number of quotes in `line` that open or close a label value (not `\\"`)."""
    return line.replace("\\\\", "").replace('\\"', "").count('"')


def _value_span(lines: Sequence[str], at: int, more: bool, pacer: Pacer) -> Optional[int]:
    """How many lines from lines[at], a line that leaves a label value open, Prometheus'
    scrape parser reads as one (a raw newline is part of a label value): up to the line
    that closes the value (its quotes leave none open); None if no line does within
    MAX_LINE characters, 0 if the slice ends first and `more` lines follow."""
    size = len(lines[at])
    for i in range(at + 1, len(lines)):
        if not i % NAP_LINES:
            pacer.nap()  # up to MAX_LINE empty lines
        size += len(lines[i]) + 1
        if size > MAX_LINE:
            return None
        if _quotes(lines[i]) & 1:
            return i - at + 1
    return 0 if more else None


def untype(parsed: Parsed, untyped: Dict[int, ParsedFamily]) -> None:
    """Serves each histogram or summary of `untyped` (by id: one with a line whose `le` or
    `quantile` is not a float, which Prometheus' scrape stores as written) as Go's text
    parser reads its lines without its TYPE line: one untyped family per sample name
    (`h_bucket`, `h_sum`, ...), with the family's HELP, the lines in their order."""
    families: Dict[str, ParsedFamily] = {}
    for name, fam in parsed.families.items():
        if id(fam) not in untyped:
            families[name] = fam
            continue
        for line, ident in zip(fam.lines(), fam.identities()):
            brace, blank = line.find("{"), line.find(" ")
            sample = line[:brace if 0 <= brace < blank else blank]
            part = families.get(sample)
            if part is None:
                part = families[sample] = ParsedFamily(sample, "untyped", False)
                part.help = fam.help
            part.add(line, ident)
    parsed.families = families


def tokenize(line: str, rw: Rewriter
              ) -> Tuple[Optional[Hit], str, str, Optional[str], int]:
    """Full validation of one sample line: (hit, series key, value, timestamp, end of the
    name+labels part).

    No hit: the end is END_COMMENT for a comment after blanks, END_BLANK for a blank line,
    END_INVALID for an invalid line, END_COLLISION for a line whose label names collide once
    escaped (see _tokenize_quoted). A line of quoted names has the end END_QUOTED.
    """
    m = SAMPLE_FAST.fullmatch(line)
    plain = False  # the key is the name-and-labels part with rw.prefix spliced in
    if m is not None:
        name, body, value, ts = m.groups()
        head = m.end(1) if body is None else m.end(2) + 1
        plain = body is None
        if not body:
            labels: Optional[str] = rw.prefix[:-1]
        elif (body.count('"') == 2 and body[-1] == '"'
              and body[:body.find("=")] not in rw.our_names):
            labels = rw.prefix + body  # one label, no clash: nothing more to check
        else:
            labels = rw.splice_plain(body)
        plain = plain or body != "" and labels == rw.prefix + body  # `a{}` is no plain a
    else:
        m = SAMPLE_LOOSE.fullmatch(line)
        if m is None:
            rest = line.lstrip(BLANKS)
            if rest and rest[0] != "#" and '"' in rest:
                return _tokenize_quoted(line, rw)
            return None, "", "", None, (END_BLANK if not rest else END_COMMENT if rest[0] == "#"
                                        else END_INVALID)
        name, braces, body, value, ts = m.groups()
        head = m.end(1) if braces is None else m.end(2)
        labels = rw.splice_pairs(_loose_pairs(body)) if body else rw.prefix[:-1]
    if labels is None:
        return None, "", "", None, END_INVALID
    key = name + "{" + labels + "}" if labels else name
    name = sys.intern(name)  # one copy per metric name, not one per cached series
    # A tagged source's own labels lead every line alike: only the backend's need sorting.
    ident = series_identity(name, labels, len(rw.prefix) if rw.tags else 0)
    if ident == key:
        ident = key  # one string, not two equal ones
    le_ok = 'le="' not in labels or _numeric(labels, "le")
    q_ok = 'quantile="' not in labels or _numeric(labels, "quantile")
    if plain and ident is key and le_ok and q_ok:
        return name, key, value, ts, head
    return _series_hit((name, key, ident, le_ok, q_ok)), key, value, ts, head


def _loose_pairs(body: str) -> List[Tuple[str, str]]:
    """(name, quoted value) pairs of SAMPLE_LOOSE's label text, values in canonical form."""
    pairs = PAIR_ANY.findall(body)
    if "\\" in body or "\n" in body:
        return [(n, canonical_value(v)) for n, v in pairs]
    return pairs


def canonical_value(quoted: str) -> str:
    """A quoted label value as the text format 0.0.4 writes what Prometheus' scrape parser
    reads from it: `\\\\`, `\\"` and `\\n` stay, a backslash before any other character
    is itself (written `\\\\`), a raw newline is written `\\n`."""
    if "\\" not in quoted and "\n" not in quoted:
        return quoted
    return VALUE_ESCAPE.sub(_escape_one, quoted)


def _escape_one(m: "re.Match[str]") -> str:
    text = m.group()
    if text == "\n":
        return "\\n"
    return text if text[1] in '\\"n' else "\\" + text


def _tokenize_quoted(line: str, rw: Rewriter
                     ) -> Tuple[Optional[Hit], str, str, Optional[str], int]:
    """tokenize() for a line with UTF-8 names: a quoted metric name as an item inside the
    braces (`{"a.b",c="d"} 1`, at most one, and no name before the braces), quoted label
    names (`m{"a.b"="v"} 1`), as both Prometheus 3's scrape parser and Go's text parser read
    them (blanks, a trailing comma, escapes in names). Names are escaped (escape_name) in the
    key; the hit keeps the metric name as written (escapes read), so that its family is
    found as Prometheus finds it (a summary `"a.b"` owns `"a.b_sum"`).

    A line where a name is not legacy gets as its identity, for this parse only, a tuple:
    its identity as written, and its identity once escaped (see escape_families). Invalid
    (END_INVALID): what either parser refuses (an empty, repeated or reserved label name, no metric
    name or two). Label names that only escaping makes equal (`"a.b"` and `a_b`, or one
    escaped to `__name__`) are a collision (END_COLLISION).
    """
    invalid: Tuple[Optional[Hit], str, str, Optional[str], int] = (None, "", "", None,
                                                                     END_INVALID)
    m = QUOTED_HEAD.match(line)
    if m is None:
        return invalid
    name = m.group(1)
    pos = m.end()
    pairs: List[Tuple[str, str]] = []  # (label name as written, escapes read; quoted value)
    items = 0
    while True:
        m = QUOTED_ITEM.match(line, pos)
        if m is None:
            return invalid
        pos = m.end()
        quoted, legacy, value, end, close = m.groups()
        if close is not None:  # `}` after a trailing comma
            if not items:
                return invalid
            break
        items += 1
        if value is None:  # a quoted metric name
            if quoted is None or name is not None:
                return invalid
            name = unquote(quoted)
            if not name:
                return invalid
        else:
            label = legacy if legacy is not None else unquote(quoted)
            if not label:
                return invalid
            pairs.append((label, value))
        if end == "}":
            break
    m = VALUE.fullmatch(line, pos)
    if m is None or name is None:
        return invalid
    value, ts = m.groups()
    written = [n for n, _ in pairs]
    if len(set(written)) != len(written) or "__name__" in written:
        return invalid
    escaped = [escape_name(n, True) for n in written]
    if len(set(escaped)) != len(escaped) or "__name__" in escaped:
        return None, "", "", None, END_COLLISION
    sample = escape_name(name)
    labels = rw.splice_pairs([(e, v) for e, (_, v) in zip(escaped, pairs)])
    if labels is None:  # cannot be: the names were checked above
        return invalid
    key = sample + "{" + labels + "}" if labels else sample
    ident = series_identity(sample, labels, len(rw.prefix) if rw.tags else 0)
    le_ok = 'le="' not in labels or _numeric(labels, "le")
    q_ok = 'quantile="' not in labels or _numeric(labels, "quantile")
    if sample != name or escaped != written:
        as_written = (name, tuple(sorted(p for p in pairs if p[1] != '""')))
        return SeriesHit(sys.intern(name), key, (as_written, ident), le_ok, q_ok), key, value, \
            ts, END_QUOTED
    return SeriesHit(sys.intern(name), key, ident, le_ok, q_ok), key, value, ts, END_QUOTED


def _numeric(labels: str, label: str) -> bool:
    """Go's parser demands a float in `le` (histograms) and `quantile` (summaries); the
    caller looks for `label="` in `labels` first, as nearly all labels hold neither."""
    for n, v in PAIR.findall(labels):
        if n == label and not is_go_float(v[1:-1]):
            return False
    return True




def escape_families(parsed: Parsed, quoted: Dict[int, ParsedFamily]) -> int:
    """Gives families of UTF-8 names (keyed by the names as written while the body was
    read, as Prometheus resolves them) their escaped names, and settles what escaping made
    collide; returns the number of sample lines dropped (counted as `escape_collision`).

    A family whose escaped name, or a name of its members (`_bucket`, `_sum`, `_count` of a
    histogram or summary), is taken by a family with samples whose name is legacy, or by a
    family of UTF-8 names that came first in the body, is dropped whole: legacy names always
    win, whatever the order of the lines. Within a family (`quoted`: those with lines of
    UTF-8 names), a line whose series, escaped, is a series of a line of legacy names, or of
    an earlier line of UTF-8 names written otherwise, is dropped (in a histogram or summary
    the whole series: all its buckets or quantiles, sum and count, so no bucket joins
    another series); the others get their escaped identities.
    """
    lost = 0

    def claims(name: str, mtype: Optional[str]) -> List[str]:
        return [name] + [name + x for x in _MEMBER_SUFFIXES.get(mtype or "", ())]

    taken: Set[str] = set()
    for fam in parsed.families.values():
        if fam.count and escape_name(fam.name) == fam.name:
            taken.update(claims(fam.name, fam.type))
    kept: List[ParsedFamily] = []
    for fam in parsed.families.values():
        new = escape_name(fam.name)
        if new != fam.name:
            if fam.count:
                mine = claims(new, fam.type)
                if not taken.isdisjoint(mine):
                    parsed.drop(reasons.ESCAPE_COLLISION, fam.count)
                    lost += fam.count
                    quoted.pop(id(fam), None)
                    continue
                taken.update(mine)
            fam.name = new
        kept.append(fam)
    served = {fam.name for fam in kept if fam.count}
    parsed.families = {}
    for fam in kept:  # a family without samples gives way to one with them
        if fam.count or fam.name not in served:
            parsed.families.setdefault(fam.name, fam)
    for fam in quoted.values():
        ids: List[Union[str, Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], str]]] = \
            fam.identities()  # type: ignore[assignment]  # QuotedIdentity until escaped
        # A series (of a histogram or summary: its labels but `le`/`quantile`), escaped, is
        # owned by its lines of legacy names (None), else by its first spelling as written.
        special = _SPECIAL_LABELS.get(fam.type or "")
        owner: Dict[object, object] = {_series_group(i, special): None
                                       for i in ids if type(i) is str}
        flags: List[bool] = []
        escaped: List[str] = []
        for ident in ids:
            if type(ident) is tuple:
                (_, written), ident = ident
                spelling = tuple(x for x in written if x[0] != special) if special else written
                if owner.setdefault(_series_group(ident, special), spelling) != spelling:
                    flags.append(False)
                    continue
            flags.append(True)
            escaped.append(ident)  # type: ignore[arg-type]  # a str: unpacked above
        if len(escaped) != len(ids):
            fam.keep(flags)
            parsed.drop(reasons.ESCAPE_COLLISION, len(ids) - len(escaped))
            lost += len(ids) - len(escaped)
        fam.ids = escaped
    return lost


def _series_group(ident: str, special: Optional[str]) -> object:
    """The identity of a series in a family whose lines of one series differ by the
    label `special` (`le`, `quantile`) and their member names, else the identity itself."""
    if special is None:
        return ident
    brace = ident.find("{")
    if brace < 0:
        return ()
    return tuple(x for x in PAIR.findall(ident[brace + 1:-1]) if x[0] != special)


def _resolve(name: str, fams: Dict[str, ParsedFamily]) -> Optional[ParsedFamily]:
    """The family a name belongs to, as Go's parser finds it: the family of that exact name,
    else a summary named without `_count`/`_sum`, else a histogram named without
    `_count`/`_sum`/`_bucket`."""
    fam = fams.get(name)
    if fam is not None:
        return fam
    for suffixes, mtype in ((("_count", "_sum"), "summary"),
                            (("_count", "_sum", "_bucket"), "histogram")):
        for suffix in suffixes:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = fams.get(name[:-len(suffix)])
                if base is not None and base.type == mtype:
                    return base
                break
    return None


def _set_type(fam: ParsedFamily, mtype: str, typed: bool, parsed: Parsed) -> None:
    """Gives a family its type; from then on a wanted one is part of the result."""
    fam.type, fam.typed = mtype, typed
    if fam.wanted:
        parsed.families.setdefault(fam.name, fam)


def sample_family(name: str, st: BodyState) -> Optional[ParsedFamily]:
    """The family of a sample name (None: filtered out), noted in st.owner; a sample
    without a TYPE line makes an untyped one."""
    fam = _resolve(name, st.fams)
    if fam is None:
        fam = st.fams[name] = ParsedFamily(name, None, False, st.rw.wanted(name))
    if fam.type is None:
        _set_type(fam, "untyped", False, st.parsed)
    st.owner[name] = fam if fam.wanted else None
    return st.owner[name]



def comment(line: str, st: BodyState) -> None:
    """A line starting with '#': HELP and TYPE lines as Prometheus' scrape parser reads them
    (`#TYPE` without a blank is a comment); any other comment carries nothing. The first
    HELP and the first TYPE of a family stay (a sample without a TYPE line before it makes
    the family untyped); later ones change nothing, as they change nothing Prometheus
    stores. A TYPE line of an unknown type is dropped (`invalid_type`): Prometheus fails
    the whole scrape on it."""
    fams, rw, parsed = st.fams, st.rw, st.parsed
    m = COMMENT_FAST.fullmatch(line)
    if m is not None:
        kind, name, rest = m.groups()
    else:
        parts = _comment_parts(line, parsed)
        if parts is None:
            return
        kind, name, rest = parts
    fam = _resolve(name, fams)
    if kind == "HELP":
        if fam is not None and fam.help is not None and rest:
            return  # a second HELP: Prometheus takes it, the first is served
        if fam is None:
            fam = fams[name] = ParsedFamily(name, None, False, rw.wanted(name))
        if rest:
            fam.help = unescape_help(rest)
        return
    mtype = type_keyword(rest) if rest else None
    if rest and mtype is None:
        parsed.drop(reasons.INVALID_TYPE)
        return
    if fam is not None and fam.type is not None:
        return  # a second TYPE, or one after samples: Prometheus takes it, the first stays
    if fam is None:
        fam = fams[name] = ParsedFamily(name, None, False, rw.wanted(name))
    if mtype is not None:
        _set_type(fam, mtype, True, parsed)


def _comment_parts(line: str, parsed: Parsed) -> Optional[Tuple[str, str, str]]:
    """(HELP or TYPE, metric name, text) of a comment line in any spacing Prometheus' scrape
    parser accepts (a blank after the `#`, blanks after HELP or TYPE; text right after the
    name, whose first character it drops); None for a plain comment, for a line that ends
    after the name, and for an invalid line (counted). The text is "" when only blanks
    follow the name (the family is still created)."""
    if line[1:2] not in BLANKS or len(line) < 2:
        return None  # `#TYPE`, `#HELP`: a comment to Prometheus' scrape parser
    rest = line[1:].lstrip(BLANKS)
    blank = rest.find(" ")
    tab = rest.find("\t")
    cut = tab if blank < 0 or 0 <= tab < blank else blank
    if cut < 0 or rest[:cut] not in ("HELP", "TYPE"):
        return None
    kind = rest[:cut]
    rest = rest[cut:].lstrip(BLANKS)
    m = NAME_AT.match(rest) or QUOTED_AT.match(rest)
    if m is None:
        if rest:
            parsed.drop(reasons.INVALID_LINE)  # not a metric name
        return None
    name = m.group()
    rest = rest[m.end():]
    if name[0] == '"':  # a UTF-8 name (Prometheus 3), escaped when served
        name = unquote(name)
        if not name:
            parsed.drop(reasons.INVALID_LINE)
            return None
    if not rest:
        return None
    # Prometheus reads the rest of the line after the name as the text, less its first
    # character: `# HELP a{ x` is HELP text ` x` for `a`, `# TYPE a{gauge` a TYPE line (Go's
    # text parser would refuse both). After a blank, blanks are left out as Go does.
    return kind, name, rest.lstrip(BLANKS) if rest[0] in BLANKS else rest[1:]

