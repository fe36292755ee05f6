"""What a parse reads into and keeps: families, the per-source rewriter and its cache, the
pacing of the worker thread, a body cut into slices of lines.

Shapes: a body is `str` or UTF-8 `bytes` of text format 0.0.4; a ParsedFamily holds sample
lines as written out (our labels spliced in); Parsed is one body's wanted families and its
drops per reason; a Rewriter lives as long as its source and carries what one scrape
learns to the next (Rewriter.cache, Rewriter.templates).
"""
from __future__ import annotations

import time
from itertools import compress
from typing import (TYPE_CHECKING, Dict, Iterable, Iterator, List, NamedTuple, Optional,
                    Pattern, Sequence, Set, Tuple, Union)

from .. import reasons
from ...exposition import escape_label_value, format_labels
from .grammar import PAIR, escape_name

if TYPE_CHECKING:
    from .template import Template


# Input is tokenized in slices of at most SLICE_BYTES of whole lines (see body_slices); between
# slices, and every NAP_LINES lines read one by one, once per _NAP_AFTER seconds of work,
# the worker thread hands the GIL to the event loop thread. A line longer than MAX_LINE (in
# bytes, or characters for a str body) is dropped and counted (`line_too_long`), never
# matched: Prometheus would store it, but a regular expression takes up to ~60 ns a
# character on hostile text, and one call must hold the GIL for no more than ~2 ms. No
# exporter writes lines of this size (10 kB label values pass).
SLICE_BYTES = 32768
MAX_LINE = 16384
_NAP_AFTER = 0.0005
NAP_LINES = 32
_NAP_SECONDS = 0.00005
_REAL_NAP_EVERY = 4


class Pacer:
    """Hands the GIL over (see nap()) once `_NAP_AFTER` seconds of work have passed since
    the last time: often enough for the event loop, rarely enough to cost little."""

    __slots__ = ("due", "naps")

    def __init__(self) -> None:
        self.due = time.perf_counter() + _NAP_AFTER
        self.naps = 0

    def nap(self) -> None:
        if time.perf_counter() >= self.due:
            # sleep(0) releases the GIL and hands it to a thread waiting for it (typically
            # the event loop) now instead of after the 5 ms switch interval, if that thread
            # wakes in time (~60 µs). On a loaded host it often does not: this thread takes
            # the GIL back first, and each release wakes the waiter into a new 5 ms wait,
            # which starved the loop for hundreds of milliseconds (Python 3.9 worst). So
            # every _REAL_NAP_EVERY-th nap is a real sleep, which the waiter cannot lose.
            self.naps += 1
            time.sleep(_NAP_SECONDS if self.naps % _REAL_NAP_EVERY == 0 else 0)
            self.due = time.perf_counter() + _NAP_AFTER


def label_text(labels: Sequence[Tuple[str, str]]) -> str:
    """`k="v",...` (escaped) of (key, value) pairs, without braces."""
    return format_labels([k for k, _ in labels], [v for _, v in labels])[1:-1]


# What is known of a validated name-and-labels part of a sample line (Rewriter.cache). A
# plain series (see plain_key) is known by its sample name alone, a str: one pointer per
# cached series, and most series are plain. Code tells the two apart by `type(hit) is str`.
PlainHit = str
# A line of UTF-8 names whose escaping changes them: its identity as written (name, sorted
# label pairs), for this parse only (see lines.escape_families), and once escaped.
QuotedIdentity = Tuple[Tuple[str, Tuple[Tuple[str, str], ...]], str]
Identity = Union[str, QuotedIdentity]


class SeriesHit(NamedTuple):
    """A validated name-and-labels part of a series that is not plain (see plain_key)."""

    name: str  # the sample name, interned
    key: str  # `name{labels}`, our labels spliced in: what is written
    ident: Identity  # the series identity (see series_identity)
    le_ok: bool  # an `le` label, if any, holds a float (a histogram needs one)
    quantile_ok: bool  # a `quantile` label, if any, holds a float (a summary needs one)


Hit = Union[PlainHit, SeriesHit]


def plain_key(prefix: str, name: str, part: str) -> str:
    """The series key of a plain series: its name-and-labels part as written (`name` or
    `name{labels}`, canonical) with the rewriter's `prefix` (our labels and a comma, or "")
    spliced in front of its labels. A plain series' identity is its key, and its `le` and
    `quantile` labels, if any, are numbers."""
    if len(part) == len(name):
        return name + "{" + prefix[:-1] + "}" if prefix else name
    return part[:len(name) + 1] + prefix + part[len(name) + 1:]


