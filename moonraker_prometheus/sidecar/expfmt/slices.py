"""The slice fast path: a first scrape read a slice of lines at a time with C-level calls
over the whole slice (findall, map, compress), no Python code per line, where the slice's
lines allow; otherwise the reference (lines.read_lines) reads the slice.
"""
from __future__ import annotations

import re
import sys
from collections import deque
from itertools import chain, compress, groupby, repeat
from operator import add, getitem, not_
from typing import Dict, Iterable, List, Optional, Set, Tuple

from ...exposition import LABEL_NAME
from ...exposition import METRIC_NAME as NAME
from .grammar import LABEL_VALUE, REST, is_go_float, values_in_range
from .lines import comment, sample_family, tokenize
from .model import BodyState, Hit, ParsedFamily, SeriesHit

# A first scrape, a slice at a time (see read_slice): every line of the slice is a comment,
# a blank line or a sample line in canonical form (one blank before the value, labels with
# no blanks or trailing comma, a canonical value and timestamp), whose name-and-labels part
# and rest are captured.
_PAIR_TEXT = "%s=%s" % (LABEL_NAME, LABEL_VALUE)
_LINES = re.compile(r"^(?:#[^\n]*|((%s)(\{%s(?:,%s)*\})?)(%s))?$"
                    % (NAME, _PAIR_TEXT, _PAIR_TEXT, REST), re.M)
_EVERY_OTHER = slice(None, None, 2)
# Labels whose values must be numbers (see lines._numeric), as they appear in a skeleton.
_NUMERIC_LABELS = frozenset(("le=", "quantile="))
_NUMERIC_VALUES = {n: re.compile(r'[{,]%s"([^"]*)"' % n) for n in _NUMERIC_LABELS}


