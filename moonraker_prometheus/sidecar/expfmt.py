"""Text exposition format 0.0.4: a validating tokenizer that splices labels into sample lines.

Why not prometheus_client's parser: a parse and re-encode is about 10x slower, regroups
nothing, mangles counter names and accepts what Prometheus rejects. Here a line is accepted
when Prometheus' scrape parser (`textparse.PromParser`: what a Prometheus scraping the
exporter directly stores) accepts it, and it is written out in a canonical form that Go's
text parser (`expfmt.TextParser`, which `promtool check metrics` runs) reads too: blanks at
the end and pairs without commas are left out, label values escaped, a histogram or summary
whose `le`/`quantile` is no float served untyped (_untype), a later HELP or TYPE ignored.
Where the scrape parser is stricter, the merge is too (negative timestamps, a repeated
`le`/`quantile` label, `gauge_histogram`); it stays as lenient as promtool for `+5` as a
timestamp and a TYPE keyword in any case. tests/sidecar/test_prometheus_oracle.py holds this
against a real Prometheus, tests/sidecar/test_expfmt_differential.py against promtool.

A rejected line is dropped and counted, and is as if absent: it creates no family. Labels are
spliced into the label text without re-encoding values, and lines are grouped into families
(resolved as Go does: `x_count` joins a summary or histogram `x` declared before it) so the
merger can emit one HELP/TYPE per family. A source's series validated in one scrape are
remembered, so the next scrape only checks values; a body laid out line for line as the
source's previous one has its values checked a few thousand lines per C call, with no Python
code per line (Template); any other body is read a slice at a time the same way where its
lines allow (_bulk_slice), and line by line where they do not. Work is linear in the input.
Quoted UTF-8 names (Prometheus 3) are served escaped to legacy names as Prometheus'
`underscores` escaping writes them; what the escaping makes collide is dropped and counted
(see _escape_families).
"""
from __future__ import annotations

import math
import re
import sys
import time
from collections import deque
from bisect import bisect_right
from itertools import accumulate, chain, compress, groupby, islice, repeat
from operator import add, getitem, not_
from typing import Dict, Iterable, Iterator, List, Optional, Pattern, Sequence, Set, Tuple, Union

from ..exposition import LABEL_NAME, TYPES, escape_label_value, format_labels, header_lines
from ..exposition import METRIC_NAME as NAME

# Written unrolled (runs of plain characters between escapes): one way to match a value,
# which Python's regex engine reads a run at a time (an alternation per character is 15
# times slower); each run read whole, as DIGITS below.
LABEL_VALUE = r'"[^"\\\n]*(?![^"\\\n])(?:\\[\\"n][^"\\\n]*(?![^"\\\n]))*"'
# A run of digits read whole: the look-ahead stops the engine from giving digits back one
# at a time when what follows fails (4x faster on a long run that fails at its end; no
# match needs part of a run, as no digit can follow one).
DIGITS = r"[0-9]+(?![0-9])"
# Go's strconv.ParseFloat minus hex floats and underscores (Prometheus refuses p, P and _):
# ASCII digits only, inf/infinity/nan in any ASCII case, no sign on NaN. One way to match
# each float (docs/architecture.md, "Linear-time parsing").
FLOAT = (r"(?:[+-]?(?:(?:%s(?:\.(?:%s)?)?|\.%s)(?:[eE][+-]?%s)?"
         r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)|[nN][aA][nN])" % ((DIGITS,) * 4))
TIMESTAMP = r"[+-]?" + DIGITS  # Go's strconv.ParseInt(s, 10, 64); the range is checked apart
# A metric name is read greedily (Go stops at the first byte that cannot continue it): the
# look-ahead keeps the regex from backtracking `o1` into the name `o` and the value `1`.
_NAME_END = r"(?![a-zA-Z0-9_:])"
# Fast path, what nearly every exporter writes: canonical spacing and no escapes in label
# values, so one regex with simple character classes validates the whole line.
_SAMPLE_FAST = re.compile(
    r'(%s)(?:\{((?:%s="[^"\\\n]*",)*(?:%s="[^"\\\n]*")?)\})? (%s)(?: ([0-9]{1,18}))?'
    % (NAME, LABEL_NAME, LABEL_NAME, FLOAT))
# A label value as Prometheus' scrape parser reads it: a backslash escapes any character
# but a newline, and a raw newline is part of the value (so a value can span lines: see
# parse()). Its `\\`, `\"` and `\n` are escapes, any other backslash is itself (served
# escaped, see _canonical_value).
_ANY_VALUE = r'"[^"\\]*(?![^"\\])(?:\\[^\n][^"\\]*(?![^"\\]))*"'
# Everything else Prometheus' scrape parser accepts: blanks before the name, around label
# tokens, after the closing brace and at the end, a comma between pairs or not (and one
# after the last), any escape in a label value, no blank between name and value (`a-1`,
# `a{}1`).
_PAIR_LOOSE = r"%s[ \t]*=[ \t]*%s" % (LABEL_NAME, _ANY_VALUE)
_SAMPLE_LOOSE = re.compile(
    r"[ \t]*(%s)%s(?:[ \t]*(\{[ \t]*((?:%s[ \t]*(?:,[ \t]*)?)*)\}))?[ \t]*"
    r"(%s)(?:[ \t]+(?![ \t])(?:(%s)[ \t]*(?![ \t]))?)?"
    % (NAME, _NAME_END, _PAIR_LOOSE, FLOAT, TIMESTAMP))