def series_identity(name: str, labels: str, fixed: int = 0) -> str:
    """What Prometheus takes for one series: the name and the label set, where label order
    does not matter and a label with an empty value is no label.

    `labels` is normalised label text (`a="1",b="2"`). The result has the shape of a series
    key (`name{a="1",b="2"}` or `name`), so for labels already sorted and non-empty it is the
    key itself. With `fixed`, the first `fixed` characters (a source's own labels and a
    comma, the same on each of its lines) are kept in front as they are: such an identity
    compares with those of the same source only (see full_identity).
    """
    if len(labels) <= fixed:
        return name + "{" + labels + "}" if labels else name
    head, labels = labels[:fixed], labels[fixed:]
    if "\\" not in labels and '=",' not in labels:
        # no escapes: every '",' ends a pair (but '=",' may open a value starting with a
        # comma), and '=""' is an empty value
        pairs = labels[:-1].split('",')
        if '=""' in labels:
            pairs = [x for x in pairs if not x.endswith('="')]
        pairs.sort()
        text = '",'.join(pairs) + '"' if pairs else ""
    else:
        text = ",".join(sorted("%s=%s" % p for p in PAIR.findall(labels) if p[1] != '""'))
    if head:
        text = head + text if text else head[:-1]
    return name + "{" + text + "}" if text else name


def full_identity(ident: str) -> str:
    """The identity of any series, from one that may keep its source's labels in front."""
    brace = ident.find("{")
    return ident if brace < 0 else series_identity(ident[:brace], ident[brace + 1:-1])

class ParsedFamily:
    """One metric family as read from one body: header plus already-rewritten sample lines.

    The sample lines are kept as `blocks`: strings of one or more whole lines joined by
    "\\n" (no trailing newline), in order; `count` is the number of lines in them. A family
    the template writes (see Template.apply) is one block, as merging and rendering need
    nothing finer; lines() splits the blocks where a merge must look at each line.
    `type` is None while only a HELP line named the family (Go's parser then still accepts
    a TYPE line for it). `ids` holds each line's series identity (see series_identity), or
    is None when every line's identity is its series key (see identities()).
    `wanted` is False for a family the source's keep/drop rules filter out.
    """

    __slots__ = ("name", "type", "help", "blocks", "count", "ids", "typed", "wanted")

    def __init__(self, name: str, mtype: Optional[str], typed: bool, wanted: bool = True
                 ) -> None:
        self.name = name
        self.type = mtype
        self.typed = typed
        self.wanted = wanted
        self.help: Optional[str] = None
        self.blocks: List[str] = []
        self.count = 0
        self.ids: Optional[List[str]] = []

    def add(self, line: str, ident: Identity) -> None:
        """Appends one sample line (without newline) and its series identity (a
        QuotedIdentity only until lines.escape_families() replaces it)."""
        self.identities().append(ident)  # type: ignore[arg-type]  # see the docstring
        self.blocks.append(line)
        self.count += 1

    def add_block(self, text: str, count: int, ids: Optional[List[str]] = None) -> None:
        """Appends `count` sample lines joined by "\\n" (no trailing newline) as one block,
        with their identities, or None if each is its line's series key."""
        if ids is not None:
            self.identities().extend(ids)
        elif self.ids:
            self.ids += _series_keys(text.split("\n"))
        else:
            self.ids = None
        self.blocks.append(text)
        self.count += count

    def extend(self, other: "ParsedFamily") -> None:
        """Appends the lines of `other` (which must not be used afterwards)."""
        if self.ids is not None or other.ids is not None:  # else both stay made on demand
            self.identities().extend(other.identities())
        self.blocks += other.blocks
        self.count += other.count

    def lines(self) -> List[str]:
        """The sample lines, one string each (without newline); the blocks become them,
        split SLICE_BYTES at a time (see _split_lines)."""
        if len(self.blocks) != self.count:
            pacer = Pacer()
            lines: List[str] = []
            for block in self.blocks:
                lines += _split_lines(block, pacer)
            self.blocks = lines
        return self.blocks

    def keep(self, flags: List[bool]) -> None:
        """Keeps the lines (and their identities) whose flag (one per line) is True."""
        self.blocks = list(compress(self.lines(), flags))
        self.ids = list(compress(self.identities(), flags))
        self.count = len(self.blocks)

    def identities(self) -> List[str]:
        """`ids`, made from the lines first if None."""
        if self.ids is None:
            self.ids = _series_keys(self.lines())
        return self.ids


def _split_lines(text: str, pacer: Pacer) -> List[str]:
    """text.split("\\n"), a window of about SLICE_BYTES at a time, so that no one call
    allocates the lines of a whole family while holding the GIL."""
    if len(text) <= SLICE_BYTES:
        return text.split("\n")
    lines: List[str] = []
    start = 0
    while True:
        end = text.find("\n", start + SLICE_BYTES)
        if end < 0:
            lines += text[start:].split("\n")
            return lines
        lines += text[start:end].split("\n")
        start = end + 1
        pacer.nap()


