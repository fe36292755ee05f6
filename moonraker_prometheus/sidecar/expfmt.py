"""Text exposition format 0.0.4: a validating tokenizer that splices labels into sample lines.

Why not prometheus_client's parser: a parse and re-encode is about 10x slower, regroups
nothing and mangles counter names. Here each sample line is validated by one anchored regex
(the rules Go's expfmt parser and `promtool check metrics` apply), labels are spliced into the
label text without re-encoding values, and lines are grouped into families so the merger can
emit one HELP/TYPE per family. A source's series validated in one scrape are remembered, so the
next scrape only checks values. Work is linear in the input; invalid lines are dropped and
counted.
"""
from __future__ import annotations

import math
import re
import sys
import time
from typing import Dict, Iterable, Iterator, List, Optional, Pattern, Sequence, Set, Tuple, Union

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
FLOAT = r"(?:[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf|infinity))|(?i:nan))"
# Fast path, what nearly every exporter writes: canonical spacing and no escapes in label
# values, so one regex with simple character classes validates the whole line.
_SAMPLE_FAST = re.compile(
    r'(%s)(?:\{((?:%s="[^"\\\n]*",)*(?:%s="[^"\\\n]*")?)\})? (%s(?: -?\d{1,18})?)\r?'
    % (NAME, LABEL_NAME, LABEL_NAME, FLOAT))
# Everything else that is legal: escapes, blanks around label tokens. Such lines are normalised.
_SAMPLE_LOOSE = re.compile(
    r"[ \t]*(%s)[ \t]*(?:\{[ \t]*((?:%s[ \t]*=[ \t]*%s[ \t]*,[ \t]*)*(?:%s[ \t]*=[ \t]*%s)?)"
    r"[ \t]*,?[ \t]*\})?[ \t]*(%s)(?:[ \t]+(-?\d{1,18}))?[ \t\r]*"
    % (NAME, LABEL_NAME, LABEL_VALUE, LABEL_NAME, LABEL_VALUE, FLOAT))