# findall() over _SAMPLE_LOOSE's label text (see _PAIR).
_PAIR_ANY = re.compile(r"(?<![a-zA-Z0-9_])(%s)[ \t]*=[ \t]*(%s)" % (LABEL_NAME, _ANY_VALUE))
# What _canonical_value() rewrites: an escape, or a raw newline.
_VALUE_ESCAPE = re.compile(r"\\.|\n", re.S)
# The rest of a line whose name-and-labels part is already known (see parse()).
# Each run of blanks is read whole (the look-aheads), as DIGITS: two runs that could share
# the same blanks would make a failing match quadratic.
_VALUE = re.compile(r"[ \t]*(?![ \t])(%s)(?:[ \t]+(?![ \t])(?:(%s)[ \t]*(?![ \t]))?)?"
                    % (FLOAT, TIMESTAMP))
# findall() over label text: the look-behind makes a search fail at once inside a name
# instead of reading the rest of the name again from every position in it.
_PAIR = re.compile(r"(?<![a-zA-Z0-9_])(%s)[ \t]*=[ \t]*(%s)" % (LABEL_NAME, LABEL_VALUE))
_FLOAT_ONLY = re.compile(FLOAT)
_NAME_AT = re.compile(NAME)
# The HELP/TYPE lines nearly every exporter writes; other spellings go to _comment_parts().
_COMMENT_FAST = re.compile(r"# (HELP|TYPE) (%s) ([^ \t].*)" % NAME)
_BLANKS = " \t"
_INT64_MAX = (1 << 63) - 1
# UTF-8 names (Prometheus 3, node_exporter's textfile collector): a metric or label name
# quoted as a label value is (its escapes read) any non-empty text. A sample line then puts
# a quoted metric name inside the braces as an item of its own (`{"a.b",c="d"} 1`), or a
# legacy name before them (`m{"a.b"="v"} 1`). Such a line is read an item at a time: the
# head, then one _QUOTED_ITEM per item (a quoted name, or a name, legacy or quoted, `=` and
# a value), each ending at its `,` or `}`, then the value as _VALUE reads it.
_QUOTED_HEAD = re.compile(r"[ \t]*(?:(%s)%s[ \t]*)?\{" % (NAME, _NAME_END))
_QUOTED_ITEM = re.compile(
    r"[ \t]*(?:(?:(%s)|(%s)(?![a-zA-Z0-9_]))[ \t]*(?:=[ \t]*(%s)[ \t]*)?([,}])|(\}))"
    % (LABEL_VALUE, LABEL_NAME, LABEL_VALUE))
_QUOTED_AT = re.compile(LABEL_VALUE)  # a quoted name in a HELP or TYPE line (match())
# What Prometheus' `underscores` escaping (Go: model.EscapeName, UnderscoreEscaping) turns
# into `_`: every character that is not legal there in a legacy name. In a label name `:`
# is not legal in the text format 0.0.4 either (Go keeps it: its output would not parse).
_NOT_LEGACY = {False: re.compile(r"[^a-zA-Z0-9_:]"), True: re.compile(r"[^a-zA-Z0-9_]")}
_QUOTED = -4  # _tokenize(): the end of the name-and-labels part of a line of quoted names
# _tokenize() ends after which parse() may hand the GIL over at once: an invalid line, or
# one of quoted names, may have taken milliseconds (a 16 KiB line of a thousand labels).
_SLOW_ENDS = frozenset((-1, -3, _QUOTED))
_MEMBER_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}

# Go upper-cases the TYPE keyword rune by rune (strings.ToUpper), so `GAUGE` is a gauge, and
# so is `gauge` spelled with a dotless i or a long s where they fit (`hıstogram`).
_TYPE_KEYWORDS = {t.upper(): t for t in TYPES}
# Input is tokenized in slices of at most _SLICE_BYTES of whole lines (see _slices); between
# slices, and every _NAP_LINES lines read one by one, once per _NAP_AFTER seconds of work,
# the worker thread hands the GIL to the event loop thread. A line longer than MAX_LINE (in
# bytes, or characters for a str body) is dropped and counted (`line_too_long`), never
# matched: Prometheus would store it, but a regular expression takes up to ~60 ns a
# character on hostile text, and one call must hold the GIL for no more than ~2 ms. No
# exporter writes lines of this size (10 kB label values pass).
_SLICE_BYTES = 32768
MAX_LINE = 16384
_NAP_AFTER = 0.0005
_NAP_LINES = 32
_NAP_SECONDS = 0.00005
_REAL_NAP_EVERY = 4


class _Pacer:
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


def unescape_help(text: str) -> str:
    """HELP text as Prometheus' scrape parser reads it: `\\\\` and `\\n` are escapes, any
    other backslash is itself (Go's text parser would refuse it, so the merge serves it
    escaped)."""
    return _HELP_ESCAPE.sub(_read_help_escape, text) if "\\" in text else text


_HELP_ESCAPE = re.compile(r"\\[\\n]")  # left to right, as Go's strings.Replacer reads


def _read_help_escape(m: "re.Match[str]") -> str:
    return "\n" if m.group() == "\\n" else "\\"


def escape_name(name: str, label: bool = False) -> str:
    """A metric name (or with `label`, a label name) as Prometheus' `underscores` escaping
    writes it in the text format 0.0.4: each character not legal at its place in a legacy
    name becomes `_` (a digit is legal after the first place only); a legal name stays as it
    is."""
    escaped = _NOT_LEGACY[label].sub("_", name)
    return "_" + escaped[1:] if escaped[:1].isdigit() else escaped


