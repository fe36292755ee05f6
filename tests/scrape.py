"""Parse a scraped text exposition into exact sample names, labels and values.

prometheus_client's parser renames counter samples (adds `_total`), which hides exactly
the inherited names the compatibility tests look for; this reads the text as written.
"""
from __future__ import annotations

import re
from typing import Dict, Tuple

Labels = Tuple[Tuple[str, str], ...]
Series = Dict[Tuple[str, Labels], float]

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r'\\(.)')


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse(body: str) -> Series:
    out: Series = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            label_text, _, value = rest.rpartition("} ")
            labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(label_text)))
        else:
            name, _, value = line.partition(" ")
            labels = ()
        out[(name, labels)] = float(value.split(" ")[0])
    return out


def value(series: Series, family: str, /, **labels: str):
    return series.get((family, tuple(sorted(labels.items()))))


def label_keys(series: Series) -> Dict[str, set]:
    out: Dict[str, set] = {}
    for name, labels in series:
        out.setdefault(name, set()).update(k for k, _ in labels)
    return out
