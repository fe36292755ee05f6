"""The text format 0.0.4 as Prometheus' Go parsers read it: patterns and value checks.

Every pattern here matches in one way only, so that it runs in time linear in its input
(docs/architecture.md, "Linear-time parsing"; tests/test_regex_linearity.py lists each
pattern and how it is called). The other modules of this package build on these.
"""
from __future__ import annotations

import math
import re
from typing import Optional, Sequence

from ...exposition import LABEL_NAME, TYPES
from ...exposition import METRIC_NAME as NAME

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
SAMPLE_FAST = re.compile(
    r'(%s)(?:\{((?:%s="[^"\\\n]*",)*(?:%s="[^"\\\n]*")?)\})? (%s)(?: ([0-9]{1,18}))?'
    % (NAME, LABEL_NAME, LABEL_NAME, FLOAT))
# A label value as Prometheus' scrape parser reads it: a backslash escapes any character
# but a newline, and a raw newline is part of the value (so a value can span lines: see
# lines.read_lines()). Its `\\`, `\"` and `\n` are escapes, any other backslash is itself
# (served escaped, see lines.canonical_value).
_ANY_VALUE = r'"[^"\\]*(?![^"\\])(?:\\[^\n][^"\\]*(?![^"\\]))*"'
# Everything else Prometheus' scrape parser accepts: blanks before the name, around label
# tokens, after the closing brace and at the end, a comma between pairs or not (and one
# after the last), any escape in a label value, no blank between name and value (`a-1`,
# `a{}1`).
_PAIR_LOOSE = r"%s[ \t]*=[ \t]*%s" % (LABEL_NAME, _ANY_VALUE)
SAMPLE_LOOSE = re.compile(
    r"[ \t]*(%s)%s(?:[ \t]*(\{[ \t]*((?:%s[ \t]*(?:,[ \t]*)?)*)\}))?[ \t]*"
    r"(%s)(?:[ \t]+(?![ \t])(?:(%s)[ \t]*(?![ \t]))?)?"
    % (NAME, _NAME_END, _PAIR_LOOSE, FLOAT, TIMESTAMP))
# findall() over SAMPLE_LOOSE's label text (see PAIR).
PAIR_ANY = re.compile(r"(?<![a-zA-Z0-9_])(%s)[ \t]*=[ \t]*(%s)" % (LABEL_NAME, _ANY_VALUE))
# What lines.canonical_value() rewrites: an escape, or a raw newline.
VALUE_ESCAPE = re.compile(r"\\.|\n", re.S)
# The rest of a line whose name-and-labels part is already known (see lines.read_lines()).
# Each run of blanks is read whole (the look-aheads), as DIGITS: two runs that could share
# the same blanks would make a failing match quadratic.
VALUE = re.compile(r"[ \t]*(?![ \t])(%s)(?:[ \t]+(?![ \t])(?:(%s)[ \t]*(?![ \t]))?)?"
                   % (FLOAT, TIMESTAMP))
# findall() over label text: the look-behind makes a search fail at once inside a name
# instead of reading the rest of the name again from every position in it.
PAIR = re.compile(r"(?<![a-zA-Z0-9_])(%s)[ \t]*=[ \t]*(%s)" % (LABEL_NAME, LABEL_VALUE))
_FLOAT_ONLY = re.compile(FLOAT)
NAME_AT = re.compile(NAME)
# The HELP/TYPE lines nearly every exporter writes; other spellings go to
# lines.comment_parts().
COMMENT_FAST = re.compile(r"# (HELP|TYPE) (%s) ([^ \t].*)" % NAME)
BLANKS = " \t"
_INT64_MAX = (1 << 63) - 1
# UTF-8 names (Prometheus 3, node_exporter's textfile collector): a metric or label name
# quoted as a label value is (its escapes read) any non-empty text. A sample line then puts
# a quoted metric name inside the braces as an item of its own (`{"a.b",c="d"} 1`), or a
# legacy name before them (`m{"a.b"="v"} 1`). Such a line is read an item at a time: the
# head, then one QUOTED_ITEM per item (a quoted name, or a name, legacy or quoted, `=` and
# a value), each ending at its `,` or `}`, then the value as VALUE reads it.
QUOTED_HEAD = re.compile(r"[ \t]*(?:(%s)%s[ \t]*)?\{" % (NAME, _NAME_END))
QUOTED_ITEM = re.compile(
    r"[ \t]*(?:(?:(%s)|(%s)(?![a-zA-Z0-9_]))[ \t]*(?:=[ \t]*(%s)[ \t]*)?([,}])|(\}))"
    % (LABEL_VALUE, LABEL_NAME, LABEL_VALUE))
QUOTED_AT = re.compile(LABEL_VALUE)  # a quoted name in a HELP or TYPE line (match())
# What Prometheus' `underscores` escaping (Go: model.EscapeName, UnderscoreEscaping) turns
# into `_`: every character that is not legal there in a legacy name. In a label name `:`
# is not legal in the text format 0.0.4 either (Go keeps it: its output would not parse).
_NOT_LEGACY = {False: re.compile(r"[^a-zA-Z0-9_:]"), True: re.compile(r"[^a-zA-Z0-9_]")}

# Go upper-cases the TYPE keyword rune by rune (strings.ToUpper), so `GAUGE` is a gauge, and
# so is `gauge` spelled with a dotless i or a long s where they fit (`hıstogram`).
_TYPE_KEYWORDS = {t.upper(): t for t in TYPES}


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


def unquote(text: str) -> str:
    """The name a quoted name (`"..."`, validated by LABEL_VALUE) stands for: its escapes
    `\\\\`, `\\"` and `\\n` read."""
    text = text[1:-1]
    if "\\" not in text:
        return text
    return "\\".join(x.replace('\\"', '"').replace("\\n", "\n") for x in text.split("\\\\"))


def is_go_float(text: str) -> bool:
    """True if Go's parser reads `text` as a float64 (syntax and range)."""
    return bool(_FLOAT_ONLY.fullmatch(text)) and in_range(text)


def in_range(value: str) -> bool:
    """Go's ParseFloat fails on overflow (1e400), so such a value would break the output."""
    return not math.isinf(float(value)) or "inf" in value.lower()


def canonical_timestamp(ts: str) -> Optional[str]:
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


def type_keyword(text: str) -> Optional[str]:
    """Go: MetricType_value[strings.ToUpper(text)]; the whole rest of the line counts."""
    upper = text.replace("\u0131", "I").replace("\u017f", "S")
    return _TYPE_KEYWORDS.get(upper.upper()) if upper.isascii() else None


# What a body's sample line must end with, after a known name-and-labels part, for the
# line to be written as that part's series key followed by the rest as it is: a blank, a
# value and maybe a blank and a timestamp in canonical form (see canonical_timestamp).
REST = " %s(?: (?:0|[1-9][0-9]{0,17}))?" % FLOAT
_EXPONENT = re.compile(r" ([^ \n]*[eE][^ \n]*)")  # a value token that may overflow
_LONG_TOKEN = re.compile(r"[^ \n]{41}")  # a value whose range parse() checks


def values_in_range(rests: Sequence[str], text: str) -> bool:
    """True if no value of these rests (`text`: them joined by newlines) overflows a
    float64; False too, to be on the safe side, for a value too long to judge here."""
    if max(map(len, rests)) > 41 and _LONG_TOKEN.search(text) is not None:
        return False
    if "e" in text or "E" in text:
        return all(in_range(v) for v in _EXPONENT.findall(text))
    return True