def _unquote(text: str) -> str:
    """The name a quoted name (`"..."`, validated by LABEL_VALUE) stands for: its escapes
    `\\\\`, `\\"` and `\\n` read."""
    text = text[1:-1]
    if "\\" not in text:
        return text
    return "\\".join(x.replace('\\"', '"').replace("\\n", "\n") for x in text.split("\\\\"))


def label_text(labels: Sequence[Tuple[str, str]]) -> str:
    """`k="v",...` (escaped) of (key, value) pairs, without braces."""
    return format_labels([k for k, _ in labels], [v for _, v in labels])[1:-1]


# What is known of a validated name-and-labels part of a sample line (rw.cache): for a
# plain series (see _plain_key), only its sample name; otherwise sample name, series key
# (`name{labels}`, our labels spliced in), series identity, le ok, quantile ok.
Hit = Union[str, Tuple[str, str, str, bool, bool]]


def _plain_key(prefix: str, name: str, part: str) -> str:
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
        text = ",".join(sorted("%s=%s" % p for p in _PAIR.findall(labels) if p[1] != '""'))
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

    def add(self, line: str, ident: str) -> None:
        """Appends one sample line (without newline) and its series identity."""
        self.identities().append(ident)  # made first if None (a block without them)
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
        split _SLICE_BYTES at a time (see _split_lines)."""
        if len(self.blocks) != self.count:
            pacer = _Pacer()
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


def _split_lines(text: str, pacer: _Pacer) -> List[str]:
    """text.split("\\n"), a window of about _SLICE_BYTES at a time, so that no one call
    allocates the lines of a whole family while holding the GIL."""
    if len(text) <= _SLICE_BYTES:
        return text.split("\n")
    lines: List[str] = []
    start = 0
    while True:
        end = text.find("\n", start + _SLICE_BYTES)
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
        # (or there are none) and none of them is a number label: see _bulk_slice().
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
            return self.splice_pairs(_PAIR.findall(body))
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
            parsed.drop("invalid_utf8")
    return "\n".join(good)


def _slices(body: Union[str, bytes], parsed: Parsed, pacer: _Pacer) -> Iterator[List[str]]:
    """Lines, a slice of at most _SLICE_BYTES (whole lines) at a time; between slices the
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
        if total - start <= _SLICE_BYTES:
            end = total
        else:
            end = body.rfind(newline, start, start + _SLICE_BYTES + 1)  # type: ignore[arg-type]
            if end < 0:  # the line at `start` is longer than a slice
                parsed.drop("line_too_long")
                start = _line_after(body, start, newline, pacer)
                continue
        piece = body[start:end]
        text = decode(piece, parsed) if isinstance(piece, bytes) else piece
        lines = text.split("\n")
        if len(text) > MAX_LINE and _has_long_line(text):
            short = [x for x in lines if len(x) <= MAX_LINE]
            parsed.drop("line_too_long", len(lines) - len(short))
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
                pacer: _Pacer) -> int:
    """Where the line after the one at `start` begins (or len(body)), found a window of
    MAX_LINE at a time."""
    while start < len(body):
        end = body.find(newline, start, start + MAX_LINE)  # type: ignore[arg-type]
        if end >= 0:
            return end + 1
        start += MAX_LINE
        pacer.nap()
    return len(body)


# What a body's sample line must end with, after a known name-and-labels part, for the
# line to be written as that part's series key followed by the rest as it is: a blank, a
# value and maybe a blank and a timestamp in canonical form (see _timestamp).
_REST = " %s(?: (?:0|[1-9][0-9]{0,17}))?" % FLOAT
_RESTS = re.compile("(?:%s\n)*%s" % (_REST, _REST))
# What nearly every exporter writes (a subset of _RESTS, tried first as it runs faster).
_PLAIN_REST = r" -?%s(?:\.%s)?(?:e[+-]%s)?(?: [1-9][0-9]{0,17})?" % ((DIGITS,) * 3)
_PLAIN_RESTS = re.compile("(?:%s\n)*%s" % (_PLAIN_REST, _PLAIN_REST))
_EXPONENT = re.compile(r" ([^ \n]*[eE][^ \n]*)")  # a value token that may overflow
_LONG_TOKEN = re.compile(r"[^ \n]{41}")  # a value whose range parse() checks
# Template.apply() checks at most this many lines per C call (a slice has fewer of them
# unless they are very short).
_STEP_LINES = 4096


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

    A family of plain series only (see _plain_key) is written as one block (see
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
                 rests: Tuple[slice, ...], families: List[_TemplateFamily],
                 dropped: Dict[str, int], count: int) -> None:
        self.mask = mask  # per line: 1 for a slot, 0 for a fixed line
        self.fixed_mask = mask.translate(_FLIP)
        self.fixed = fixed
        self.parts = parts  # per slot: its name-and-labels part
        self.rests = rests  # per slot: where the rest of the line starts
        anywhere = _one_brace_each(parts)  # else each family's parts are checked
        self.families = [f if not f[5] or f[5][0][0][-1] != "{" else f[:5] + (_one_brace(
            f[5], anywhere or _one_brace_each(
                parts[f[4]] if isinstance(f[4], slice) else [parts[i] for i in f[4]])),) + f[6:]
            for f in families]
        self.keyed = any(f[6] is not None for f in families)  # written as key plus rest
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
        pacer = _Pacer()
        for lines in _slices(body, parsed, pacer):
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
                    cut = list(map(getitem, got, starts[at:at + n]))
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
                                  list(ids[a:b]))  # type: ignore[index]
                    pacer.nap()
            elif splices is not None:
                picked = samples[where] if isinstance(where, slice) else list(map(
                    samples.__getitem__, where))
                if isinstance(where, slice):  # free the lines now: a lower peak
                    samples[where] = repeat(None, len(picked))
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