def _series_keys(lines: Iterable[str]) -> List[str]:
    """Each sample line's series key: the line up to the blank before its value."""
    return [x[:x.rfind("}") + 1 or x.find(" ")] for x in lines]

class Rewriter:
    """Per-source rewrite rules: labels to add, clash policy and family filters.

    `labels` are added to every sample (first `exporter_name`); a backend label of the same
    name is kept as `exported_<name>` (Prometheus' honor_labels=false), or wins if
    `honor_labels`. `rewrite=False` adds nothing (no_rewrite, and the component's own text).
    """

    def __init__(self, labels: Sequence[Tuple[str, str]] = (), honor_labels: bool = False,
                 rewrite: bool = True, keep: Sequence[Pattern[str]] = (),
                 drop: Sequence[Pattern[str]] = ()) -> None:
        self.labels = list(labels) if rewrite else []
        self.honor_labels = honor_labels
        inject = label_text(self.labels)
        self.prefix = inject + "," if inject else ""
        self.ours = frozenset("," + k + "=" for k, _ in self.labels)
        self.our_names = frozenset(k for k, _ in self.labels) | {"__name__"}
        self.keep = list(keep)
        self.drop = list(drop)
        # Validated name+labels parts of past scrapes (see parse()); reset when it grows well
        # beyond what one scrape uses, so vanished series do not pile up.
        self.cache: Dict[str, Hit] = {}
        self.used = 0
        # The layout of each body of the previous scrape, by position (see Template).
        self.templates: Dict[int, Optional[Template]] = {}
        self.bodies = 0
        # Samples of sources that add their own exporter_name cannot collide with each other.
        self.tags = (bool(self.labels) and self.labels[0][0] == "exporter_name"
                     and not honor_labels)
        # A plain series' identity is its key when the labels we add lead and stay apart
        # (or there are none) and none of them is a number label: see read_slice().
        self.bulk = (self.tags or not self.prefix) and not {"le", "quantile"} & self.our_names

    def rotate(self) -> None:
        """Ends a scrape (all bodies of a source)."""
        if len(self.cache) > 2 * self.used + 1024:
            self.cache = {}
        self.used = 0
        for index in [i for i in self.templates if i >= self.bodies]:
            del self.templates[index]  # a glob now matching fewer files
        self.bodies = 0

    def wanted(self, family: str) -> bool:
        """True unless keep/drop filter out the family of this name (a UTF-8 name is
        matched as it is served: escaped)."""
        if not self.keep and not self.drop:
            return True
        family = escape_name(family)
        if self.keep and not any(p.fullmatch(family) for p in self.keep):
            return False
        return not any(p.fullmatch(family) for p in self.drop)

    def splice_plain(self, body: str) -> Optional[str]:
        """Label text for a fast-path body (no escapes, so every `"` delimits a value)."""
        if body[-1] == ",":
            body = body[:-1]
        names = ("," + body).split('"')[0::2]
        names.pop()
        seen = set(names)
        if len(seen) != len(names) or ",__name__=" in seen:
            return None
        if self.ours and not self.ours.isdisjoint(seen):
            return self.splice_pairs(PAIR.findall(body))
        return self.prefix + body

    def splice_pairs(self, pairs: List[Tuple[str, str]]) -> Optional[str]:
        """Label text from (name, quoted value) pairs; handles clashes with our labels."""
        names = [n for n, _ in pairs]
        taken = set(names)
        if len(taken) != len(names) or "__name__" in taken:
            return None
        ours = dict(self.labels)
        out = ['%s="%s"' % (k, escape_label_value(v)) for k, v in self.labels
               if not (self.honor_labels and k in taken)]
        for n, v in pairs:
            if n in ours and not self.honor_labels:
                new = "exported_" + n
                while new in taken or new in ours:
                    new = "exported_" + new
                taken.add(new)
                n = new
            out.append("%s=%s" % (n, v))
        return ",".join(out)


class Parsed:
    """Wanted families from one body in the order they got a type, plus per-reason counts
    of dropped lines."""

    __slots__ = ("families", "dropped")

    def __init__(self) -> None:
        self.families: Dict[str, ParsedFamily] = {}
        self.dropped: Dict[str, int] = {}

    def drop(self, reason: str, n: int = 1) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + n


