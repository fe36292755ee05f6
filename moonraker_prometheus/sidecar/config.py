"""Standalone config: reverse_exporter's YAML format, so its users can move over unchanged.

Every error names the offending key as a path (`reverse_exporters[0].exporters.http[1].timeout`).
Accepted: `exporters` as a map of kind -> list (current reverse_exporter) or as a list of
one-key maps (older releases); `exec_cached` and `exec-cached`; `auth.basic_auth` user lists
and `htpasswd_file` (bcrypt). Our own source options may be added to any exporter entry.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple
from urllib.parse import parse_qs, urlsplit

from .sources import KINDS, new_spec
from .spec import (ARGV, DURATION, FLAG, INTEGER, MAPPING, PATH, SECRET, TEXT, WORDS,
                   Endpoint, Option, SidecarConfig, SourceSpec, SpecError, parse_duration)

DEFAULT_LISTEN = "tcp://127.0.0.1:9998"


def _yaml_kinds() -> Dict[str, str]:
    """reverse_exporter's kind names (`exporters` keys) -> our kinds, from the kinds table."""
    return {yaml: kind for kind, source in KINDS.items() for yaml in source.yaml_kinds}


class ConfigError(ValueError):
    """`key` is the path of the offending key."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__("%s: %s" % (key, reason))
        self.key = key


class Listener:
    """One `web.listen` URL: tcp/unix, with TLS files for tcps/unixs."""

    def __init__(self, url: str, key: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        if self.scheme not in ("tcp", "tcps", "unix", "unixs"):
            raise ConfigError(key, "scheme must be tcp, tcps, unix or unixs, got %r" % url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.tls = self.scheme.endswith("s")
        self.cert_file = query.get("tlscert")
        self.key_file = query.get("tlskey")
        self.client_ca_file = query.get("tlsclientca")
        if self.tls and not (self.cert_file and self.key_file):
            raise ConfigError(key, "%s needs ?tlscert=...&tlskey=..." % self.scheme)
        if not self.tls and (self.cert_file or self.key_file or self.client_ca_file):
            raise ConfigError(key, "TLS parameters need tcps:// or unixs://")
        if self.scheme.startswith("unix"):
            self.path = parts.path
            if not os.path.isabs(self.path):
                raise ConfigError(key, "unix socket path must be absolute")
            self.host, self.port = "", 0
        else:
            self.path = ""
            try:
                port = parts.port
            except ValueError:
                port = None
            if port is None or parts.hostname is None:
                raise ConfigError(key, "expected tcp://host:port, got %r" % url)
            self.host, self.port = parts.hostname, port


def _map(value: Any, key: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(key, "expected a mapping, got %s" % type(value).__name__)
    return value


def _list(value: Any, key: str) -> List[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError(key, "expected a list, got %s" % type(value).__name__)
    return value


def _str(value: Any, key: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise ConfigError(key, "expected a string")
    return str(value)


def _bool(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(key, "expected true or false")
    return value


def _strmap(value: Any, key: str) -> Dict[str, str]:
    return {str(k): _str(v, "%s.%s" % (key, k)) for k, v in _map(value, key).items()}


def _unknown(data: Dict[str, Any], allowed: Any, key: str) -> None:
    extra = sorted(set(map(str, data)) - set(allowed))
    if extra:
        raise ConfigError("%s.%s" % (key, extra[0]) if key else extra[0], "unknown key")


def _resolve(base: str, path: str) -> str:
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))


def _users(auth: Any, key: str, base: str) -> Dict[str, str]:
    auth = _map(auth, key)
    _unknown(auth, {"basic_auth", "htpasswd_file"}, key)
    users: Dict[str, str] = {}
    for i, entry in enumerate(_list(auth.get("basic_auth"), key + ".basic_auth")):
        k = "%s.basic_auth[%d]" % (key, i)
        entry = _map(entry, k)
        _unknown(entry, {"username", "password"}, k)
        if "username" not in entry or "password" not in entry:
            raise ConfigError(k, "needs username and password")
        users[_str(entry["username"], k + ".username")] = _str(entry["password"], k + ".password")
    if auth.get("htpasswd_file"):
        users.update(read_htpasswd(_resolve(base, _str(auth["htpasswd_file"],
                                                        key + ".htpasswd_file")),
                                   key + ".htpasswd_file"))
    return users


# reverse_exporter's older per-path `auth_type`: "" (none) or "basic" (its users from
# `htpasswd_file`). Users configured for a path are always asked for; `basic` without any
# would serve the path to anyone, so it is refused, as is any other value.
AUTH_TYPES = ("", "basic")


def _check_auth_type(value: Any, key: str, has_users: bool) -> None:
    """ConfigError naming `key` for an auth_type other than "" and "basic", or for
    "basic" on a path without users (htpasswd_file, auth.basic_auth or web.auth)."""
    auth_type = "" if value is None else _str(value, key)
    if auth_type not in AUTH_TYPES:
        raise ConfigError(key, "unknown value %r: basic (users from htpasswd_file or "
                          "auth.basic_auth) or empty (none)" % auth_type)
    if auth_type == "basic" and not has_users:
        raise ConfigError(key, "basic needs users: set htpasswd_file or auth.basic_auth "
                          "(or web.auth)")


def read_htpasswd(path: str, key: str) -> Dict[str, str]:
    """`user:bcrypt-hash` lines; other hash schemes are refused."""
    users: Dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise ConfigError(key, "cannot read %s: %s" % (path, e.strerror)) from None
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, _, digest = line.partition(":")
        if not digest.startswith(("$2a$", "$2b$", "$2y$")):
            raise ConfigError(key, "%s line %d: only bcrypt hashes are supported" % (path, n))
        users[user] = digest
    return users


def _unix_form(entry: Dict[str, Any], key: str) -> Tuple[str, Dict[str, Any]]:
    """The kind of an `http` entry and the entry as read: reverse_exporter writes a Unix
    socket as `address: http://unix:/path/to/socket:/metrics`; ours is a `socket` key."""
    address = _str(entry.get("address", ""), key + ".address")
    if address.startswith("http://unix:"):
        sock, sep, path = address[len("http://unix:"):].partition(":")
        entry = dict(entry, socket=sock, address=path if sep else "/metrics")
    return ("unix" if "socket" in entry else "http"), entry


def _argv(entry: Dict[str, Any], key: str, base: str) -> List[str]:
    """`command` (a program, resolved against the config's folder if it has a '/', or one
    line of shell script with `shell: true`) plus `args`."""
    command = _str(entry.get("command", ""), key + ".command")
    args = [_str(a, key + ".args") for a in _list(entry.get("args"), key + ".args")]
    if _bool(entry.get("shell", False), key + ".shell"):
        if args:
            raise ConfigError(key + ".args", "with shell: true, put the whole script in command")
        return [command] if command else []
    if command and "/" in command:
        command = _resolve(base, command)
    return ([command] if command else []) + args


def _yaml_value(option: Option, value: Any, entry: Dict[str, Any], key: str,
                base: str) -> Any:
    """One declared option from its YAML node, by its type (ConfigError/SpecError)."""
    where = "%s.%s" % (key, option.yaml)
    if option.type in (TEXT, SECRET):
        return _str(value, where)
    if option.type == PATH:
        return _resolve(base, _str(value, where))
    if option.type == FLAG:
        return _bool(value, where)
    if option.type == INTEGER:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(where, "expected an integer")
        return value
    if option.type == DURATION:
        return parse_duration(value, option.name)
    if option.type == WORDS:
        return [_str(x, where) for x in _list(value, where)]
    if option.type == MAPPING:
        return _strmap(value, where)
    assert option.type == ARGV
    return _argv(entry, key, base)


def _source(kind: str, entry: Any, key: str, base: str) -> SourceSpec:
    """One `exporters` entry: the options its kind declares (sources.KINDS), by their YAML
    keys."""
    entry = _map(entry, key)
    if kind == "http":
        kind, entry = _unix_form(entry, key)
    if "name" not in entry:
        raise ConfigError(key + ".name", "missing")
    spec = new_spec(_str(entry["name"], key + ".name"), kind)
    options = {o.yaml: o for o in spec.options() if o.yaml}
    allowed = set(options) | {"name"}
    if any(o.type == ARGV for o in options.values()):
        allowed.add("args")
    _unknown(entry, allowed, key)
    yaml_keys = {o.name: o.yaml for o in options.values()}
    try:
        for yaml, option in options.items():
            if yaml in entry or option.type == ARGV and "args" in entry:
                setattr(spec, option.name, _yaml_value(option, entry.get(yaml), entry, key, base))
            elif option.yaml_required:
                raise ConfigError("%s.%s" % (key, yaml), "missing")
        spec.validate()
    except SpecError as e:
        raise ConfigError("%s.%s" % (key, yaml_keys.get(e.option, e.option)),
                          e.reason) from None
    return spec


def _exporters(value: Any, key: str, base: str) -> List[SourceSpec]:
    """Both layouts: {http: [...], file: [...]} and [{http: {...}}, {file: {...}}]."""
    kinds = _yaml_kinds()
    names = ", ".join(k for k in kinds if "-" not in k)  # exec-cached: an old spelling
    items: List[Tuple[str, str, Any]] = []
    if isinstance(value, dict):
        for kind, entries in value.items():
            if kind not in kinds:
                raise ConfigError("%s.%s" % (key, kind), "unknown exporter kind (%s)" % names)
            for i, e in enumerate(_list(entries, "%s.%s" % (key, kind))):
                items.append((kinds[kind], "%s.%s[%d]" % (key, kind, i), e))
    else:
        for i, item in enumerate(_list(value, key)):
            k = "%s[%d]" % (key, i)
            item = _map(item, k)
            if len(item) != 1 or next(iter(item)) not in kinds:
                raise ConfigError(k, "expected one key: %s" % names)
            kind, e = next(iter(item.items()))
            items.append((kinds[kind], "%s.%s" % (k, kind), e))
    specs = [_source(kind, e, k, base) for kind, k, e in items]
    seen: Dict[str, str] = {}
    for spec, (_, k, _) in zip(specs, items):
        if spec.name in seen:
            raise ConfigError(k + ".name", "%r already used by %s" % (spec.name, seen[spec.name]))
        seen[spec.name] = k
    return specs


def parse_config(data: Any, base: str = ".") -> SidecarConfig:
    """The configuration of the YAML document `data` (paths relative to `base`): each
    `reverse_exporters` entry an Endpoint. ConfigError names the offending key."""
    cfg = SidecarConfig()
    data = _map(data, "(top level)")
    _unknown(data, {"web", "reverse_exporters"}, "")
    web = _map(data.get("web"), "web")
    _unknown(web, {"listen", "context_path", "read_header_timeout", "scrape_timeout",
                   "telemetry_path", "auth"}, "web")
    listen = _list(web.get("listen"), "web.listen") or [DEFAULT_LISTEN]
    cfg.listen = [Listener(_str(u, "web.listen[%d]" % i), "web.listen[%d]" % i)
                  for i, u in enumerate(listen)]
    cfg.context_path = _str(web.get("context_path", ""), "web.context_path").rstrip("/")
    if cfg.context_path and not cfg.context_path.startswith("/"):
        raise ConfigError("web.context_path", "must start with /")
    for option in ("read_header_timeout", "scrape_timeout"):
        if option in web:
            try:
                setattr(cfg, option, parse_duration(web[option], option))
            except SpecError as e:
                raise ConfigError("web." + option, e.reason) from None
    if "telemetry_path" in web:
        cfg.warnings.append("web.telemetry_path is ignored: every endpoint carries the "
                            "health metrics of its sources")
    cfg.users = _users(web.get("auth"), "web.auth", base)
    paths: Dict[str, int] = {}
    for i, item in enumerate(_list(data.get("reverse_exporters"), "reverse_exporters")):
        key = "reverse_exporters[%d]" % i
        item = _map(item, key)
        _unknown(item, {"path", "auth", "auth_type", "htpasswd_file", "exporters"}, key)
        path = _str(item.get("path", ""), key + ".path")
        if not path.startswith("/"):
            raise ConfigError(key + ".path", "must start with /")
        if path in paths:
            raise ConfigError(key + ".path", "%s is already reverse_exporters[%d]"
                              % (path, paths[path]))
        paths[path] = i
        ep = Endpoint(path)
        ep.users = _users(item.get("auth"), key + ".auth", base)
        if item.get("htpasswd_file"):
            ep.users.update(read_htpasswd(
                _resolve(base, _str(item["htpasswd_file"], key + ".htpasswd_file")),
                key + ".htpasswd_file"))
        _check_auth_type(item.get("auth_type"), key + ".auth_type", bool(ep.users or cfg.users))
        ep.specs = _exporters(item.get("exporters"), key + ".exporters", base)
        cfg.endpoints.append(ep)
    if not cfg.endpoints:
        raise ConfigError("reverse_exporters", "no endpoint configured")
    return cfg


def load_config(path: str) -> SidecarConfig:
    """Reads and validates the YAML file (PyYAML is imported here: standalone only)."""
    import yaml

    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(path, e.strerror or str(e)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark else ""
        raise ConfigError(path, "invalid YAML%s: %s" % (where, getattr(e, "problem", e))) \
            from None
    return parse_config(data, os.path.dirname(os.path.abspath(path)))