# A family in a Template: name, type, typed, help, the slots of its lines (a slice if they
# follow each other), then for a family of plain series (old, new) texts that splice our
# labels in, else None and its series keys and identities (both None for a family without
# lines).
_TemplateFamily = Tuple[str, Optional[str], bool, Optional[str], Union[slice, Tuple[int, ...]],
                        Optional[Tuple[Tuple[str, str], ...]], Optional[Tuple[str, ...]],
                        Optional[Tuple[str, ...]]]


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
    pacer = _Pacer()
    for at in range(0, len(parts), 512):
        step = parts[at:at + 512]
        if sum(map(str.count, step, repeat("{"))) != sum(map(str.endswith, step, repeat("}"))):
            return False
        pacer.nap()
    return True


def _one_brace(splices: Tuple[Tuple[str, str], ...], one_each: bool
               ) -> Tuple[Tuple[str, str], ...]:
    """A plain family's (old, new) splices (see _Recorder.template), those of its labelled
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
    return _values_in_range(rests, text)


def _values_in_range(rests: Sequence[str], text: str) -> bool:
    """True if no value of these rests (`text`: them joined by newlines) overflows a
    float64; False too, to be on the safe side, for a value too long to judge here."""
    if max(map(len, rests)) > 41 and _LONG_TOKEN.search(text) is not None:
        return False
    if "e" in text or "E" in text:
        return all(_in_range(v) for v in _EXPONENT.findall(text))
    return True


class _Recorder:
    """What parse() notes per line to build the body's Template."""

    __slots__ = ("mask", "fixed", "parts", "hits", "outcomes", "whole")

    def __init__(self) -> None:
        self.mask = bytearray()
        self.fixed: List[str] = []
        self.parts: List[str] = []  # per slot: its name-and-labels part
        self.hits: List[Hit] = []  # per slot: its rw.cache entry
        self.outcomes: List[Optional[ParsedFamily]] = []  # per slot: where its line went
        # False if a line written out is no slot, or a line was dropped before tokenizing
        self.whole = True

    def template(self, parsed: Parsed, count: int, prefix: str) -> Optional[Template]:
        """The body's Template (`prefix`: the rewriter's), or None if it has none."""
        if not self.whole:
            return None
        parts, hits = self.parts, self.hits
        # The slots of each family: runs of equal outcomes, found in C (groupby).
        where: Dict[str, List[int]] = {}
        at = 0
        for fam, run in groupby(self.outcomes):
            n = len(list(run))
            if fam is not None:
                where.setdefault(fam.name, []).extend(range(at, at + n))
            at += n
        families: List[_TemplateFamily] = []
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
                names = set(got)  # type: ignore[arg-type]
                bare = names.intersection(mine)  # a bare name's part is the name itself
                labelled = names if not bare else {
                    n for n, x in zip(got, mine) if n != x}  # type: ignore[misc]
                # "\nname{" and "\nname " are found exactly at the starts of that name's
                # lines (no other name, no label value holds them: values have no newline).
                # Labels go in first: a bare name's new labels must not get them again.
                splices = tuple(("\n%s{" % n, "\n%s{%s" % (n, prefix)) for n in labelled) + \
                    tuple(("\n%s " % n, "\n%s{%s} " % (n, prefix[:-1])) for n in bare) \
                    if prefix else ()
            elif slots:
                keys = tuple(_plain_key(prefix, h, parts[i]) if type(h) is str else h[1]
                             for i, h in zip(slots, got))
                ids = tuple(fam.identities())
            families.append((fam.name, fam.type, fam.typed, fam.help, span, splices, keys,
                             ids))
        if where:
            return None
        lengths = list(map(len, parts))
        starts = {n: slice(n, None) for n in set(lengths)}
        return Template(bytes(self.mask), self.fixed, tuple(parts),
                        tuple(map(starts.__getitem__, lengths)), families,
                        dict(parsed.dropped), count)


# A first scrape, a slice at a time (see _bulk_slice): every line of the slice is a comment,
# a blank line or a sample line in canonical form (one blank before the value, labels with
# no blanks or trailing comma, a canonical value and timestamp), whose name-and-labels part
# and rest are captured.
_PAIR_TEXT = "%s=%s" % (LABEL_NAME, LABEL_VALUE)
_LINES = re.compile(r"^(?:#[^\n]*|((%s)(\{%s(?:,%s)*\})?)(%s))?$"
                    % (NAME, _PAIR_TEXT, _PAIR_TEXT, _REST), re.M)
_EVERY_OTHER = slice(None, None, 2)
# Labels whose values must be numbers (see _numeric), as they appear in a skeleton.
_NUMERIC_LABELS = frozenset(("le=", "quantile="))
_NUMERIC_VALUES = {n: re.compile(r'[{,]%s"([^"]*)"' % n) for n in _NUMERIC_LABELS}


