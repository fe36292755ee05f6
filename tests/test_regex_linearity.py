"""Every regular expression of the package runs in time linear in its input.

Python's `re` backtracks, and holds the GIL for a whole match: one pattern that can match
the same text in more than one way turns a hostile line into seconds or hours in which
Moonraker's event loop cannot run at all (docs/architecture.md, "Linear-time parsing").
These tests find every compiled pattern of the package, try each as the code calls it on
adversarial inputs built from its own structure (tests/regex_linearity.py), and fail when
doubling the input much more than doubles the time.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest

from tests.regex_linearity import package_patterns

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "moonraker_prometheus"

# How the package calls each pattern (re.Pattern methods; `sub` covers subn). A pattern
# missing here fails test_every_pattern_of_the_package_says_how_it_is_used: say how the new
# one is called, and it is measured that way.
USES: Dict[str, Tuple[str, ...]] = {
    "moonraker_prometheus.catalogue.readers.UNIT_FIELD": ("fullmatch",),
    "moonraker_prometheus.exposition._LABEL_NAME": ("fullmatch",),
    # also expfmt.grammar.NAME_AT, the same compiled pattern, called with match()
    "moonraker_prometheus.exposition._METRIC_NAME": ("fullmatch", "match"),
    "moonraker_prometheus.remote.client._ERRNO": ("findall",),
    "moonraker_prometheus.remote.target._TARGET": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar.COMMENT_FAST": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar._EXPONENT": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.grammar._FLOAT_ONLY": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.slices._LINES": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.grammar._LONG_TOKEN": ("search",),
    "moonraker_prometheus.sidecar.expfmt.slices._NUMERIC_VALUES['le=']": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.slices._NUMERIC_VALUES['quantile=']": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.grammar.PAIR": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.grammar.QUOTED_AT": ("match",),
    "moonraker_prometheus.sidecar.expfmt.grammar.QUOTED_HEAD": ("match",),
    "moonraker_prometheus.sidecar.expfmt.grammar.QUOTED_ITEM": ("match",),
    "moonraker_prometheus.sidecar.expfmt.grammar._NOT_LEGACY[False]": ("sub",),
    "moonraker_prometheus.sidecar.expfmt.grammar._NOT_LEGACY[True]": ("sub",),
    "moonraker_prometheus.sidecar.expfmt.template._PLAIN_RESTS": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.template._RESTS": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar.SAMPLE_FAST": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar.SAMPLE_LOOSE": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar.VALUE": ("fullmatch",),
    "moonraker_prometheus.sidecar.expfmt.grammar._HELP_ESCAPE": ("sub",),
    "moonraker_prometheus.sidecar.expfmt.grammar.PAIR_ANY": ("findall",),
    "moonraker_prometheus.sidecar.expfmt.grammar.VALUE_ESCAPE": ("sub",),
    "moonraker_prometheus.sidecar.merge._SPECIAL_LABEL['histogram']": ("sub",),
    "moonraker_prometheus.sidecar.merge._SPECIAL_LABEL['summary']": ("sub",),
    "moonraker_prometheus.sidecar.sources.http._HEADER": ("fullmatch",),
    "moonraker_prometheus.sidecar.spec._DURATION_PART": ("findall",),
    "moonraker_prometheus.sidecar.spec._GROUP": ("fullmatch",),
    "moonraker_prometheus.sidecar.spec._NAME": ("fullmatch",),
}
# Catalogue ObjectKinds: `regex` is matched whole against Klipper object names.
USES_BY_SUFFIX = {".regex": ("fullmatch",)}
# re.compile() inside a function, (file, function): a user's keep/drop patterns (checked by
# sidecar.spec.check_user_pattern instead), and an ObjectKind's, compiled once when the
# catalogue declares it (found through the ObjectKinds).
COMPILERS = {("sidecar/spec.py", "_regexes"), ("catalogue/spec.py", "__post_init__")}
RE_CALLS = {"match", "fullmatch", "search", "findall", "finditer", "sub", "subn", "split",
            "compile"}


def _uses(name: str) -> Tuple[str, ...]:
    for suffix, uses in USES_BY_SUFFIX.items():
        if name.endswith(suffix):
            return uses
    return USES.get(name, ())


@pytest.mark.unit
def test_every_pattern_of_the_package_says_how_it_is_used():
    found = package_patterns()
    missing = sorted(n for n in found if not _uses(n))
    stale = sorted(set(USES) - set(found))
    assert not missing, "say how these patterns are called (USES): %s" % missing
    assert not stale, "these patterns are gone: remove them from USES: %s" % stale
    assert any(n.endswith(".regex") for n in found)  # the ObjectKinds are found too


@pytest.mark.unit
def test_every_pattern_is_compiled_once_at_module_level():
    """So package_patterns() finds them all: no re.match(...) with a pattern text, no
    re.compile() in a function but for a user's patterns."""
    offending = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        tree = ast.parse(path.read_text(), str(path))
        for func in [n for n in ast.walk(tree)
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]:
            for node in ast.walk(func):
                if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                        and node.func.attr in RE_CALLS
                        and (rel, getattr(func, "name", "")) not in COMPILERS):
                    offending.append("%s:%d re.%s" % (rel, node.lineno, node.func.attr))
    assert not offending, offending


