"""Adversarial timing of regular expressions: does doubling the input more than double the time?

Run as a script (`python -m tests.regex_linearity QUALNAME=MODE ...`) it measures patterns of
the package and prints a JSON line for each; tests/test_regex_linearity.py runs it in a
subprocess with a time-out, so a pattern that backtracks exponentially ends as a test failure, not a hung
suite (Python's `re` holds the GIL for a whole match: nothing in-process can stop it).

Inputs are made from the pattern's own parse tree (Python's sre parser): for each repeat that
can run long, a text the pattern accepts with that repeat run `n` times (the other repeats at
their least, or at a few iterations, or optional parts left out), then the same text with a
character that fails after it, or in place of its last character. For every such input the
time at `n` and at `4n` is compared, `n` grown until a match takes long enough to time.
"""
from __future__ import annotations

import importlib
import inspect
import json
import math
import pkgutil
import re
import sys
import time
from dataclasses import fields, is_dataclass
from typing import Any, Callable, Dict, Iterator, List, Optional, Pattern, Tuple

try:  # Python 3.11 and later
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.9 and 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

PACKAGE = "moonraker_prometheus"
MAXREPEAT = sre_constants.MAXREPEAT
# A repeat allowing more than this many iterations is run long ("a run of what it accepts");
# one allowing fewer (`[0-9]{1,18}`) costs at most a constant.
LONG = 64
# Characters tried where a text must fail: each stops some pattern, none stops them all.
FAILING = ("\x00", "!", "\n", '"', " ", "}")
# Times below this are too noisy to compare; n grows until the slower input takes this long.
MIN_SECONDS = 0.00005
MAX_LENGTH = 1 << 20
# Allowed time ratio for 4x the input: linear work gives about 4, quadratic 16.
MAX_RATIO = 9.0


def package_patterns() -> Dict[str, Pattern[str]]:
    """Every compiled pattern the package holds at module level, by qualified name: module
    globals that are patterns, patterns in a global dict, list or tuple, and patterns in the
    fields of a global dataclass instance (catalogue ObjectKinds)."""
    found: Dict[str, Pattern[str]] = {}
    home: Dict[str, bool] = {}  # by qualified name: its module assigns it (not imported)
    package = importlib.import_module(PACKAGE)
    names = [PACKAGE] + [m.name for m in pkgutil.walk_packages(package.__path__, PACKAGE + ".")]
    for module_name in names:
        if module_name.endswith("__main__"):
            continue
        module = importlib.import_module(module_name)
        source = inspect.getsource(module)
        for attr, value in vars(module).items():
            if getattr(value, "__module__", module_name) != module_name and not isinstance(
                    value, (re.Pattern, dict, list, tuple)) and not is_dataclass(value):
                continue
            for suffix, pattern in _patterns_in(value):
                if getattr(module, "__name__", "") == module_name:
                    name = "%s.%s%s" % (module_name, attr, suffix)
                    found.setdefault(name, pattern)
                    home[name] = re.search(r"^%s\b[^=\n]*=" % re.escape(attr), source,
                                           re.M) is not None
    # A pattern imported from another module is listed once, under its home: the module
    # that assigns it (else the shortest name).
    by_id: Dict[int, str] = {}
    for name in sorted(found, key=lambda n: (not home[n], len(n), n)):
        by_id.setdefault(id(found[name]), name)
    return {name: found[name] for name in sorted(set(by_id.values()))}


def _patterns_in(value: Any) -> Iterator[Tuple[str, Pattern[str]]]:
    if isinstance(value, re.Pattern):
        yield "", value
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, re.Pattern):
                yield "[%r]" % (k,), v
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if isinstance(v, re.Pattern):
                yield "[%d]" % i, v
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            v = getattr(value, f.name, None)
            if isinstance(v, re.Pattern):
                yield "." + f.name, v


# ---------------------------------------------------------------- texts from a parse tree

def _char_in(items: List[Tuple[Any, Any]]) -> Optional[str]:
    """A character a character class (sre IN items) accepts."""
    negate = bool(items) and items[0][0] is sre_constants.NEGATE
    if negate:
        for c in "a0_ .-x\t,=\\{}":
            if not _in_class(c, items[1:]):
                return c
        return None
    for op, av in items:
        if op is sre_constants.LITERAL:
            return chr(av)
        if op is sre_constants.RANGE:
            return chr(av[0])
        if op is sre_constants.CATEGORY:
            return _CATEGORY.get(av, "a")
    return None


_CATEGORY = {sre_constants.CATEGORY_DIGIT: "0", sre_constants.CATEGORY_WORD: "a",
             sre_constants.CATEGORY_SPACE: " ", sre_constants.CATEGORY_NOT_DIGIT: "a",
             sre_constants.CATEGORY_NOT_WORD: " ", sre_constants.CATEGORY_NOT_SPACE: "a"}


def _in_class(c: str, items: List[Tuple[Any, Any]]) -> bool:
    pattern = "".join(_item_text(op, av) for op, av in items)
    return re.fullmatch("[%s]" % pattern, c) is not None if pattern else False