def _bulk_slice(lines: List[str], fams: Dict[str, ParsedFamily],
                owner: Dict[str, Optional[ParsedFamily]], rw: Rewriter, parsed: Parsed,
                seen: Set[str], rec: Optional[_Recorder], pacer: _Pacer) -> Optional[int]:
    """What parse()'s loop would do with one slice of lines, done with C-level calls over
    the whole slice instead of Python code per line; the number of samples kept, or None
    (nothing done) for a slice parse() must read line by line.

    Only for a rewriter with `bulk` set. A slice qualifies when
    every line is a comment, a blank line or a canonical sample line (_LINES), no value
    overflows and no two sample lines are one series. Sample lines whose label names are
    sorted, unique, not ours and not `le`/`quantile`, with no escape and no empty value, are
    plain series (their key is the part with our labels spliced in, their identity the
    key); the few others go through _tokenize() as parse() would send them, and must come
    out as slots with a valid value. Families, drops by comments, the recorder and the
    series cache end as parse() leaves them.
    """
    text = "\n".join(lines)
    found = _LINES.findall(text)
    pacer.nap()
    if len(found) != len(lines):
        return None
    parts, names, braces, rests = zip(*found)
    flags = list(map(bool, names))  # per line: a sample line
    parts = tuple(compress(parts, flags))
    if not parts:
        return None
    names = list(compress(names, flags))
    braces = list(compress(braces, flags))
    rests = list(compress(rests, flags))
    if not _values_in_range(rests, "\n".join(rests)):
        return None
    n = len(parts)
    keys = list(map(str.replace, parts, repeat("{"), repeat("{" + rw.prefix), repeat(1))) \
        if rw.prefix else list(parts)
    slow: Set[int] = set()  # sample indexes of lines for _tokenize()
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
        at = list(compress(range(n), map(skeleton.__eq__, skeletons)))
        if not plain:
            slow.update(at)
        for label in checked:
            numeric.setdefault(label, []).extend(at)
    for label, at in numeric.items():
        values = _NUMERIC_VALUES[label].findall("\n".join(map(parts.__getitem__, at)))
        if len(values) != len(at) or not all(map(_is_go_float, values)):
            slow.update(at)  # no plain series: _tokenize() says what they are
    interned = {name: sys.intern(name) for name in set(names)}
    hits: List[Hit] = list(map(interned.__getitem__, names))
    for i in escaped:  # no plain series (see _tokenize), though its identity is its key
        if i not in slow:
            hits[i] = (hits[i], keys[i], keys[i], True, True)  # type: ignore[call-overload]
    ids = keys
    if slow:
        ids = list(keys)
        for i in slow:
            line = parts[i] + rests[i]
            hit, key, _, _, head = _tokenize(line, rw)
            if hit is None or head != len(parts[i]) or type(hit) is not str and not (
                    hit[3] and hit[4]):  # type: ignore[index]
                return None
            hits[i] = hit
            keys[i] = key
            ids[i] = key if type(hit) is str else hit[2]  # type: ignore[index]
    unique = set(ids)
    if len(unique) != n or not seen.isdisjoint(unique):
        return None
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
                fam = owner[name] if name in owner else _sample_family(
                    name, fams, owner, rw, parsed)
                groups: Iterable[Tuple[Optional[ParsedFamily], int]] = ((fam, len(run)),)
            else:
                for name in dict.fromkeys(run):
                    if name not in owner:
                        _sample_family(name, fams, owner, rw, parsed)
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
            _comment(lines[stop], fams, owner, rw, parsed)
        line_at = stop + 1
    seen.update(compress(ids, outcomes))  # the kept lines' (a family is true, None false)
    if rec is not None:
        rec.mask.extend(flags)
        rec.fixed += compress(lines, others)
        rec.parts += parts
        rec.hits += hits
        rec.outcomes += outcomes
        if rw.cache:  # the template keeps `part`: one copy, not two
            deque(map(rw.cache.pop, parts, repeat(None)), 0)
    rw.cache.update(zip(parts, hits))
    return count


