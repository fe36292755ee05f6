"""What one source is, and what a whole configuration is, independent of where it was
written (moonraker.conf or YAML).

A source kind is one `Source` class (sidecar/sources/) and one row of the kinds table
(`sources.KINDS`): the class declares its options (`Option`: name, type, default, YAML key)
and checks their values (`check(spec)`); the options every kind has are `COMMON`. Both
configuration front ends read the declared options by their type and call
`SourceSpec.validate()`, so every rule (and every error message naming the option and the
reason) lives in one place. Both front ends return a `SidecarConfig`: its `endpoints`, each
a list of validated SourceSpecs served together, and its warnings.
"""
from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Pattern, Sequence
from urllib.parse import urlsplit, urlunsplit

from ..exposition import is_label_name

if TYPE_CHECKING:
    from .config import Listener

try:  # the parser of Python's own regex engine: 3.11 moved it
    from re import _constants as _sre  # type: ignore[attr-defined]  # private, stable
    from re import _parser as _sre_parse  # type: ignore[attr-defined]  # private, stable
except ImportError:  # Python 3.9 and 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_REPEATS = tuple(getattr(_sre, n) for n in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
                 if hasattr(_sre, n))
_MAXREPEAT = _sre.MAXREPEAT

MIN_INTERVAL = 1.0  # seconds; a smaller exec_periodic interval is a busy loop
MAX_INTERVAL = 86400.0  # one run a day at least (max_age: a week)
# Seconds one fetch of one source may take (an HTTP request, a command's run, a glob's
# reads): the default of each source's `timeout` option, and its upper bound. The deadline
# of the scrape the fetch serves (merge.DEFAULT_COLLECT_DEADLINE_S and those it stands for)
# may end it sooner.
DEFAULT_FETCH_TIMEOUT_S = 5.0
MAX_FETCH_TIMEOUT_S = 600.0
# Seconds within which the standalone sidecar answers a scrape: the default of its YAML's
# web.scrape_timeout (reverse_exporter's), lowered by Prometheus'
# X-Prometheus-Scrape-Timeout-Seconds (server.scrape_timeout).
DEFAULT_STANDALONE_SCRAPE_DEADLINE_S = 10.0
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_MAX_BYTES = 1 << 30  # 1 GiB: more is a typo, and would not fit a printer host's memory
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
# findall() over a duration: the look-behind keeps a search from starting inside a number.
_DURATION_PART = re.compile(r"(?<![0-9.])([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_GROUP = re.compile(r"[A-Za-z0-9_-]+")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

# Option types: how each front end reads a value (moonraker.conf getter; YAML node type).
TEXT = "text"          # a string
SECRET = "secret"      # a string that may be a credential; {secrets...} templates rendered
PATH = "path"          # a path or glob (YAML: relative to the config file)
FLAG = "flag"          # true/false
INTEGER = "integer"    # an integer
DURATION = "duration"  # seconds, or a Go-style duration ("1m30s")
WORDS = "words"        # a list of strings
MAPPING = "mapping"    # name=value pairs
ARGV = "argv"          # a program and its arguments (YAML: `command` plus `args`)


class Option:
    """One option of a source: `name` (moonraker.conf and SourceSpec attribute), `type` (one
    of the types above), `default`, `yaml` (its key in the standalone YAML, "" for none),
    `yaml_required` (reverse_exporter demands it) and `secret` (its value may hold a
    credential: never quoted in a message)."""

    __slots__ = ("name", "type", "default", "yaml", "yaml_required", "secret")

    def __init__(self, name: str, type: str, default: Any = None, yaml: Optional[str] = None,
                 yaml_required: bool = False, secret: bool = False) -> None:
        self.name = name
        self.type = type
        self.default = default
        self.yaml = name if yaml is None else yaml
        self.yaml_required = yaml_required
        self.secret = secret or type == SECRET


# Options of every kind (the section's `type` and the YAML entry's `name` are read apart).
COMMON: Sequence[Option] = (
    Option("group", TEXT, "", yaml=""),  # YAML: sources are grouped by endpoint path
    Option("labels", MAPPING, {}),
    Option("honor_labels", FLAG, False),
    Option("no_rewrite", FLAG, False),
    Option("keep", WORDS, []),
    Option("drop", WORDS, []),
    Option("timeout", DURATION, DEFAULT_FETCH_TIMEOUT_S),
    Option("max_bytes", INTEGER, DEFAULT_MAX_BYTES),
)


class SpecError(ValueError):
    """A bad option: `option` names it, the message says why."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__("option '%s': %s" % (option, reason))
        self.option = option
        self.reason = reason


def parse_duration(value: object, option: str) -> float:
    """Seconds (finite, not negative) from a number or a Go-style duration ("1m30s", "500ms").

    Raises SpecError naming `option`; range checks are the caller's."""
    if isinstance(value, bool):
        raise SpecError(option, "expected a duration, got %r" % (value,))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if not parts or "".join(a + b for a, b in parts) != text:
                raise SpecError(option, "expected a duration such as 10s, 1m30s or 500ms, "
                                "got %r" % text) from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not math.isfinite(seconds) or seconds < 0:
        raise SpecError(option, "expected a finite duration of at least 0 s, got %r" % (value,))
    return seconds


def redact_url(url: str) -> str:
    """A URL fit for a message: no user or password, no query values (either may be a
    credential)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(unparsable URL, not shown)"
    netloc = ("xxx@" if "@" in parts.netloc else "") + host + (":%d" % port if port else "")
    query = "&".join(k.split("=", 1)[0] + "=xxx" for k in parts.query.split("&") if k)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class SourceSpec:
    """Options of one source of kind `kind`, whose class (`source`, a row of the kinds table)
    declares them: attributes named after COMMON and `source.options`, set to their defaults
    until a front end reads them. `validate()` checks them (SpecError)."""

    def __init__(self, name: str, kind: str, source: Any) -> None:
        self.name = name
        self.kind = kind
        self.source = source
        for option in self.options():
            setattr(self, option.name, copy.copy(option.default))
        self.keep_re: List[Pattern[str]] = []
        self.drop_re: List[Pattern[str]] = []

    if TYPE_CHECKING:
        # The options' attributes (COMMON and source.options, by name) are set above from
        # their declarations, which a type checker cannot follow: to it, they are Any.
        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def options(self) -> Sequence[Option]:
        """Every option this source accepts."""
        return tuple(COMMON) + tuple(self.source.options)

    def validate(self) -> None:
        """Checks the common options, then the kind's (`source.check`); SpecError names the
        option and the reason."""
        if not _NAME.fullmatch(self.name or ""):
            raise SpecError("name", "must be non-empty letters, digits, '_', '.', ':' or '-'")
        if self.group and not _GROUP.fullmatch(self.group):
            raise SpecError("group", "must be letters, digits, '_' or '-' (it becomes a URL path)")
        for k in self.labels:
            if not is_label_name(k):
                raise SpecError("labels", "%r is not a valid label name" % k)
            if k == "exporter_name":
                raise SpecError("labels", "'exporter_name' is set from the source name")
        if self.no_rewrite and self.labels:
            raise SpecError("labels", "no_rewrite passes the source through untouched; "
                            "remove labels or no_rewrite")
        self.keep_re = self._regexes("keep", self.keep)
        self.drop_re = self._regexes("drop", self.drop)
        if not 0 < self.timeout <= MAX_FETCH_TIMEOUT_S:
            raise SpecError("timeout", "must be above 0 and at most %g seconds"
                            % MAX_FETCH_TIMEOUT_S)
        if not 0 < self.max_bytes <= MAX_MAX_BYTES:
            raise SpecError("max_bytes", "must be above 0 and at most %d (1 GiB)"
                            % MAX_MAX_BYTES)
        self.source.check(self)

    @staticmethod
    def _regexes(option: str, patterns: List[str]) -> List[Pattern[str]]:
        out = []
        for p in patterns:
            try:
                compiled = re.compile(p)
            except re.error as e:
                raise SpecError(option, "bad regular expression %r: %s" % (p, e)) from None
            problem = check_user_pattern(compiled)
            if problem:
                raise SpecError(option, "regular expression %r %s" % (p, problem))
            out.append(compiled)
        return out


@dataclass
class Endpoint:
    """Sources merged into one exposition: `specs` (validated, in configuration order) and
    `users` (user -> bcrypt hash or legacy plaintext; standalone only, empty for none).

    `path` says where they are served: in the YAML, the entry's `path` (`/metrics`, under
    web.context_path); from moonraker.conf, the sources' `group` ("" for /server/metrics
    itself, `disks` for /server/metrics/disks)."""

    path: str
    specs: List[SourceSpec] = field(default_factory=list)
    users: Dict[str, str] = field(default_factory=dict)


@dataclass
class SidecarConfig:
    """A whole configuration, from either front end: `endpoints` (each path once, in
    configuration order) and `warnings` (problems that did not stop it: a skipped
    moonraker.conf section, an ignored YAML key).

    The other fields configure the standalone server (YAML `web`); read from moonraker.conf
    they keep their defaults, which nothing there uses: `listen` (config.Listener),
    `context_path`, `read_header_timeout` and `scrape_timeout` (seconds) and the `users`
    of every endpoint."""

    endpoints: List[Endpoint] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)
    listen: List["Listener"] = field(default_factory=list)
    context_path: str = ""
    read_header_timeout: float = 10.0
    scrape_timeout: float = DEFAULT_STANDALONE_SCRAPE_DEADLINE_S
    users: Dict[str, str] = field(default_factory=dict)


def check_user_pattern(pattern: Pattern[str]) -> Optional[str]:
    """Why a user's `keep`/`drop` pattern may take exponential time on a long family name
    (the names come from the source, so a hostile one can be long), or None.

    Python's regex engine backtracks and holds the GIL for a whole match (see
    docs/architecture.md, "Linear-time parsing"): a repeat holding another repeat, either
    of them unbounded (`(a+)+`, `(.*,)*`), or an unbounded repeat of an alternation
    (`(a|ab)*`), can try exponentially many ways to match. Such a pattern is refused (the
    check is conservative: `(x+y)*` is refused too); its meaning can nearly always be
    written with one repeat (`(a+)+` is `a+`)."""
    for op, av in _flat(_sre_parse.parse(pattern.pattern, pattern.flags)):
        if op not in _REPEATS or av[1] <= 1:
            continue
        high, inner = av[1], _flat(av[2])
        if any(o in _REPEATS and a[1] > 1 and _MAXREPEAT in (high, a[1]) for o, a in inner):
            return ("nests a repeat in a repeat: it can take exponential time on a long "
                    "name; write it with one repeat")
        if high == _MAXREPEAT and any(o is _sre.BRANCH for o, _ in inner):
            return ("repeats an alternation: it can take exponential time on a long name; "
                    "write it with one repeat")
    return None


def _flat(nodes: Any) -> List[Any]:
    """Every node of a parse tree, depth first."""
    out = []
    for op, av in nodes:
        out.append((op, av))
        if op in _REPEATS:
            out += _flat(av[2])
        elif op is _sre.BRANCH:
            for branch in av[1]:
                out += _flat(branch)
        elif op is _sre.SUBPATTERN:
            out += _flat(av[-1])
        elif op in (_sre.ASSERT, _sre.ASSERT_NOT):
            out += _flat(av[1])
    return out
