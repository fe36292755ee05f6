"""The template fast path: a body laid out line for line as the same source's body at the
same position in the previous scrape only has its values checked, a few thousand lines per
C-level call, and is written out with no Python code per line.

record() makes a body's Template from what the reference (lines.read_lines) noted while it
read the body (model.Recorder); Template.apply() replays it on the next body.
"""
from __future__ import annotations

import re
from bisect import bisect_right
from itertools import accumulate, compress, groupby, repeat
from operator import add, getitem
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union, cast

from .grammar import DIGITS, REST, values_in_range
from .model import MAX_LINE, Pacer, Parsed, ParsedFamily, Recorder, body_slices, plain_key

_RESTS = re.compile("(?:%s\n)*%s" % (REST, REST))
# What nearly every exporter writes (a subset of _RESTS, tried first as it runs faster).
_PLAIN_REST = r" -?%s(?:\.%s)?(?:e[+-]%s)?(?: [1-9][0-9]{0,17})?" % ((DIGITS,) * 3)
_PLAIN_RESTS = re.compile("(?:%s\n)*%s" % (_PLAIN_REST, _PLAIN_REST))
# Template.apply() checks at most this many lines per C call (a slice has fewer of them
# unless they are very short).
_STEP_LINES = 4096


class TemplateFamily(NamedTuple):
    """One family of a Template, and how apply() writes it."""

    name: str
    type: Optional[str]
    typed: bool
    help: Optional[str]
    where: Union[slice, Tuple[int, ...]]  # its slots: a slice if they follow each other
    # A family of plain series: (old, new) texts that splice our labels in; else None.
    splices: Optional[Tuple[Tuple[str, str], ...]]
    # Otherwise its series keys and identities (both None for a family without lines).
    keys: Optional[Tuple[str, ...]]
    ids: Optional[Tuple[str, ...]]