def parse(body: Union[str, bytes], rw: Rewriter, parsed: Optional[Parsed] = None) -> Parsed:
    """Tokenizes one exposition body into `parsed` (a new Parsed unless given).

    A body laid out as the same source's body at this position in the previous scrape, line
    for line, only has its values checked (see Template). Otherwise, a line whose
    name-and-labels part was validated in this or the previous scrape of the same source
    (rw.cache) only needs its value checked: series are stable between scrapes. A repeated
    series (same identity) keeps its first line; the others count as duplicates.
    """
    rec: Optional[_Recorder] = None
    if parsed is None:
        index = rw.bodies
        rw.bodies += 1
        template = rw.templates.get(index)
        if template is not None:
            done = template.apply(body)
            if done is not None:
                rw.used += template.count
                return done
        parsed = Parsed()
        rec = _Recorder()
        mark, keep_fixed = rec.mask.append, rec.fixed.append
        slot_part, slot_hit, slot_outcome = rec.parts.append, rec.hits.append, rec.outcomes.append
    fams: Dict[str, ParsedFamily] = {}  # every family Go's parser knows, filtered ones too
    owner: Dict[str, Optional[ParsedFamily]] = {}  # sample name -> family (None: filtered out)
    count = bad = dups = 0
    quoted: Dict[int, ParsedFamily] = {}  # families with lines of UTF-8 names, by id
    untyped: Dict[int, ParsedFamily] = {}  # histograms and summaries served untyped, by id
    seen: Set[str] = set()  # series identities already taken from this body
    cache = rw.cache
    value_of = _VALUE.fullmatch
    pacer = _Pacer()
    carry: List[str] = []  # lines from one opening a label value, left for the next slice
    for lines in chain(_slices(body, parsed, pacer), (None,)):
        more = lines is not None  # else no slice follows: carried lines are read now
        if carry:
            lines = carry + (lines or [])
            carry = []
        elif not more:
            break
        elif rw.bulk:
            kept = _bulk_slice(lines, fams, owner, rw, parsed, seen, rec, pacer)
            if kept is not None:
                count += kept
                continue
        numbered = enumerate(lines)  # type: ignore[arg-type]
        for at, line in numbered:
            if not at % _NAP_LINES:
                pacer.nap()
            if not line or line[0] == "#":
                if line:
                    _comment(line, fams, owner, rw, parsed)
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
                    key = _plain_key(rw.prefix, hit, part)  # type: ignore[arg-type]
                else:
                    key = hit[1]  # type: ignore[index]
                if rec is not None:
                    del cache[part]  # the template keeps `part`: one copy, not two
                    cache[part] = hit  # type: ignore[assignment]
            else:
                hit, key, value, ts, head = _tokenize(line, rw)
                if head in _SLOW_ENDS:
                    pacer.nap()
                if head == -1 and _quotes(line) & 1:
                    # A label value left open: Prometheus reads on, the newline included.
                    span = _value_span(lines, at, more, pacer)  # type: ignore[arg-type]
                    if span == 0:
                        carry = lines[at:]  # type: ignore[index]
                        break
                    if rec is not None:
                        rec.whole = False  # a Template cannot tell how lines join
                    if span and not _CUT.intersection(parsed.dropped):
                        hit, key, value, ts, head = _tokenize(
                            "\n".join(lines[at:at + span]), rw)  # type: ignore[index]
                        pacer.nap()
                        if hit is not None:
                            deque(islice(numbered, span - 1), 0)  # those lines are read
                            end = -1  # no slot
                if hit is None:
                    if head == -2:
                        _comment(line.lstrip(_BLANKS), fams, owner, rw, parsed)
                    elif head == -1 and line.strip(_PADDING):
                        bad += 1
                    elif head == -3:
                        parsed.drop("escape_collision")
                    if rec is not None:
                        mark(0)
                        keep_fixed(line)
                    continue
                slot = head == end
                if slot:
                    cache[part] = hit
                # A line of quoted names is no slot (never cached): its collisions are
                # settled per body, and a body with one written out has no Template.
                utf8 = head == _QUOTED
            kept: Optional[ParsedFamily] = None
            valid = not ("e" in value or "E" in value or len(value) > 40) or _in_range(value)
            if valid and ts is not None:
                ts = _timestamp(ts)
                valid = ts is not None
                if valid:
                    value += " " + ts  # type: ignore[operator]
            if not valid:
                bad += 1
                slot = False
            else:
                if type(hit) is str:
                    name, ident, le_ok, q_ok = hit, key, True, True
                else:
                    name, _, ident, le_ok, q_ok = hit  # type: ignore[misc]
                try:
                    fam = owner[name]
                except KeyError:
                    fam = _sample_family(name, fams, owner, rw, parsed)
                if fam is None:
                    pass
                elif ident in seen:
                    dups += 1
                else:
                    if not le_ok and fam.type == "histogram" or \
                            not q_ok and fam.type == "summary":
                        untyped[id(fam)] = fam
                    seen.add(ident)
                    fam.add(key + " " + value, ident)
                    count += 1
                    kept = fam
                    if utf8:
                        quoted[id(fam)] = fam
            if rec is not None:
                if slot:
                    mark(1)
                    slot_part(part)
                    slot_hit(hit)
                    slot_outcome(kept)
                else:
                    mark(0)
                    keep_fixed(line)
                    if kept is not None:
                        rec.whole = False
    if bad:
        parsed.drop("invalid_line", bad)
    if dups:
        parsed.drop("duplicate_series", dups)
    if quoted:
        count -= _escape_families(parsed, quoted)
    if untyped:
        _untype(parsed, untyped)
    rw.used += count
    if rec is not None:
        if untyped:
            rec.whole = False  # its slots went to a family that is no more
        if "invalid_utf8" in parsed.dropped or "line_too_long" in parsed.dropped:
            rec.whole = False  # lines _slices() dropped are not in the recording
        rw.templates[index] = rec.template(parsed, count, rw.prefix)
    return parsed


# A line of NUL bytes and blanks alone is as a blank line: Prometheus' scrape parser reads a
# NUL byte starting a line as the end of the body and stores what came before (a file
# padded with zeros after a crash). The merge reads on (a line after it is not lost).
_PADDING = _BLANKS + "\x00"
# Drops by _slices() that leave out lines: lines either side of one do not join.
_CUT = frozenset(("invalid_utf8", "line_too_long"))


def _quotes(line: str) -> int:
    """The number of quotes in `line` that open or close a label value (not `\\"`)."""
    return line.replace("\\\\", "").replace('\\"', "").count('"')


def _value_span(lines: Sequence[str], at: int, more: bool, pacer: _Pacer) -> Optional[int]:
    """How many lines from lines[at], a line that leaves a label value open, Prometheus'
    scrape parser reads as one (a raw newline is part of a label value): up to the line
    that closes the value (its quotes leave none open); None if no line does within
    MAX_LINE characters, 0 if the slice ends first and `more` lines follow."""
    size = len(lines[at])
    for i in range(at + 1, len(lines)):
        if not i % _NAP_LINES:
            pacer.nap()  # up to MAX_LINE empty lines
        size += len(lines[i]) + 1
        if size > MAX_LINE:
            return None
        if _quotes(lines[i]) & 1:
            return i - at + 1
    return 0 if more else None


def _untype(parsed: Parsed, untyped: Dict[int, ParsedFamily]) -> None:
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