_VALUE = re.compile(r" (%s(?: -?\d{1,18})?)\r?" % FLOAT)
_PAIR = re.compile(r"(%s)[ \t]*=[ \t]*(%s)" % (LABEL_NAME, LABEL_VALUE))
_FLOAT_ONLY = re.compile(FLOAT)
_LABEL_NAME_ONLY = re.compile(LABEL_NAME)
_COMMENT = re.compile(r"#[ \t]+(HELP|TYPE)[ \t]+(%s)(?:[ \t]+(.*?))?[ \t\r]*" % NAME)

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_MEMBER_SUFFIXES = {
    "histogram": ("", "_bucket", "_sum", "_count"),
    "summary": ("", "_sum", "_count"),
}
# Input is tokenized in slices of about this size; between slices the worker thread hands
# the GIL to the event loop thread (a slice takes well under a millisecond).
_SLICE_BYTES = 32768


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape_help(text: str) -> str:
    """Reads `\\\\` and `\\n`; any other backslash is taken literally (then re-escaped)."""
    if "\\" not in text:
        return text
    out: List[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "\\n":
            out.append("\n" if text[i + 1] == "n" else "\\")
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def label_text(labels: Sequence[Tuple[str, str]]) -> str:
    return ",".join('%s="%s"' % (k, escape_label_value(v)) for k, v in labels)


def is_label_name(name: str) -> bool:
    return bool(_LABEL_NAME_ONLY.fullmatch(name)) and not name.startswith("__")


Hit = Tuple[str, str, bool, bool]  # sample name, "series key ", le ok, quantile ok


class Family:
    """One metric family as read from one body: header plus already-rewritten sample lines."""

    __slots__ = ("name", "type", "help", "lines", "typed")

    def __init__(self, name: str, mtype: str, typed: bool) -> None:
        self.name = name
        self.type = mtype
        self.typed = typed
        self.help: Optional[str] = None
        self.lines: List[str] = []


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
        # Samples of sources that add their own exporter_name cannot collide with each other.
        self.tags = (bool(self.labels) and self.labels[0][0] == "exporter_name"
                     and not honor_labels)

    def rotate(self) -> None:
        """Ends a scrape (all bodies of a source)."""
        if len(self.cache) > 2 * self.used + 1024:
            self.cache = {}
        self.used = 0

    def wanted(self, family: str) -> bool:
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
    """Families from one body in first-seen order, plus per-reason counts of dropped lines."""

    __slots__ = ("families", "dropped", "samples")

    def __init__(self) -> None:
        self.families: Dict[str, Family] = {}
        self.dropped: Dict[str, int] = {}
        self.samples = 0

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


def _slices(body: Union[str, bytes], parsed: Parsed) -> Iterator[List[str]]:
    """Lines, a slice at a time; between slices the GIL goes to the event loop thread.

    Decoding and splitting per slice also keeps big C calls (which hold the GIL) short.
    """
    size = len(body)
    start = 0
    while start < size:
        end = body.find(b"\n" if isinstance(body, bytes) else "\n",  # type: ignore[arg-type]
                        start + _SLICE_BYTES)
        end = size if end < 0 else end
        piece = body[start:end]
        text = decode(piece, parsed) if isinstance(piece, bytes) else piece
        yield text.split("\n")
        start = end + 1
        # A real nap (not sched_yield, which hands nothing over): the thread waiting for the
        # GIL, typically the event loop, gets it now instead of after the 5 ms switch interval.
        time.sleep(0)


def parse(body: Union[str, bytes], rw: Rewriter, parsed: Optional[Parsed] = None) -> Parsed:
    """Tokenizes one exposition body into `parsed` (a new Parsed unless given).

    A line whose name-and-labels part was validated in this or the previous scrape of the
    same source (rw.cache) only needs its value checked: series are stable between scrapes.
    """
    if parsed is None:
        parsed = Parsed()
    fams = parsed.families
    owner: Dict[str, Optional[Family]] = {}  # sample name -> family (None: filtered out)
    pending_help: Dict[str, str] = {}
    count = bad = dups = 0
    seen: Set[str] = set()  # series already taken from this body
    cache = rw.cache
    value_of = _VALUE.fullmatch
    for lines in _slices(body, parsed):
        for line in lines:
            if not line or line[0] == "#":
                if line:
                    _comment(line, fams, owner, pending_help, rw, parsed)
                continue
            end = line.rfind("}") + 1  # values and timestamps never hold a '}'
            if not end:
                end = line.find(" ")
            prefix = line[:end]
            hit = cache.get(prefix)
            m = value_of(line, end) if hit is not None else None
            if m is not None:
                value = m.group(1)
            else:
                hit, value, cacheable = _tokenize(line, rw)
                if hit is None:
                    if line.strip():
                        bad += 1
                    continue
                if cacheable == end > 0:
                    cache[prefix] = hit
            name, key_sp, le_ok, q_ok = hit
            if ("e" in value or "E" in value or len(value) > 40) and not _in_range(value):
                bad += 1
                continue
            try:
                fam = owner[name]
            except KeyError:
                fam = _implicit(name, fams, owner, pending_help, rw)
            if fam is None:
                continue
            if not le_ok and fam.type == "histogram" or not q_ok and fam.type == "summary":
                bad += 1
                continue
            if key_sp in seen:
                dups += 1
                continue
            seen.add(key_sp)
            fam.lines.append(key_sp + value)
            count += 1
    if bad:
        parsed.drop("invalid_line", bad)
    if dups:
        parsed.drop("duplicate_series", dups)
    parsed.samples += count
    rw.used += count
    return parsed


def _tokenize(line: str, rw: Rewriter) -> Tuple[Optional[Hit], str, int]:
    """Full validation of one sample line: (hit or None, value, end of the name+labels part)."""
    m = _SAMPLE_FAST.fullmatch(line)
    if m is not None:
        name, body, value = m.groups()
        if not body:
            labels: Optional[str] = rw.prefix[:-1]
        elif (body.count('"') == 2 and body[-1] == '"'
              and body[:body.find("=")] not in rw.our_names):
            labels = rw.prefix + body  # one label, no clash: nothing more to check
        else:
            labels = rw.splice_plain(body)
    else:
        m = _SAMPLE_LOOSE.fullmatch(line)
        if m is None:
            return None, "", -1
        name, body, value, ts = m.groups()
        if ts:
            value += " " + ts
        labels = rw.splice_pairs(_PAIR.findall(body)) if body else rw.prefix[:-1]
    if labels is None:
        return None, "", -1
    key = name + "{" + labels + "} " if labels else name + " "
    name = sys.intern(name)  # one copy per metric name, not one per cached series
    hit = (name, key, _numeric(labels, "le"), _numeric(labels, "quantile"))
    return hit, value, m.start(3) - 1 if line[m.start(3) - 1] == " " else -1


def _numeric(labels: str, label: str) -> bool:
    """Go's parser demands a float in `le` (histograms) and `quantile` (summaries)."""
    if label + '="' not in labels:
        return True
    for n, v in _PAIR.findall(labels):
        if n == label and not _FLOAT_ONLY.fullmatch(v[1:-1]):
            return False
    return True


def _in_range(value: str) -> bool:
    """Go's ParseFloat fails on overflow (1e400), so such a value would break the output."""
    number = value.split(" ", 1)[0]
    return not math.isinf(float(number)) or "inf" in number.lower()


def _implicit(name: str, fams: Dict[str, Family], owner: Dict[str, Optional[Family]],
              pending_help: Dict[str, str], rw: Rewriter) -> Optional[Family]:
    """A sample without a TYPE line forms an untyped family of its own name."""
    fam = fams.get(name)
    if fam is None:
        if not rw.wanted(name):
            owner[name] = None
            return None
        fam = Family(name, "untyped", False)
        fam.help = pending_help.pop(name, None)
        fams[name] = fam
    owner[name] = fam
    return fam


def _comment(line: str, fams: Dict[str, Family], owner: Dict[str, Optional[Family]],
             pending_help: Dict[str, str], rw: Rewriter, parsed: Parsed) -> None:
    m = _COMMENT.fullmatch(line)
    if m is None:
        return  # plain comments carry nothing
    kind, name, rest = m.groups()
    rest = rest or ""
    if kind == "HELP":
        fam = fams.get(name)
        if fam is not None:
            if fam.help is None:
                fam.help = unescape_help(rest)
        else:
            pending_help[name] = unescape_help(rest)
        return
    if rest not in TYPES:
        parsed.drop("invalid_type")
        return
    fam = fams.get(name)
    if fam is not None:
        if fam.type != rest:
            parsed.drop("type_conflict")
        return
    if not rw.wanted(name):
        for suffix in _MEMBER_SUFFIXES.get(rest, ("",)):
            owner.setdefault(name + suffix, None)
        return
    fam = Family(name, rest, True)
    fam.help = pending_help.pop(name, None)
    fams[name] = fam
    for suffix in _MEMBER_SUFFIXES.get(rest, ("",)):
        # An exact-name family declared earlier keeps its samples (as Go's parser does).
        if owner.get(name + suffix) is None or suffix == "":
            owner[name + suffix] = fam


def render(families: Iterable[Family]) -> str:
    """One text, built family by family so no single join holds the GIL for long.

    Consumes the families' lines (freed as they are joined, to keep the peak low).
    """
    out: List[str] = []
    pending = 0
    for fam in families:
        if not fam.lines:
            continue
        if fam.help is not None:
            out.append("# HELP %s %s\n" % (fam.name, escape_help(fam.help)))
        out.append("# TYPE %s %s\n" % (fam.name, fam.type))
        out.append("\n".join(fam.lines))
        out.append("\n")
        pending += len(fam.lines)
        fam.lines = []
        if pending > 2000:
            time.sleep(0)  # see _slices
            pending = 0
    return "".join(out)