class Template:
    """The layout of one body of a source as parsed in the previous scrape, line for line.

    Lines are `slots` (a sample line whose outcome was decided by its name-and-labels part
    alone: written, or dropped as a duplicate, filtered or with a bad `le`/`quantile`) or
    `fixed` (every other line: comments, blank and invalid lines). The next body of the same
    source at the same position gives the same families, the same lines in them and the
    same drops if its fixed lines are the same, its slot lines start with the same
    name-and-labels parts, and the rest of each is a valid value in canonical form (a blank,
    the value, maybe a blank and a timestamp); only the values then differ. apply() checks
    exactly that with a few C-level calls per step of lines (no per-line Python code).

    A family of plain series only (see plain_key) is written as one block (see
    ParsedFamily): its lines joined, our labels spliced in after each `name{` (or `name{...}`
    put after a bare `name`) by str.replace, one replace of `{` for all its names where no
    label value holds a `{` (see _one_brace); its identities are left to
    ParsedFamily.identities(). Other families keep their series keys and identities and are
    written as one block of key plus rest per line.

    Memory: a byte per line, pointers to the name-and-labels parts the rewriter's cache
    holds anyway, and the fixed lines.
    """

    __slots__ = ("mask", "fixed_mask", "fixed", "parts", "rests", "families", "keyed",
                 "dropped", "count")

    def __init__(self, mask: bytes, fixed: List[str], parts: Tuple[str, ...],
                 rests: Tuple[slice, ...], families: List[TemplateFamily],
                 dropped: Dict[str, int], count: int) -> None:
        self.mask = mask  # per line: 1 for a slot, 0 for a fixed line
        self.fixed_mask = mask.translate(_FLIP)
        self.fixed = fixed
        self.parts = parts  # per slot: its name-and-labels part
        self.rests = rests  # per slot: where the rest of the line starts
        anywhere = _one_brace_each(parts)  # else each family's parts are checked
        self.families = [f if not f.splices or f.splices[0][0][-1] != "{" else f._replace(
            splices=_one_brace(f.splices, anywhere or _one_brace_each(
                parts[f.where] if isinstance(f.where, slice) else [parts[i] for i in f.where])))
            for f in families]
        self.keyed = any(f.keys is not None for f in families)  # written as key plus rest
        self.dropped = dropped
        self.count = count

    def apply(self, body: Union[str, bytes]) -> Optional[Parsed]:
        """What parse() would make of `body`, or None if its layout differs."""
        parsed = Parsed()
        mask, fixed_mask, fixed, parts, starts = (
            self.mask, self.fixed_mask, self.fixed, self.parts, self.rests)
        samples: List[str] = []  # the slots' lines
        rests: List[str] = []  # the rest of each slot's line, if a family needs them
        keyed = self.keyed
        line_at = fixed_at = 0
        pacer = Pacer()
        for lines in body_slices(body, parsed, pacer):
            for first in range(0, len(lines), _STEP_LINES):
                step = lines[first:first + _STEP_LINES]
                stop = line_at + len(step)
                slots = mask[line_at:stop]
                n = slots.count(1)
                if stop > len(mask) or list(compress(step, fixed_mask[line_at:stop])) != \
                        fixed[fixed_at:fixed_at + len(step) - n]:
                    return None
                if n:
                    at = len(samples)
                    got = list(compress(step, slots))
                    if not all(map(str.startswith, got, parts[at:at + n])):
                        return None
                    cut = cast(List[str], list(map(getitem, got, starts[at:at + n])))
                    if not _canonical_values(cut):
                        return None
                    samples += got
                    if keyed:
                        rests += cut
                fixed_at += len(step) - n
                line_at = stop
        if line_at != len(mask) or parsed.dropped:
            return None
        for name, mtype, typed, help_, where, splices, keys, ids in self.families:
            fam = ParsedFamily(name, mtype, typed)
            fam.help = help_
            if keys is not None:
                picked = rests[where] if isinstance(where, slice) else list(map(
                    rests.__getitem__, where))
                lines = list(map(add, keys, picked))
                chunks = ((0, len(lines)),) if len(lines) <= _FEW else _join_chunks(lines)
                for a, b in chunks:
                    fam.add_block("\n".join(lines[a:b]), b - a,
                                  list(ids[a:b]))  # type: ignore[index]  # set with keys
                    pacer.nap()
            elif splices is not None:
                picked = samples[where] if isinstance(where, slice) else list(map(
                    samples.__getitem__, where))
                if isinstance(where, slice):  # free the lines now: a lower peak
                    samples[where] = repeat(None, len(picked))  # type: ignore[arg-type]  # freed
                # A bare name's splice finds it after a newline, the first line's too.
                lead = "\n" if splices and splices[-1][0][0] == "\n" else ""
                chunks = ((0, len(picked)),) if len(picked) <= _FEW else _join_chunks(picked)
                for a, b in chunks:
                    text = lead + "\n".join(picked[a:b])
                    for old, new in splices:
                        text = text.replace(old, new)
                    fam.add_block(text[len(lead):], b - a)
                    pacer.nap()
            parsed.families[name] = fam
        parsed.dropped = dict(self.dropped)
        return parsed


# Template.apply() joins and splices a family's lines this many characters at a time; a
# family of _FEW lines or fewer (nearly all) at once, as no line is longer than MAX_LINE.
_JOIN_CHARS = 1048576
_FEW = _JOIN_CHARS // MAX_LINE


def _join_chunks(lines: Sequence[str]) -> List[Tuple[int, int]]:
    """(start, stop) index ranges of `lines` of about _JOIN_CHARS characters each (at least
    one line), found with C-level calls (accumulate, bisect), no Python code per line."""
    ends = list(accumulate(map(len, lines)))
    ranges = []
    start = 0
    while start < len(lines):
        before = ends[start - 1] if start else 0
        stop = max(start + 1, bisect_right(ends, before + _JOIN_CHARS, start))
        ranges.append((start, stop))
        start = stop
    return ranges


def _one_brace_each(parts: Sequence[str]) -> bool:
    """True if no label value in these name-and-labels parts holds a `{` (a labelled part
    ends with its `}` and holds at least one `{`, a bare name holds none). Read 512 parts
    (at most 8 MiB: a part is at most MAX_LINE long) per C call."""
    pacer = Pacer()
    for at in range(0, len(parts), 512):
        step = parts[at:at + 512]
        if sum(map(str.count, step, repeat("{"))) != sum(map(str.endswith, step, repeat("}"))):
            return False
        pacer.nap()
    return True