def _tokenize(line: str, rw: Rewriter
              ) -> Tuple[Optional[Hit], str, str, Optional[str], int]:
    """Full validation of one sample line: (hit, series key, value, timestamp, end of the
    name+labels part).

    No hit: the end is -2 for a comment after blanks, 0 for a blank line, -1 for an invalid
    line, -3 for a line whose label names collide once escaped (see _tokenize_quoted). A
    line of quoted names has the end _QUOTED.
    """
    m = _SAMPLE_FAST.fullmatch(line)
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
        m = _SAMPLE_LOOSE.fullmatch(line)
        if m is None:
            rest = line.lstrip(_BLANKS)
            if rest and rest[0] != "#" and '"' in rest:
                return _tokenize_quoted(line, rw)
            return None, "", "", None, (0 if not rest else -2 if rest[0] == "#" else -1)
        name, braces, body, value, ts = m.groups()
        head = m.end(1) if braces is None else m.end(2)
        labels = rw.splice_pairs(_loose_pairs(body)) if body else rw.prefix[:-1]
    if labels is None:
        return None, "", "", None, -1
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
    return (name, key, ident, le_ok, q_ok), key, value, ts, head


def _loose_pairs(body: str) -> List[Tuple[str, str]]:
    """(name, quoted value) pairs of _SAMPLE_LOOSE's label text, values in canonical form."""
    pairs = _PAIR_ANY.findall(body)
    if "\\" in body or "\n" in body:
        return [(n, _canonical_value(v)) for n, v in pairs]
    return pairs


def _canonical_value(quoted: str) -> str:
    """A quoted label value as the text format 0.0.4 writes what Prometheus' scrape parser
    reads from it: `\\\\`, `\\"` and `\\n` stay, a backslash before any other character
    is itself (written `\\\\`), a raw newline is written `\\n`."""
    if "\\" not in quoted and "\n" not in quoted:
        return quoted
    return _VALUE_ESCAPE.sub(_escape_one, quoted)


def _escape_one(m: "re.Match[str]") -> str:
    text = m.group()
    if text == "\n":
        return "\\n"
    return text if text[1] in '\\"n' else "\\" + text


def _tokenize_quoted(line: str, rw: Rewriter
                     ) -> Tuple[Optional[Hit], str, str, Optional[str], int]:
    """_tokenize() for a line with UTF-8 names: a quoted metric name as an item inside the
    braces (`{"a.b",c="d"} 1`, at most one, and no name before the braces), quoted label
    names (`m{"a.b"="v"} 1`), as both Prometheus 3's scrape parser and Go's text parser read
    them (blanks, a trailing comma, escapes in names). Names are escaped (escape_name) in the
    key; the hit keeps the metric name as written (escapes read), so that its family is
    found as Prometheus finds it (a summary `"a.b"` owns `"a.b_sum"`).

    A line where a name is not legacy gets as its identity, for this parse only, a tuple:
    its identity as written, and its identity once escaped (see _escape_families). Invalid
    (-1): what either parser refuses (an empty, repeated or reserved label name, no metric
    name or two). Label names that only escaping makes equal (`"a.b"` and `a_b`, or one
    escaped to `__name__`) are a collision (-3).
    """
    invalid: Tuple[Optional[Hit], str, str, Optional[str], int] = (None, "", "", None, -1)
    m = _QUOTED_HEAD.match(line)
    if m is None:
        return invalid
    name = m.group(1)
    pos = m.end()
    pairs: List[Tuple[str, str]] = []  # (label name as written, escapes read; quoted value)
    items = 0
    while True:
        m = _QUOTED_ITEM.match(line, pos)
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
            name = _unquote(quoted)
            if not name:
                return invalid
        else:
            label = legacy if legacy is not None else _unquote(quoted)
            if not label:
                return invalid
            pairs.append((label, value))
        if end == "}":
            break
    m = _VALUE.fullmatch(line, pos)
    if m is None or name is None:
        return invalid
    value, ts = m.groups()
    written = [n for n, _ in pairs]
    if len(set(written)) != len(written) or "__name__" in written:
        return invalid
    escaped = [escape_name(n, True) for n in written]
    if len(set(escaped)) != len(escaped) or "__name__" in escaped:
        return None, "", "", None, -3
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
        return (sys.intern(name), key, (as_written, ident), le_ok,  # type: ignore[return-value]
                q_ok), key, value, ts, _QUOTED
    return (sys.intern(name), key, ident, le_ok, q_ok), key, value, ts, _QUOTED


def _escape_families(parsed: Parsed, quoted: Dict[int, ParsedFamily]) -> int:
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
                    parsed.drop("escape_collision", fam.count)
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
            fam.identities()  # type: ignore[assignment]
        # A series (of a histogram or summary: its labels but `le`/`quantile`), escaped, is
        # owned by its lines of legacy names (None), else by its first spelling as written.
        special = _SPECIAL_LABELS.get(fam.type or "")
        owner: Dict[object, object] = {_series_group(i, special): None
                                       for i in ids if type(i) is str}
        flags: List[bool] = []
        escaped: List[str] = []
        for ident in ids:
            if type(ident) is tuple:
                (_, written), ident = ident  # type: ignore[misc]
                spelling = tuple(x for x in written if x[0] != special) if special else written
                if owner.setdefault(_series_group(ident, special), spelling) != spelling:
                    flags.append(False)
                    continue
            flags.append(True)
            escaped.append(ident)  # type: ignore[arg-type]
        if len(escaped) != len(ids):
            fam.keep(flags)
            parsed.drop("escape_collision", len(ids) - len(escaped))
            lost += len(ids) - len(escaped)
        fam.ids = escaped
    return lost


