"""A seeded corpus of exposition documents for the differential test against promtool.

Hand-written lines cover each rule of Prometheus' text parser (names, label syntax and
escapes, floats and their look-alikes, timestamps, HELP/TYPE forms, histogram and summary
members); mutated copies (a character inserted, deleted or replaced from an alphabet of
troublemakers, tokens swapped, blanks added) find the cases nobody wrote down. Documents mix
lines over a small set of names so families, members and duplicates interact.

Left out on purpose (tested apart, in test_expfmt_differential.py): the three inputs where
the merge is stricter than promtool because Prometheus' scrape parser fails on them.
"""
from __future__ import annotations

import random
import re
from typing import List

NAMES = ["a", "a_count", "a_sum", "a_bucket", "h", "h_bucket", "h_sum", "h_count", "s",
         "s_count", "s_sum", "o", "o1", "x:y", "_z"]

SAMPLES = [
    "a 1", "a{} 1", "a{b=\"c\"} 2", "a{b=\"c\",d=\"e\"} 3", "a{d=\"e\",b=\"c\"} 3",
    "a{b=\"\"} 4", "a{b=\"c\",} 5", " a { b = \"c\" , } 6", "a\t7", "a{b=\"c\"}8", "a-1",
    "a+1", "a.5", "a 1 1700000000000", "a 1 +5", "a 1 007", "a 1 9223372036854775807",
    "a 1 9223372036854775808", "a 1  1700000000000", "a +5", "a -0", "a .5", "a 5.",
    "a 1e3", "a 1E-3", "a 1e999", "a -1e999", "a 1e-999", "a 0e99999", "a Inf", "a +Inf",
    "a -inf", "a infinity", "a -Infinity", "a NaN", "a nan", "a +NaN", "a -nan", "a 1_000",
    "a 0x10", "a 0x1p3", "a 1p3", "a ١", "a ٣.٥", "a 1 ١٢", "a ınf", "a İnf", "a ∞",
    "a 1 ", "a 1\t", "a 1 5 ", "a 1\r", "a{b=\"c\"} 1\r", "a\r1", "o1", "o 1", "o1 1",
    "a{b=\"\\\"q\\\"\"} 1", "a{b=\"\\\\\"} 1", "a{b=\"\\n\"} 1", "a{b=\"\\t\"} 1",
    "a{b=\"zürich ✓\"} 1", "a{b=\"\r\"} 1", "a{b=\"x\ty\"} 1", "a{,} 1", "a{b} 1",
    "a{b=c} 1", "a{b=\"c\" d=\"e\"} 1", "a{b=\"c\",b=\"d\"} 1", "a{__name__=\"x\"} 1",
    "a{__b=\"c\"} 1", "a{1b=\"c\"} 1", "a{b:c=\"d\"} 1", "a{b=\"c\"} ", "a{b=\"c\"}",
    "a", "1a 1", ":a 1", "x:y 1", "_z 1", "a 1 2 3", "a NaNs", "a 1.2.3", "a --1",
    "a +-1", "a 1e", "a 1e+", "a .", "a e5", "a 1 12.5", "a 1 -", "a 1 +", "a 1 1e3",
    "h_bucket{le=\"1\"} 1", "h_bucket{le=\"+Inf\"} 2", "h_bucket{le=\"1e999\"} 1",
    "h_bucket{le=\"١\"} 1", "h_bucket{le=\"x\"} 1", "h_bucket{le=\"\"} 1", "h_bucket 1",
    "h_bucket{le=\" 1\"} 1", "h_bucket{le=\"ınf\"} 1", "h_bucket{le=\"0x1\"} 1",
    "h_sum 3", "h_count 2", "h{le=\"2\"} 1", "h_sum{le=\"x\"} 1", "h_count{k=\"v\"} 1",
    "s{quantile=\"0.5\"} 1", "s{quantile=\"half\"} 1", "s{quantile=\"1e999\"} 1",
    "s{quantile=\"٠.٥\"} 1", "s_sum 1", "s_count 1", "s 1", "s_count{quantile=\"x\"} 1",
    "a_count 1", "a_sum 1", "a_bucket{le=\"x\"} 1", "",
    "\t", "  ", "{} 1", "a{b=\"c\"}} 1", "a{{b=\"c\"} 1",
]