def decode(body: bytes, parsed: Parsed) -> str:
    """UTF-8 only: undecodable lines are dropped (counted as `invalid_utf8`), never passed on."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    good: List[str] = []
    for raw in body.split(b"\n"):
        try:
            good.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            parsed.drop(reasons.INVALID_UTF8)
    return "\n".join(good)

def body_slices(body: Union[str, bytes], parsed: Parsed, pacer: Pacer) -> Iterator[List[str]]:
    """Lines, a slice of at most SLICE_BYTES (whole lines) at a time; between slices the
    GIL goes to the event loop thread now and then (`pacer`).

    Every C call here (finding a newline, decoding, splitting) reads a bounded window, and
    so does every call the caller makes over a slice or one of its lines: a line longer
    than MAX_LINE is dropped and counted (`line_too_long`), not read. A last line without
    its newline is read like any other, as Prometheus' scrape parser reads it.
    """
    total = len(body)
    newline = b"\n" if isinstance(body, bytes) else "\n"
    start = 0
    while start < total:
        if total - start <= SLICE_BYTES:
            end = total
        else:
            # newline has the type of body (mypy cannot pair the two unions)
            stop = start + SLICE_BYTES + 1
            end = body.rfind(newline, start, stop)  # type: ignore[arg-type]  # above
            if end < 0:  # the line at `start` is longer than a slice
                parsed.drop(reasons.LINE_TOO_LONG)
                start = _line_after(body, start, newline, pacer)
                continue
        piece = body[start:end]
        text = decode(piece, parsed) if isinstance(piece, bytes) else piece
        lines = text.split("\n")
        if len(text) > MAX_LINE and _has_long_line(text):
            short = [x for x in lines if len(x) <= MAX_LINE]
            parsed.drop(reasons.LINE_TOO_LONG, len(lines) - len(short))
            lines = short
        yield lines
        start = end + 1
        pacer.nap()


def _has_long_line(text: str) -> bool:
    """Whether a line of `text` is longer than MAX_LINE: a few bounded rfind() calls, one
    per MAX_LINE characters, instead of a look at every line."""
    at = 0
    while len(text) - at > MAX_LINE:
        newline = text.rfind("\n", at, at + MAX_LINE + 1)
        if newline < 0:
            return True
        at = newline + 1
    return False


def _line_after(body: Union[str, bytes], start: int, newline: Union[str, bytes],
                pacer: Pacer) -> int:
    """Where the line after the one at `start` begins (or len(body)), found a window of
    MAX_LINE at a time."""
    while start < len(body):
        end = body.find(newline, start, start + MAX_LINE)  # type: ignore[arg-type]  # same type
        if end >= 0:
            return end + 1
        start += MAX_LINE
        pacer.nap()
    return len(body)


class Recorder:
    """What the reference notes per line, while it reads a body, to build the body's
    Template (see template.record)."""

    __slots__ = ("mask", "fixed", "parts", "hits", "outcomes", "whole")

    def __init__(self) -> None:
        self.mask = bytearray()
        self.fixed: List[str] = []
        self.parts: List[str] = []  # per slot: its name-and-labels part
        self.hits: List[Hit] = []  # per slot: its rw.cache entry
        self.outcomes: List[Optional[ParsedFamily]] = []  # per slot: where its line went
        # False if a line written out is no slot, or a line was dropped before tokenizing
        self.whole = True


class BodyState:
    """What reading one body keeps from one slice of lines to the next: the reference
    (lines.read_lines) and the slice fast path (slices.read_slice) both read and update it.

    `fams` holds every family Go's parser knows, filtered ones too; `owner` maps a sample
    name to its family (None: filtered out); `seen` the series identities taken from the
    body; `quoted` the families with lines of UTF-8 names, by id(); `untyped` the
    histograms and summaries to serve untyped (a line whose `le` or `quantile` is no float),
    by id(); `carry` the lines from one that leaves a label value open to the end of the
    last slice, read with the next; `count`, `bad` and `dups` count the samples kept, the
    invalid lines and the repeated series. `rec` is the Recorder of a body whose Template is
    being made, or None.
    """

    __slots__ = ("rw", "parsed", "rec", "pacer", "fams", "owner", "seen", "quoted", "untyped",
                 "carry", "count", "bad", "dups")

    def __init__(self, rw: Rewriter, parsed: Parsed, rec: Optional[Recorder]) -> None:
        self.rw = rw
        self.parsed = parsed
        self.rec = rec
        self.pacer = Pacer()
        self.fams: Dict[str, ParsedFamily] = {}
        self.owner: Dict[str, Optional[ParsedFamily]] = {}
        self.seen: Set[Identity] = set()
        self.quoted: Dict[int, ParsedFamily] = {}
        self.untyped: Dict[int, ParsedFamily] = {}
        self.carry: List[str] = []
        self.count = self.bad = self.dups = 0