def read_slice(lines: List[str], st: BodyState) -> bool:
    """What the reference (lines.read_lines) would do with one slice of lines, done with
    C-level calls over the whole slice instead of Python code per line; False (nothing
    done) for a slice the reference must read.

    Only for a rewriter with `bulk` set. A slice qualifies when
    every line is a comment, a blank line or a canonical sample line (_LINES), no value
    overflows and no two sample lines are one series. Sample lines whose label names are
    sorted, unique, not ours and not `le`/`quantile`, with no escape and no empty value, are
    plain series (their key is the part with our labels spliced in, their identity the
    key); the few others go through tokenize() as the reference would send them, and must
    come out as slots with a valid value. Families, drops by comments, the recorder and the
    series cache end as the reference leaves them.
    """
    rw, pacer, seen, owner = st.rw, st.pacer, st.seen, st.owner
    text = "\n".join(lines)
    found = _LINES.findall(text)
    pacer.nap()
    if len(found) != len(lines):
        return False
    line_parts, line_names, line_braces, line_rests = zip(*found)
    flags = list(map(bool, line_names))  # per line: a sample line
    parts = tuple(compress(line_parts, flags))
    if not parts:
        return False
    names = list(compress(line_names, flags))
    braces = list(compress(line_braces, flags))
    rests = list(compress(line_rests, flags))
    if not values_in_range(rests, "\n".join(rests)):
        return False
    n = len(parts)
    keys = list(map(str.replace, parts, repeat("{"), repeat("{" + rw.prefix), repeat(1))) \
        if rw.prefix else list(parts)
    slow: Set[int] = set()  # sample indexes of lines for tokenize()
    if rw.prefix:  # a bare name's key has our labels in braces
        bare = "{" + rw.prefix[:-1] + "}"
        for i in compress(range(n), map(not_, braces)):
            keys[i] = parts[i] + bare
    # A line's skeleton: its label names, `{a=,b=}` (values cut out at their quotes, once
    # the escapes that may hide a quote are gone), "" for a bare name.
    skeletons = list(map("".join, map(getitem, map(str.split, braces, repeat('"')),
                                       repeat(_EVERY_OTHER))))
    escaped: List[int] = []
    if "\\" in text:
        escaped = list(compress(range(n), map(str.__contains__, braces, repeat("\\"))))
        for i in escaped:
            unquoted = braces[i].replace("\\\\", "").replace('\\"', "")
            skeletons[i] = "".join(unquoted.split('"')[::2])
    kinds = set(skeletons)
    if '=""' in text:
        slow.update(compress(range(n), map(str.__contains__, parts, repeat('=""'))))
    ours = {name + "=" for name in rw.our_names}
    numeric: Dict[str, List[int]] = {}  # label -> sample indexes whose value must be a number
    for skeleton in kinds:
        if not skeleton:
            continue
        label_names = skeleton[1:-1].split(",")
        plain = label_names == sorted(set(label_names)) and ours.isdisjoint(label_names)
        checked = _NUMERIC_LABELS.intersection(label_names)
        if plain and not checked:
            continue
        alike = list(compress(range(n), map(skeleton.__eq__, skeletons)))
        if not plain:
            slow.update(alike)
        for label in checked:
            numeric.setdefault(label, []).extend(alike)
    for label, alike in numeric.items():
        values = _NUMERIC_VALUES[label].findall("\n".join(map(parts.__getitem__, alike)))
        if len(values) != len(alike) or not all(map(is_go_float, values)):
            slow.update(alike)  # no plain series: tokenize() says what they are
    interned = {name: sys.intern(name) for name in set(names)}
    hits: List[Hit] = list(map(interned.__getitem__, names))
    for i in escaped:  # no plain series (see tokenize), though its identity is its key
        if i not in slow:
            hits[i] = SeriesHit(interned[names[i]], keys[i], keys[i], True, True)
    ids = keys
    if slow:
        ids = list(keys)
        for i in slow:
            line = parts[i] + rests[i]
            hit, key, _, _, head = tokenize(line, rw)
            if hit is None or head != len(parts[i]) or type(hit) is not str and not (
                    hit.le_ok and hit.quantile_ok):  # type: ignore[union-attr]  # a SeriesHit
                return False
            hits[i] = hit
            keys[i] = key
            ids[i] = key if type(hit) is str else hit.ident  # type: ignore[union-attr]  # SeriesHit
    unique = set(ids)
    if len(unique) != n or not seen.isdisjoint(unique):
        return False
    # Checked: from here on, what parse() would do.
    samples = list(map(add, keys, rests))
    outcomes: List[Optional[ParsedFamily]] = []
    at = count = 0
    others = list(map(not_, flags))  # per line: a comment or blank line
    line_at = 0
    for stop in chain(compress(range(len(lines)), others), (len(lines),)):
        if stop > line_at:  # sample lines line_at..stop, each name's family found first
            run = names[at:at + stop - line_at]
            if run.count(run[0]) == len(run):  # one name, as in most runs
                name = run[0]
                fam = owner[name] if name in owner else sample_family(name, st)
                groups: Iterable[Tuple[Optional[ParsedFamily], int]] = ((fam, len(run)),)
            else:
                for name in dict.fromkeys(run):
                    if name not in owner:
                        sample_family(name, st)
                groups = [(fam, len(list(group)))
                          for fam, group in groupby(map(owner.__getitem__, run))]
            for fam, size in groups:
                if fam is not None:
                    fam.add_block("\n".join(samples[at:at + size]), size,
                                  ids[at:at + size] if slow else None)
                    count += size
                outcomes += repeat(fam, size)
                at += size
        if stop < len(lines) and lines[stop]:
            comment(lines[stop], st)
        line_at = stop + 1
    seen.update(compress(ids, outcomes))  # the kept lines' (a family is true, None false)
    st.count += count
    rec = st.rec
    if rec is not None:
        rec.mask.extend(flags)
        rec.fixed += compress(lines, others)
        rec.parts += parts
        rec.hits += hits
        rec.outcomes += outcomes
        if rw.cache:  # the template keeps `part`: one copy, not two
            deque(map(rw.cache.pop, parts, repeat(None)), 0)
    rw.cache.update(zip(parts, hits))
    return True