COMMENTS = [
    "# HELP a Help.", "# HELP a Other help.", "# HELP a", "# HELP a ", "# HELP a \\\\ ok",
    "# HELP a new\\nline", "# HELP a bad \\t escape", "# HELP a trailing \\", "#HELP a x",
    "# HELP 1a x", "# HELP a{ x", "# HELP a\tx", "# HELP a x\r",
    "# TYPE a gauge", "# TYPE a counter", "# TYPE a GAUGE", "# TYPE a Counter",
    "# TYPE a untyped", "#TYPE a gauge", "#\tTYPE a gauge", "  # TYPE a gauge",
    "# TYPE a gauge ", "# TYPE a gauge\r", "# TYPE a", "# TYPE a ", "# TYPE a bogus",
    "# TYPE a ǥauge", "# TYPE a  gauge", "# TYPE 1a gauge", "# TYPE a{ gauge",
    "# TYPE h histogram", "# TYPE h HISTOGRAM", "# TYPE h hıstogram", "# TYPE s summary",
    "# TYPE s ſummary", "# TYPE a_count gauge", "# TYPE h_count gauge", "# TYPE s_sum gauge",
    "# TYPE x:y counter", "# type a gauge", "# TYPEa gauge", "# TYPE", "#", "# ", "#x",
    "# EOF", "# some comment", "## TYPE a gauge", "# TYPE a summary", "# TYPE a histogram",
    "# HELP h_count Count.", "# HELP s_sum Sum.", "# TYPE o1 gauge",
]

# Characters that break, or nearly break, the format.
TROUBLE = list(" \t\r{}\",=#\\+-.eE_:pP0123456789aInN") + [
    "١", "٣", "ı", "İ", "ſ", "é", "\x0b", "\x0c", "\u00a0", "\u2028", "\ufeff", "x"]

# The merge refuses these although promtool accepts them (see the module docstring).
_STRICTER = re.compile(
    r"\S[ \t]+\S+[ \t]+-[0-9]+[ \t]*$"  # a negative timestamp
    r"|(?i:gauge_histogram)"
    r"|\b(le|quantile)=.*\b\1=")       # a label repeated


def _mutate(line: str, rnd: random.Random) -> str:
    choice = rnd.randrange(6)
    pos = rnd.randrange(len(line) + 1)
    if choice == 0:
        return line[:pos] + rnd.choice(TROUBLE) + line[pos:]
    if choice == 1 and line:
        return line[:pos] + line[pos + 1:]
    if choice == 2 and line:
        return line[:pos] + rnd.choice(TROUBLE) + line[pos + 1:]
    if choice == 3:
        parts = re.split(r"([ \t]+)", line)
        rnd.shuffle(parts)
        return "".join(parts)
    if choice == 4:
        name = rnd.choice(NAMES)
        return re.sub(r"^[ \t]*[a-zA-Z_:][a-zA-Z0-9_:]*", name, line, count=1)
    return line + rnd.choice([" ", "\t", " 1", " 1700000000000", "\r", ",", "}"])


def documents(seed: int = 11, count: int = 260, size: int = 11) -> List[List[str]]:
    """`count` documents of about `size` lines (no newline characters inside a line)."""
    rnd = random.Random(seed)
    pool = SAMPLES + COMMENTS
    docs: List[List[str]] = []
    # Every hand-written line once, alone after a TYPE that gives it context.
    for line in SAMPLES:
        head = ("# TYPE h histogram" if line.startswith("h") else
                "# TYPE s summary" if line.startswith("s") else "# TYPE a gauge")
        docs.append([head, line])
    docs.extend([[line] for line in COMMENTS])
    while len(docs) < count + len(SAMPLES) + len(COMMENTS):
        doc = []
        for _ in range(rnd.randint(size // 2, size + size // 2)):
            line = rnd.choice(pool)
            for _ in range(rnd.choice((0, 0, 1, 1, 2))):
                line = _mutate(line, rnd)
            doc.append(line)
        docs.append(doc)
    return [d for d in docs if not any(_STRICTER.search(x) for x in d)]