_SPECIAL_LABELS = {"histogram": "le", "summary": "quantile"}


def _series_group(ident: str, special: Optional[str]) -> object:
    """The identity of a series in a family whose lines of one series differ by the
    label `special` (`le`, `quantile`) and their member names, else the identity itself."""
    if special is None:
        return ident
    brace = ident.find("{")
    if brace < 0:
        return ()
    return tuple(x for x in _PAIR.findall(ident[brace + 1:-1]) if x[0] != special)


def _is_go_float(text: str) -> bool:
    """True if Go's parser reads `text` as a float64 (syntax and range)."""
    return bool(_FLOAT_ONLY.fullmatch(text)) and _in_range(text)


def _numeric(labels: str, label: str) -> bool:
    """Go's parser demands a float in `le` (histograms) and `quantile` (summaries); the
    caller looks for `label="` in `labels` first, as nearly all labels hold neither."""
    for n, v in _PAIR.findall(labels):
        if n == label and not _is_go_float(v[1:-1]):
            return False
    return True


def _in_range(value: str) -> bool:
    """Go's ParseFloat fails on overflow (1e400), so such a value would break the output."""
    return not math.isinf(float(value)) or "inf" in value.lower()


def _timestamp(ts: str) -> Optional[str]:
    """A timestamp in canonical form, or None.

    Go's ParseInt takes a sign and the whole int64 range; Prometheus' scrape parser takes
    digits only. So `+5` and `007` are written as `5` and `7`, and a negative timestamp,
    which the scrape parser would fail on, is refused.
    """
    if len(ts) < 19 and ts.isdigit() and (ts[0] != "0" or len(ts) == 1):
        return ts
    significant = ts.lstrip("+-").lstrip("0")
    if len(significant) > 19:  # out of range; and int() refuses over 4,300 digits
        return None
    n = int(significant or "0")
    return str(n) if n <= _INT64_MAX and not (n and ts[0] == "-") else None


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


def _sample_family(name: str, fams: Dict[str, ParsedFamily],
                   owner: Dict[str, Optional[ParsedFamily]], rw: Rewriter, parsed: Parsed
                   ) -> Optional[ParsedFamily]:
    """The family of a sample name; a sample without a TYPE line makes an untyped one."""
    fam = _resolve(name, fams)
    if fam is None:
        fam = fams[name] = ParsedFamily(name, None, False, rw.wanted(name))
    if fam.type is None:
        _set_type(fam, "untyped", False, parsed)
    owner[name] = fam if fam.wanted else None
    return owner[name]


def _type_keyword(text: str) -> Optional[str]:
    """Go: MetricType_value[strings.ToUpper(text)]; the whole rest of the line counts."""
    upper = text.replace("\u0131", "I").replace("\u017f", "S")
    return _TYPE_KEYWORDS.get(upper.upper()) if upper.isascii() else None


def _comment(line: str, fams: Dict[str, ParsedFamily],
             owner: Dict[str, Optional[ParsedFamily]], rw: Rewriter, parsed: Parsed) -> None:
    """A line starting with '#': HELP and TYPE lines as Prometheus' scrape parser reads them
    (`#TYPE` without a blank is a comment); any other comment carries nothing. The first
    HELP and the first TYPE of a family stay (a sample without a TYPE line before it makes
    the family untyped); later ones change nothing, as they change nothing Prometheus
    stores. A TYPE line of an unknown type is dropped (`invalid_type`): Prometheus fails
    the whole scrape on it."""
    m = _COMMENT_FAST.fullmatch(line)
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
    mtype = _type_keyword(rest) if rest else None
    if rest and mtype is None:
        parsed.drop("invalid_type")
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
    if line[1:2] not in _BLANKS or len(line) < 2:
        return None  # `#TYPE`, `#HELP`: a comment to Prometheus' scrape parser
    rest = line[1:].lstrip(_BLANKS)
    blank = rest.find(" ")
    tab = rest.find("\t")
    cut = tab if blank < 0 or 0 <= tab < blank else blank
    if cut < 0 or rest[:cut] not in ("HELP", "TYPE"):
        return None
    kind = rest[:cut]
    rest = rest[cut:].lstrip(_BLANKS)
    m = _NAME_AT.match(rest) or _QUOTED_AT.match(rest)
    if m is None:
        if rest:
            parsed.drop("invalid_line")  # not a metric name
        return None
    name = m.group()
    rest = rest[m.end():]
    if name[0] == '"':  # a UTF-8 name (Prometheus 3), escaped when served
        name = _unquote(name)
        if not name:
            parsed.drop("invalid_line")
            return None
    if not rest:
        return None
    # Prometheus reads the rest of the line after the name as the text, less its first
    # character: `# HELP a{ x` is HELP text ` x` for `a`, `# TYPE a{gauge` a TYPE line (Go's
    # text parser would refuse both). After a blank, blanks are left out as Go does.
    return kind, name, rest.lstrip(_BLANKS) if rest[0] in _BLANKS else rest[1:]


def render(families: Iterable[ParsedFamily]) -> str:
    """One text, built family by family so no single join holds the GIL for long.

    Consumes the families' blocks (freed as they are joined, to keep the peak low).
    """
    out: List[str] = []
    pacer = _Pacer()
    for fam in families:
        if not fam.count:
            continue
        out.append(header_lines(fam.name, fam.type, fam.help))
        out.append("\n".join(fam.blocks))
        out.append("\n")
        fam.blocks, fam.ids, fam.count = [], [], 0
        pacer.nap()
    return "".join(out)
