"""Generate docs/metrics.md from the declarations: `python -m moonraker_prometheus.docs`.

It reads the collector table (which module serves which families), so it sits above both
`collectors/` and `catalogue/`."""
from __future__ import annotations

import sys
from typing import List

from .catalogue import exporter
from .catalogue.twins import TWINS, series
from .catalogue.spec import Metric
from .collectors import COLLECTORS, GO_MODULE_ALIASES

HEAD = """# Metric reference

Generated from the declarations in `moonraker_prometheus/catalogue/` by
`python -m moonraker_prometheus.docs > docs/metrics.md`; a test fails when this file
and the declarations drift apart. Do not edit by hand.

Types: `gauge`, `counter`, `info` (a gauge of value 1 whose information is in its labels).
**compat** marks names and label keys kept from prometheus-klipper-exporter so existing
dashboards keep working. Select modules with `?modules=a,b` or the `modules` option;
the `klippy` module (connection and state) is always served.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(metrics: List[Metric]) -> List[str]:
    rows = ["| name | type | unit | labels | help | source |", "|---|---|---|---|---|---|"]
    for m in metrics:
        name = f"`{m.name}`" + (" **compat**" if m.compat else "")
        labels = ", ".join(f"`{label}`" for label in m.labels)
        rows.append(
            f"| {name} | {m.type} | {m.unit} | {labels} | {_cell(m.help)} | {_cell(m.source)} |")
    return rows


def _twins() -> List[str]:
    """The compat families that have a twin under today's naming rules (catalogue.twins)."""
    rows = ["## Two names for one thing\n",
            "These compat families have a twin that follows today's naming rules; new "
            "dashboards and rules should use the twin (the compat family's HELP says so "
            "too).\n",
            "| compat family | prefer | how they relate |", "|---|---|---|"]
    for name, twin in TWINS.items():
        rows.append(f"| `{name}` | `{_cell(series(twin))}` | {_cell(twin.relation)} |")
    rows.append("")
    return rows


def render() -> str:
    lines = [HEAD]
    lines.extend(_twins())
    for collector in COLLECTORS:
        aliases = sorted(a for a, target in GO_MODULE_ALIASES.items() if target == collector.name)
        lines.append(f"## Module `{collector.name}`\n")
        if collector.__doc__:
            lines.append(" ".join(collector.__doc__.split()) + "\n")
        if aliases:
            lines.append("Go exporter module names mapped here: "
                         + ", ".join(f"`{a}`" for a in aliases) + "\n")
        lines.extend(_table(list(collector.metrics)))
        lines.append("")
    lines.append("## Always present: the exporter itself\n")
    lines.extend(_table(list(exporter.METRICS)))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render())
