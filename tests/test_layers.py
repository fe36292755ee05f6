"""The package's layers import downwards only (docs/architecture.md, "Import rules").

From the bottom: exposition.py (the text format) < catalogue/ (declarations) and sidecar/ <
collectors/ < options.py < component.py and docs.py < __init__.py (Moonraker's entry point).
A module may import its own folder's modules and any lower layer, never a higher one or its
peer layer: so the sidecar, a peer of the catalogue, builds on the text format alone and
runs standalone without the component.
"""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from typing import Iterator, Tuple

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "moonraker_prometheus")
LAYERS = {
    "exposition": 0, "tasks": 0, "catalogue": 1, "sidecar": 1, "collectors": 2, "options": 3,
    "component": 4, "docs": 4, "discovery": 4, "__init__": 5,
    "remote": 6,
}

pytestmark = pytest.mark.unit


def layer_of(parts: Tuple[str, ...]) -> str:
    """The layer of a module given as its path inside the package, e.g. ('collectors', 'x')."""
    return parts[0] if parts else "__init__"


def modules() -> Iterator[Tuple[str, Tuple[str, ...]]]:
    for folder, _, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                rel = os.path.relpath(path, PACKAGE)[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                yield path, tuple(rel)


def imported(path: str, parts: Tuple[str, ...]) -> Iterator[Tuple[str, ...]]:
    """Package modules `path` imports, as paths inside the package (relative imports)."""
    is_package = path.endswith("__init__.py")
    here = parts if is_package else parts[:-1]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[:len(here) - (node.level - 1)] if node.level > 1 else here
            target = base + tuple(node.module.split(".")) if node.module else base
            if node.module:
                yield target
            else:  # `from . import x`: the module x, or a name of the package's __init__
                for alias in node.names:
                    sub = target + (alias.name,)
                    path = os.path.join(PACKAGE, *sub)
                    yield sub if os.path.isdir(path) or os.path.isfile(path + ".py") else target
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "moonraker_prometheus"):
            yield tuple(node.module.split(".")[1:])


@pytest.mark.parametrize("path,parts", [
    pytest.param(path, parts, id="/".join(parts) or "__init__") for path, parts in sorted(modules())])
def test_imports_go_downwards_only(path, parts):
    mine = layer_of(parts)
    for target in imported(path, parts):
        theirs = layer_of(target)
        if theirs == mine:
            continue  # inside one folder (or the module itself)
        assert LAYERS[theirs] < LAYERS[mine], (
            f"{'/'.join(parts) or '__init__'} imports {'/'.join(target) or '__init__'}: "
            f"{mine} (layer {LAYERS[mine]}) may not import {theirs} (layer {LAYERS[theirs]})")


def test_the_standalone_sidecar_loads_only_the_text_format_the_task_ending_and_its_own_modules():
    code = ("import sys, moonraker_prometheus.sidecar.__main__, "
            "moonraker_prometheus.sidecar.server; print('\\n'.join(m for m in sys.modules "
            "if m.startswith('moonraker_prometheus')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(PACKAGE),
                         capture_output=True, text=True, check=True).stdout.split()
    allowed = ("moonraker_prometheus", "moonraker_prometheus.exposition",
               "moonraker_prometheus.tasks")
    foreign = [m for m in out
               if m not in allowed and not m.startswith("moonraker_prometheus.sidecar")]
    assert not foreign, "the standalone sidecar imports %s" % ", ".join(sorted(foreign))