def _measure(names, timeout=240):
    """Runs tests/regex_linearity.py on `names` (each as the package calls it, or
    `re:TEXT=MODE`) in a subprocess: a pattern that backtracks exponentially holds the GIL
    for hours. Returns the slow inputs by pattern, or {pattern: "time-out"} for the one
    being measured when the time ran out."""
    args = [n if n.startswith("re:") else "%s=%s" % (n, use)
            for n in names for use in (_uses(n) or ("",))]
    proc = subprocess.Popen([sys.executable, "-m", "tests.regex_linearity"] + args,
                            cwd=str(REPO), stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        started = [x for x in out.splitlines() if x.startswith("measuring ")]
        return {started[-1][len("measuring "):] if started else "?": "time-out"}
    assert proc.returncode == 0
    slow = {}
    for line in out.splitlines():
        if line.startswith("{"):
            result = json.loads(line)
            if result["slow"]:
                slow["%s (%s)" % (result["pattern"], result["mode"])] = result["slow"][:3]
    return slow


@pytest.mark.slow
def test_every_pattern_of_the_package_runs_in_linear_time():
    names = [n for n in package_patterns() if not n.endswith(".regex")]
    slow = _measure(names)
    assert not slow, json.dumps(slow, indent=1)


@pytest.mark.unit
def test_the_catalogue_object_patterns_run_in_linear_time():
    # many small patterns: the object-name ones, measured apart so the unit run has them
    names = [n for n in package_patterns() if n.endswith(".regex")]
    slow = _measure(sorted({package_patterns()[n].pattern: n for n in names}.values()))
    assert not slow, json.dumps(slow, indent=1)


@pytest.mark.unit
def test_the_measurement_finds_backtracking():
    """The check itself: the float pattern this project once had (`[0-9]+\\.?[0-9]*`, two
    quantifiers sharing the digits) is reported as quadratic, a repeat of it as
    exponential (or it times out), and the unambiguous spelling passes."""
    ambiguous = r"re:[0-9]+\.?[0-9]*=fullmatch"
    exponential = r"re:(?: [0-9]+\.?[0-9]*\n)* [0-9]+=fullmatch"
    unambiguous = r"re:(?: [0-9]+(?:\.[0-9]*)?\n)* [0-9]+=fullmatch"
    assert set(_measure([ambiguous], 60)) == {r"re:[0-9]+\.?[0-9]* (fullmatch)"}
    assert set(_measure([exponential], 60)) == {exponential[:-len("=fullmatch")]
                                                + " (fullmatch)"}
    assert _measure([unambiguous], 60) == {}


@pytest.mark.unit
@pytest.mark.parametrize("pattern", ["(a+)+", "(.*_)*total", "(node|node_cpu)*", "(x{1,9})*"])
def test_a_keep_or_drop_pattern_that_can_backtrack_exponentially_is_refused(pattern):
    from moonraker_prometheus.sidecar.sources import new_spec
    from moonraker_prometheus.sidecar.spec import SpecError
    spec = new_spec("x", "file")
    spec.path = "/nonexistent/x.prom"
    spec.drop = [pattern]
    with pytest.raises(SpecError) as e:
        spec.validate()
    assert "drop" in str(e.value) and "exponential" in str(e.value)


@pytest.mark.unit
@pytest.mark.parametrize("pattern", ["node_.*", "(node|process)_.*", ".*_bucket",
                                     "go_(gc|memstats)_.+", "[a-z]+_[0-9]+_total"])
def test_the_usual_keep_and_drop_patterns_are_accepted(pattern):
    from moonraker_prometheus.sidecar.sources import new_spec
    spec = new_spec("x", "file")
    spec.path = "/nonexistent/x.prom"
    spec.keep = [pattern]
    spec.validate()
    assert spec.keep_re[0].pattern == pattern