def _one_brace(splices: Tuple[Tuple[str, str], ...], one_each: bool
               ) -> Tuple[Tuple[str, str], ...]:
    """A plain family's (old, new) splices (see Recorder.template), those of its labelled
    names made one, `{` to `{` plus our labels, if `one_each` (see _one_brace_each) holds
    for its name-and-labels parts. Its lines (slots starting with these parts, then a value
    in canonical form) then hold one `{` each if labelled, none if bare, and a single
    replace of `{` (a one-character search, over the text once) does what one replace per
    name did."""
    if not one_each or not splices or splices[0][0][-1] != "{":  # labelled names come first
        return splices
    old, new = splices[0]
    brace = ("{", "{" + new[len(old):])
    if splices[-1][0][-1] == "{":  # no bare name
        return (brace,)
    return (brace,) + tuple(x for x in splices if x[0][-1] != "{")


_FLIP = bytes.maketrans(b"\x00\x01", b"\x01\x00")


def _canonical_values(rests: List[str]) -> bool:
    """True if each rest is a blank and a value (maybe a blank and a timestamp) in canonical
    form that parse() accepts as it is."""
    text = "\n".join(rests)
    if _PLAIN_RESTS.fullmatch(text) is None and _RESTS.fullmatch(text) is None:
        return False
    return values_in_range(rests, text)


def record(rec: Recorder, parsed: Parsed, count: int, prefix: str) -> Optional[Template]:
    """The Template of a body the reference has read (`rec`: what it noted per line,
    `parsed`: what it made of the body, `count`: samples kept, `prefix`: the rewriter's),
    or None if the body has none (a line written out that is no slot, a line dropped before
    tokenizing)."""
    if not rec.whole:
        return None
    parts, hits = rec.parts, rec.hits
    # The slots of each family: runs of equal outcomes, found in C (groupby).
    where: Dict[str, List[int]] = {}
    at = 0
    for fam, run in groupby(rec.outcomes):
        n = len(list(run))
        if fam is not None:
            where.setdefault(fam.name, []).extend(range(at, at + n))
        at += n
    families: List[TemplateFamily] = []
    for fam in parsed.families.values():
        slots = where.pop(fam.name, [])
        if len(slots) != fam.count:
            return None
        span: Union[slice, Tuple[int, ...]] = tuple(slots)
        if slots and slots[-1] - slots[0] == len(slots) - 1:
            span = slice(slots[0], slots[-1] + 1)
        got = hits[span] if isinstance(span, slice) else [hits[i] for i in slots]
        splices: Optional[Tuple[Tuple[str, str], ...]] = None
        keys = ids = None
        if slots and set(map(type, got)) == {str}:
            mine = parts[span] if isinstance(span, slice) else [parts[i] for i in slots]
            plain = cast(List[str], got)  # every hit a str: the sample name
            names = set(plain)
            bare = names.intersection(mine)  # a bare name's part is the name itself
            labelled = names if not bare else {n for n, x in zip(plain, mine) if n != x}
            # "\nname{" and "\nname " are found exactly at the starts of that name's
            # lines (no other name, no label value holds them: values have no newline).
            # Labels go in first: a bare name's new labels must not get them again.
            splices = tuple(("\n%s{" % n, "\n%s{%s" % (n, prefix)) for n in labelled) + \
                tuple(("\n%s " % n, "\n%s{%s} " % (n, prefix[:-1])) for n in bare) \
                if prefix else ()
        elif slots:
            keys = tuple(plain_key(prefix, h, parts[i]) if type(h) is str
                         else h.key  # type: ignore[union-attr]  # a SeriesHit
                         for i, h in zip(slots, got))
            ids = tuple(fam.identities())
        families.append(TemplateFamily(fam.name, fam.type, fam.typed, fam.help, span, splices,
                                       keys, ids))
    if where:
        return None
    lengths = list(map(len, parts))
    starts = {n: slice(n, None) for n in set(lengths)}
    return Template(bytes(rec.mask), rec.fixed, tuple(parts),
                    tuple(map(starts.__getitem__, lengths)), families,
                    dict(parsed.dropped), count)

