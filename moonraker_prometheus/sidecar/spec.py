"""What one source is, independent of where it was configured (moonraker.conf or YAML).

Both config front ends fill a SourceSpec and call `validate()`, so every rule (and every error
message naming the option and the reason) lives in one place.
"""
from __future__ import annotations

import math
import os
import re
import shutil
from typing import Dict, List, Optional, Pattern
from urllib.parse import urlsplit, urlunsplit

from ..exposition import is_label_name

KINDS = ("http", "unix", "file", "exec", "exec_periodic")
MIN_INTERVAL = 1.0  # seconds; a smaller exec_periodic interval is a busy loop
MAX_INTERVAL = 86400.0  # one run a day at least (max_age: a week)
MAX_TIMEOUT = 600.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
MAX_MAX_BYTES = 1 << 30  # 1 GiB: more is a typo, and would not fit a printer host's memory
_NAME = re.compile(r"[A-Za-z0-9_.:-]+")
_HEADER = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Options each kind accepts besides the common ones (used to reject misplaced options).
COMMON = ("type", "group", "labels", "honor_labels", "no_rewrite", "keep", "drop", "timeout",
          "max_bytes")
KIND_OPTIONS = {
    "http": ("url", "headers", "username", "password", "bearer_token", "ca_file", "cert_file",
             "key_file", "insecure_skip_verify", "forward_url_params"),
    "unix": ("socket", "url", "headers", "username", "password", "bearer_token",
             "forward_url_params"),
    "file": ("path",),
    "exec": ("command", "shell"),
    "exec_periodic": ("command", "shell", "interval", "max_age"),
}


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
    """Options of one source. Defaults here are the documented defaults."""

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.group = ""
        self.labels: Dict[str, str] = {}
        self.honor_labels = False
        self.no_rewrite = False
        self.keep: List[str] = []
        self.drop: List[str] = []
        self.timeout = DEFAULT_TIMEOUT
        self.max_bytes = DEFAULT_MAX_BYTES
        self.url = ""
        self.socket = ""
        self.headers: Dict[str, str] = {}
        self.username: Optional[str] = None
        self.password: Optional[str] = None
        self.bearer_token: Optional[str] = None
        self.ca_file: Optional[str] = None
        self.cert_file: Optional[str] = None
        self.key_file: Optional[str] = None
        self.insecure_skip_verify = False
        self.forward_url_params = False
        self.path = ""
        self.command: List[str] = []
        self.shell = False
        self.interval = 60.0
        self.max_age: Optional[float] = None
        self.keep_re: List[Pattern[str]] = []
        self.drop_re: List[Pattern[str]] = []

    def argv(self) -> List[str]:
        """The exact argv run; a shell only when `shell` was configured."""
        if self.shell:
            return ["/bin/sh", "-c", self.command[0]]
        return list(self.command)

    def validate(self) -> None:
        if not _NAME.fullmatch(self.name or ""):
            raise SpecError("name", "must be non-empty letters, digits, '_', '.', ':' or '-'")
        if self.kind not in KINDS:
            raise SpecError("type", "must be one of %s, got %r" % ("|".join(KINDS), self.kind))
        if self.group and not re.fullmatch(r"[A-Za-z0-9_-]+", self.group):
            raise SpecError("group", "must be letters, digits, '_' or '-' (it becomes a URL path)")
        for k in self.labels:
            if not is_label_name(k):
                raise SpecError("labels", "%r is not a valid label name" % k)
            if k == "exporter_name":
                raise SpecError("labels", "'exporter_name' is set from the source name")
        self.keep_re = self._regexes("keep", self.keep)
        self.drop_re = self._regexes("drop", self.drop)
        if not 0 < self.timeout <= MAX_TIMEOUT:
            raise SpecError("timeout", "must be above 0 and at most %g seconds" % MAX_TIMEOUT)
        if not 0 < self.max_bytes <= MAX_MAX_BYTES:
            raise SpecError("max_bytes", "must be above 0 and at most %d (1 GiB)"
                            % MAX_MAX_BYTES)
        getattr(self, "_validate_" + self.kind)()

    @staticmethod
    def _regexes(option: str, patterns: List[str]) -> List[Pattern[str]]:
        out = []
        for p in patterns:
            try:
                out.append(re.compile(p))
            except re.error as e:
                raise SpecError(option, "bad regular expression %r: %s" % (p, e)) from None
        return out

    def _validate_http_common(self) -> None:
        for k, v in self.headers.items():
            if not _HEADER.fullmatch(k):
                # not quoted: 'Authorization: Bearer abc=' would make the token the name
                raise SpecError("headers", "a header name is not valid: write Name=value, "
                                "one per line, names such as X-Token (value not shown)")
            if "\r" in v or "\n" in v:
                raise SpecError("headers", "value of %r contains a line break" % k)
        if self.bearer_token is not None and self.username is not None:
            raise SpecError("bearer_token", "use either bearer_token or username/password")
        if self.password is not None and self.username is None:
            raise SpecError("password", "needs username")

    def _validate_http(self) -> None:
        parts = urlsplit(self.url)
        try:
            parts.port
        except ValueError:
            raise SpecError("url", "the port is not a number from 1 to 65535") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SpecError("url", "must be an http:// or https:// URL with a host, got %r"
                            % redact_url(self.url))
        for option in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, option)
            if path is not None and not os.access(path, os.R_OK):
                raise SpecError(option, "cannot read %s" % path)
        if self.key_file and not self.cert_file:
            raise SpecError("key_file", "needs cert_file")
        self._validate_http_common()

    def _validate_unix(self) -> None:
        if not os.path.isabs(self.socket or ""):
            raise SpecError("socket", "must be an absolute path to a Unix socket")
        url = self.url or "/metrics"
        if not url.startswith("/"):
            raise SpecError("url", "for a unix source, a path such as /metrics (query allowed)")
        self.url = url
        self._validate_http_common()

    def _validate_file(self) -> None:
        if not os.path.isabs(self.path or ""):
            raise SpecError("path", "must be an absolute path or glob")

    def _validate_exec(self) -> None:
        if not self.command:
            raise SpecError("command", "must list the program and its arguments")
        if self.shell:
            if len(self.command) != 1:
                raise SpecError("command", "with shell: true, give one line of shell script")
            return
        prog = self.command[0]
        found = shutil.which(prog) if not os.path.isabs(prog) else prog
        if not found or not os.access(found, os.X_OK):
            raise SpecError("command", "%r is not an executable program (found no %s)"
                            % (prog, "file" if os.path.isabs(prog) else "such program on PATH"))

    def _validate_exec_periodic(self) -> None:
        self._validate_exec()
        if not MIN_INTERVAL <= self.interval <= MAX_INTERVAL:
            raise SpecError("interval", "must be at least %g and at most %g seconds"
                            % (MIN_INTERVAL, MAX_INTERVAL))
        if self.max_age is None:
            self.max_age = 3 * self.interval
        if not self.interval <= self.max_age <= 7 * MAX_INTERVAL:
            raise SpecError("max_age", "must be at least the interval (%g s) and at most %g s"
                            % (self.interval, 7 * MAX_INTERVAL))