def _item_text(op: Any, av: Any) -> str:
    if op is sre_constants.LITERAL:
        return re.escape(chr(av))
    if op is sre_constants.RANGE:
        return "%s-%s" % (re.escape(chr(av[0])), re.escape(chr(av[1])))
    if op is sre_constants.CATEGORY:
        return {sre_constants.CATEGORY_DIGIT: r"\d", sre_constants.CATEGORY_WORD: r"\w",
                sre_constants.CATEGORY_SPACE: r"\s", sre_constants.CATEGORY_NOT_DIGIT: r"\D",
                sre_constants.CATEGORY_NOT_WORD: r"\W",
                sre_constants.CATEGORY_NOT_SPACE: r"\S"}.get(av, "")
    return ""


_REPEATS = tuple(getattr(sre_constants, n) for n in
                 ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT") if hasattr(sre_constants, n))


class Plan:
    """How to write a text from a parse tree: the repeat that runs long (its index in a walk
    of the tree) and its iterations `n`; how the other repeats run (`least`: their minimum;
    `few`: up to 3; `no-optional`: up to 3, optional parts left out); the branch each
    alternation takes (by index in a walk of the tree; the first by default)."""

    def __init__(self, target: int, n: int, others: str, branches: Dict[int, int]) -> None:
        self.target, self.n, self.others, self.branches = target, n, others, branches

    def times(self, index: int, low: int, high: int) -> int:
        if index == self.target:
            return min(self.n, high)
        if self.others == "least" or self.others == "no-optional" and high == 1:
            return low
        return min(high, max(low, 3))


def _walk(nodes: Any, visit: Callable[[Any, Any], bool]) -> None:
    """Calls visit(op, av) for each node in walk order; it returns whether to go inside."""
    for op, av in nodes:
        if not visit(op, av):
            continue
        if op in _REPEATS:
            _walk(av[2], visit)
        elif op is sre_constants.BRANCH:
            for sub in av[1]:
                _walk(sub, visit)
        elif op is sre_constants.SUBPATTERN:
            _walk(av[-1], visit)
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            _walk(av[1], visit)
        elif op is _ATOMIC:
            _walk(av, visit)


_ATOMIC = getattr(sre_constants, "ATOMIC_GROUP", object())


def repeats_and_branches(tree: Any) -> Tuple[List[Tuple[int, int]], List[int]]:
    """(min, max) of each repeat and the branch count of each alternation, in walk order."""
    repeats: List[Tuple[int, int]] = []
    branches: List[int] = []

    def visit(op: Any, av: Any) -> bool:
        if op in _REPEATS:
            repeats.append((av[0], av[1]))
        elif op is sre_constants.BRANCH:
            branches.append(len(av[1]))
        return True
    _walk(tree, visit)
    return repeats, branches


def write(tree: Any, plan: Plan) -> Optional[str]:
    """A text following `plan`, or None where the tree holds what this writer does not
    follow (a class accepting none of the characters it tries, a group reference). Repeats
    and alternations are numbered in walk order, whether or not their text is written."""
    count = {"repeat": 0, "branch": 0}

    def number(nodes: Any) -> None:  # counts what a skipped part holds
        def visit(op: Any, av: Any) -> bool:
            if op in _REPEATS:
                count["repeat"] += 1
            elif op is sre_constants.BRANCH:
                count["branch"] += 1
            return True
        _walk(nodes, visit)

    def text(nodes: Any) -> Optional[str]:
        out: List[str] = []
        for op, av in nodes:
            piece: Optional[str]
            if op is sre_constants.LITERAL:
                piece = chr(av)
            elif op is sre_constants.NOT_LITERAL:
                piece = "a" if av != ord("a") else "b"
            elif op is sre_constants.ANY:
                piece = "a"
            elif op is sre_constants.IN:
                piece = _char_in(av)
            elif op is sre_constants.CATEGORY:
                piece = _CATEGORY.get(av, "a")
            elif op is sre_constants.BRANCH:
                choice = plan.branches.get(count["branch"], 0)
                count["branch"] += 1
                piece = ""
                for i, sub in enumerate(av[1]):
                    if i == choice:
                        piece = text(sub)
                    else:
                        number(sub)
            elif op is sre_constants.SUBPATTERN:
                piece = text(av[-1])
            elif op is _ATOMIC:
                piece = text(av)
            elif op in _REPEATS:
                low, high, body = av
                times = plan.times(count["repeat"], low, high)
                count["repeat"] += 1
                if times == 0:
                    number(body)
                    piece = ""
                else:
                    once = text(body)  # every iteration written alike
                    piece = None if once is None else once * times
            elif op is sre_constants.AT:
                piece = ""
            elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
                number(av[1])
                piece = ""
            else:
                piece = None
            if piece is None:
                return None
            out.append(piece)
        return "".join(out)

    return text(tree)


def inputs(pattern: Pattern[str]) -> List[Tuple[str, Callable[[int], str]]]:
    """(description, text at size n) of every adversarial input for this pattern."""
    tree = sre_parse.parse(pattern.pattern, pattern.flags)
    repeats, branches = repeats_and_branches(tree)
    choices: List[Dict[int, int]] = [{}]
    for b, count in enumerate(branches):
        choices += [{b: i} for i in range(1, count)]
    out: List[Tuple[str, Callable[[int], str]]] = []
    seen = set()
    for target, (_, high) in enumerate(repeats):
        if high <= LONG:
            continue
        for others in ("least", "few", "no-optional"):
            for branch in choices:
                texts = tuple(write(tree, Plan(target, n, others, branch)) for n in (2, 3))
                if None in texts or texts[0] == texts[1] or texts in seen:
                    continue  # the long repeat is not in this text, or the text is known
                seen.add(texts)
                what = "repeat %d run long, others %s, branches %s" % (target, others, branch)
                for c in FAILING:
                    out.append((what + ", then %r" % c, _maker(tree, target, others, branch,
                                                              lambda t, c=c: t + c)))
                    out.append((what + ", last char %r" % c,
                                _maker(tree, target, others, branch,
                                       lambda t, c=c: t[:-1] + c)))
    return out


def _maker(tree: Any, target: int, others: str, branch: Dict[int, int],
           tail: Callable[[str], str]) -> Callable[[int], str]:
    def make(n: int) -> str:
        return tail(write(tree, Plan(target, n, others, branch)) or "")
    return make


def _runner(pattern: Pattern[str], mode: str) -> Callable[[str], Any]:
    return {"fullmatch": pattern.fullmatch, "match": pattern.match, "search": pattern.search,
            "findall": pattern.findall, "sub": lambda text: pattern.sub("", text)}[mode]


def _seconds(run: Callable[[str], Any], text: str, tries: int = 3) -> float:
    """Least time of a few runs (the run the machine disturbed least)."""
    best = float("inf")
    for _ in range(tries):
        started = time.perf_counter()
        run(text)
        best = min(best, time.perf_counter() - started)
    return best


def measure(pattern: Pattern[str], mode: str) -> List[Dict[str, Any]]:
    """The inputs whose time grows faster than their length: description, sizes, seconds.

    For each input, `n` grows by a quarter until a match takes MIN_SECONDS (or the text
    nears MAX_LENGTH); then the input grows to 4n (see _grows_too_fast)."""
    run = _runner(pattern, mode)
    bad: List[Dict[str, Any]] = []
    for what, make in inputs(pattern):
        n = 1
        took = _seconds(run, make(n), 1)
        while took < MIN_SECONDS and len(make(n)) * 8 <= MAX_LENGTH:
            n += max(1, n // 4)  # small steps: a blow-up shows before it hangs
            took = _seconds(run, make(n), 1 if took < MIN_SECONDS / 8 else 3)
        if len(make(4 * n)) < 2 * len(make(n)):
            continue  # the repeat stopped growing: its bound is its cost
        slow = _grows_too_fast(run, make, n)
        if slow is not None:
            bad.append(dict(slow, input=what))
    return bad


def _grows_too_fast(run: Callable[[str], Any], make: Callable[[int], str], n: int
                    ) -> Optional[Dict[str, Any]]:
    """Grows the input from `n` to `4n` a quarter at a time; at each size the time may be
    at most what MAX_RATIO for 4x allows for that size (time ~ length^log4(MAX_RATIO)),
    in two tries. The first size over it (or None): an exponential blow-up is caught
    within a step or two, long before 4n."""
    text = make(n)
    base = _seconds(run, text)
    power = math.log(MAX_RATIO) / math.log(4)
    m = n
    while m < 4 * n:
        m = min(4 * n, m + max(1, m // 4))
        bigger = make(m)
        allowed = MAX_RATIO if m == 4 * n else (len(bigger) / len(text)) ** power * 1.5
        took = _seconds(run, bigger)
        if took > allowed * max(base, 1e-7) and took >= MIN_SECONDS:
            base, took = _seconds(run, text), _seconds(run, bigger)  # a passing disturbance?
            if took > allowed * max(base, 1e-7):
                return {"n": [n, m], "chars": [len(text), len(bigger)], "seconds": [base, took]}
    return None


def main(argv: List[str]) -> int:
    """Measures the patterns `NAME=MODE` (or `re:TEXT=MODE`) on the command line, printing a line
    `measuring NAME` before each (so a caller timing out knows which) and a JSON line of
    the slow inputs after it."""
    patterns = package_patterns()
    for arg in argv:
        name, mode = arg.rsplit("=", 1)
        if not mode:
            continue  # a pattern without a known use: the test of USES reports it
        # `re:TEXT`: a pattern given as text (the test of this check itself)
        pattern = re.compile(name[3:]) if name.startswith("re:") else patterns[name]
        print("measuring " + name, flush=True)
        print(json.dumps({"pattern": name, "mode": mode,
                          "slow": measure(pattern, mode)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
