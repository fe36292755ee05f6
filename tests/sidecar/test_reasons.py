"""The sidecar's contracts: every `reason` label value is a named constant of sidecar/reasons.py
that docs/sidecar.md lists, and a source kind is a `Source` with its own `fetch()`."""
from __future__ import annotations

import ast
import asyncio
import os
import re
from typing import Iterator, Set, Tuple

import pytest

from moonraker_prometheus.sidecar import Merger, reasons
from moonraker_prometheus.sidecar.sources import Fetched, Source
from tests.sidecar.support import ROOT, make_spec

SIDECAR = os.path.join(ROOT, "moonraker_prometheus", "sidecar")
DOCS = os.path.join(ROOT, "docs", "sidecar.md")
CONSTANTS = {k: v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)}


def documented(family: str) -> Set[str]:
    """The `reason` values docs/sidecar.md's "Health metrics" table gives for `family`: the
    back-quoted words of its meaning column."""
    with open(DOCS, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            if len(cells) == 5 and cells[1] == "`%s`" % family:
                return set(re.findall(r"`([a-z0-9_]+)`", cells[3]))
    raise AssertionError("docs/sidecar.md has no table row for " + family)


def test_every_reason_constant_is_in_a_group_the_docs_check():
    grouped = set(reasons.FETCH_REASONS) | set(reasons.MERGE_REASONS)
    assert set(CONSTANTS.values()) == grouped
    assert set(reasons.FILE_REASONS) <= set(reasons.FETCH_REASONS)


@pytest.mark.parametrize("family,group", [
    ("klipper_exporter_source_errors_total", reasons.FETCH_REASONS),
    ("klipper_exporter_source_file_error", reasons.FILE_REASONS),
    ("klipper_exporter_merge_dropped_total", reasons.MERGE_REASONS),
])
def test_docs_list_exactly_the_reasons_of_each_health_family(family, group):
    assert documented(family) == set(group)


def reason_sites(tree: ast.AST) -> Iterator[Tuple[int, ast.expr]]:
    """Where a module gives a reason: FetchError(reason, ...), parsed.drop(reason, ...),
    state._drop(source, reason, n), health.error(name, reason), and a file's failure
    (reason, detail) given to _Unreadable or returned (a returned pair counts only when its
    first item is a reason: `reasons.X` or the value of one)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            on_health = isinstance(func, ast.Attribute) and "health" in ast.dump(func.value)
            if name in ("FetchError", "drop"):
                yield node.lineno, node.args[0]
            elif (name == "_drop" or name == "error" and on_health) and len(node.args) > 1:
                yield node.lineno, node.args[1]
            elif name == "_Unreadable" and isinstance(node.args[0], ast.Tuple):
                yield node.lineno, node.args[0].elts[0]
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) \
                and len(node.value.elts) == 2:
            first = node.value.elts[0]
            if getattr(first, "value", None) in CONSTANTS.values() \
                    or getattr(getattr(first, "value", None), "id", "") == "reasons":
                yield node.lineno, first


def sidecar_modules() -> Iterator[Tuple[str, ast.AST]]:
    for folder, _, files in os.walk(SIDECAR):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    yield os.path.relpath(path, SIDECAR), ast.parse(f.read())


def test_every_reason_the_sidecar_reports_is_a_named_constant():
    problems = []
    sites = 0
    for path, tree in sidecar_modules():
        for line, arg in reason_sites(tree):
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                sites += 1
                problems.append("%s:%d: %r written as a literal" % (path, line, arg.value))
            elif isinstance(arg, ast.Attribute) and getattr(arg.value, "id", "") == "reasons":
                sites += 1
        imports = any(isinstance(node, ast.ImportFrom) and node.level
                      and any(a.name == "reasons" for a in node.names) for node in ast.walk(tree))
        for node in ast.walk(tree) if imports else ():  # reasons.X names a constant
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", "") == "reasons" \
                    and node.attr not in CONSTANTS and not node.attr.endswith("_REASONS"):
                problems.append("%s:%d: reasons.%s is not declared" % (path, node.lineno,
                                                                       node.attr))
    assert not problems
    assert sites > 30  # the scan finds the call sites (today 40 or so)


class OnlyFetches(Source):
    """A kind that works only when fetched: start() and close() are the base's."""

    async def fetch(self, params=None, timeout=None) -> Fetched:
        return Fetched([b"made_up 1\n"])


class Periodic(OnlyFetches):
    started = 0

    def start(self) -> None:
        Periodic.started += 1


def test_a_source_kind_without_fetch_cannot_be_built():
    class NoFetch(Source):
        pass

    with pytest.raises(TypeError, match="abstract.*fetch"):
        NoFetch(make_spec("x", "file", path="/nonexistent/*.prom"))


def test_merger_start_starts_each_source_that_has_background_work():
    spec = make_spec("x", "file", path="/nonexistent/*.prom")
    quiet = make_spec("y", "file", path="/nonexistent/*.prom")
    merger = Merger([Periodic(spec), OnlyFetches(quiet)])

    async def run() -> str:
        merger.start()
        try:
            return await merger.collect(timeout=2)
        finally:
            await merger.close()

    out = asyncio.run(run())
    assert Periodic.started == 1
    assert 'made_up{exporter_name="y"} 1' in out
