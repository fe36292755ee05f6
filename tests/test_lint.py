"""The package passes ruff and mypy as pyproject.toml configures them, and every
`# type: ignore` says why on its own line (issue 19 item 6).

The tools are pinned in requirements-dev.txt, which bootstrap installs into .venv/moonraker
(Python 3.10+: mypy 2 does not run on 3.9, so the Python 3.9 venvs skip this module). A
failure prints the tools' own report: fix the code, or where a checker is wrong about it,
silence the one error code on that line and give the reason after it:
`x = f()  # type: ignore[attr-defined]  # Moonraker sets it at run time`.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tokenize
from typing import List, Sequence, Tuple

import pytest

from simulator import REPO_ROOT

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(sys.version_info < (3, 10),
                       reason="ruff and mypy are installed on Python 3.10+ only "
                              "(requirements-dev.txt)"),
]

PACKAGE = os.path.join(REPO_ROOT, "moonraker_prometheus")
CONFIG = os.path.join(REPO_ROOT, "pyproject.toml")
# a type-ignore comment, and what follows it on the line: "[codes]  # reason"
_IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<codes>\[[^\]]*\])?(?P<rest>.*)")
_REASON = re.compile(r"\s*#\s*\S")


def package_files() -> List[str]:
    """Every .py file of the package, sorted (what both tools must have checked)."""
    found = []
    for folder, _, names in os.walk(PACKAGE):
        found.extend(os.path.join(folder, n) for n in names if n.endswith(".py"))
    return sorted(found)


def run(args: Sequence[str]) -> Tuple[int, str]:
    """Runs `python -m ARGS...` from the repository: exit code, stdout and stderr together."""
    result = subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=300)
    return result.returncode, result.stdout + result.stderr


def ruff(paths: Sequence[str] = ()) -> Tuple[int, str]:
    """ruff check with pyproject.toml's settings, over PATHS (default: the package)."""
    return run(["ruff", "check", "--no-cache", "--config", CONFIG,
                "--output-format", "concise", *(paths or [PACKAGE])])


def mypy(paths: Sequence[str] = ()) -> Tuple[int, str]:
    """mypy with pyproject.toml's settings, over PATHS (default: its `files`, the package).
    Its cache is the repository's .mypy_cache, as by hand: a run on unchanged files takes
    a fraction of a second instead of seconds (mypy replaces its cache files atomically)."""
    return run(["mypy", "--config-file", CONFIG, *paths])


def ignores_without_reason(paths: Sequence[str]) -> List[str]:
    """`path:line: comment` for every `# type: ignore` with no `# reason` after it."""
    bad = []
    for path in paths:
        with open(path, "rb") as f:
            for token in tokenize.tokenize(f.readline):
                if token.type != tokenize.COMMENT:
                    continue
                match = _IGNORE.search(token.string)
                if match and not _REASON.match(match.group("rest")):
                    bad.append("%s:%d: %s" % (os.path.relpath(path, REPO_ROOT),
                                              token.start[0], token.string))
    return bad


def test_ruff_finds_nothing_in_the_package():
    rc, out = ruff()
    assert rc == 0, "ruff check reports:\n" + out
    rc, listed = run(["ruff", "check", "--no-cache", "--config", CONFIG, "--show-files",
                      PACKAGE])
    checked = sorted(os.path.abspath(line) for line in listed.splitlines() if line.strip())
    assert checked == package_files(), "ruff did not check every file of the package"


def test_mypy_finds_nothing_in_the_package():
    rc, out = mypy()
    assert rc == 0, "mypy reports:\n" + out
    assert "no issues found in %d source files" % len(package_files()) in out, out


def test_every_type_ignore_in_the_package_gives_its_reason():
    bad = ignores_without_reason(package_files())
    assert not bad, ("a `# type: ignore[code]` needs `  # why` after it on the same line:\n"
                     + "\n".join(bad))


def test_the_checks_report_a_planted_fault(tmp_path):
    """The three checks above are not vacuous: each reports a module with one fault of its
    kind (a line over 100 columns, an unused import, a str where an int is declared, an
    ignore with no reason), under the same settings."""
    module = tmp_path / "planted.py"
    module.write_text("import os\n"
                      "\n"
                      "count: int = 'three'\n"
                      "size: int = len(1)  # type: ignore[arg-type]\n"
                      "LONG = %r\n" % ("x" * 100))
    rc, out = ruff([str(module)])
    assert rc == 1 and "F401" in out and "E501" in out, out
    rc, out = mypy([str(module)])
    assert rc == 1 and "planted.py:3: error" in out and "[assignment]" in out, out
    assert ignores_without_reason([str(module)]) == [
        "%s:4: # type: ignore[arg-type]" % os.path.relpath(module, REPO_ROOT)]
    module.write_text("size: int = len(1)  # type: ignore[arg-type]  # planted\n")
    assert ignores_without_reason([str(module)]) == []
