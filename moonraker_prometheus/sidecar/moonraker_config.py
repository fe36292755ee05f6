"""`[prometheus exporter NAME]` sections of moonraker.conf -> sources, grouped by endpoint.

Takes duck-typed ConfigHelper objects (get, getint, getfloat, getboolean, getlist, getdict,
get_options, get_name, error) so this module never imports Moonraker. A bad section is
skipped with a warning naming section, option and reason; Moonraker keeps running.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from .sources import Source, build_source
from .spec import COMMON, KIND_OPTIONS, KINDS, SourceSpec, SpecError, parse_duration

PREFIX = "prometheus exporter"
# Options whose values may hold a credential: never quoted in a warning.
SECRET_OPTIONS = ("url", "headers", "username", "password", "bearer_token")


def _get(config: Any, option: str, getter: str, *args: Any) -> Any:
    """config.<getter>(option, *args), Moonraker's parse errors turned into SpecError.

    Moonraker's messages repeat the section name and quote the value; ours name the option
    once and quote a value only if it cannot hold a secret.
    """
    try:
        return getattr(config, getter)(option, *args)
    except config.error as e:
        if option in SECRET_OPTIONS:
            reason = "cannot be parsed (value not shown: it may hold a secret)"
            if getter == "getdict":
                reason = "write one Name=value per line (value not shown: it may hold a secret)"
            raise SpecError(option, reason) from None
        cause = e.__cause__
        raise SpecError(option, "cannot be parsed: %s" % (cause if cause is not None else
                                                          "not a valid value")) from None


def _secret(config: Any, option: str) -> Any:
    """A credential; `{secrets.section.key}` and other Moonraker templates are rendered."""
    raw = _get(config, option, "get", None)
    if raw is None or "{" not in raw or not hasattr(config, "gettemplate"):
        return raw
    try:
        return config.gettemplate(option).render()
    except Exception:
        raise SpecError(option, "template cannot be rendered (check the secrets file and "
                        "the {secrets.section.option} name)") from None


def _duration(config: Any, option: str, options: Any, default: float) -> float:
    return parse_duration(_get(config, option, "get"), option) if option in options \
        else default


def _read(config: Any, spec: SourceSpec) -> None:
    """Copies options from the section into spec; every problem is a SpecError."""
    options = set(config.get_options())
    allowed = set(COMMON) | set(KIND_OPTIONS[spec.kind])
    unknown = sorted(options - allowed)
    if unknown:
        raise SpecError(unknown[0], "unknown option for type %s (allowed: %s)"
                        % (spec.kind, ", ".join(sorted(allowed))))
    spec.group = _get(config, "group", "get", "")
    spec.labels = dict(_get(config, "labels", "getdict", {}))
    spec.honor_labels = _get(config, "honor_labels", "getboolean", False)
    spec.no_rewrite = _get(config, "no_rewrite", "getboolean", False)
    if spec.no_rewrite and spec.labels:
        raise SpecError("labels", "no_rewrite passes the source through untouched; "
                        "remove labels or no_rewrite")
    spec.keep = list(_get(config, "keep", "getlist", []))
    spec.drop = list(_get(config, "drop", "getlist", []))
    spec.timeout = _duration(config, "timeout", options, spec.timeout)
    spec.max_bytes = _get(config, "max_bytes", "getint", spec.max_bytes)
    if spec.kind in ("http", "unix"):
        spec.url = _get(config, "url", "get", "")
        spec.socket = _get(config, "socket", "get", "")
        spec.headers = dict(_get(config, "headers", "getdict", {}))
        spec.username = _secret(config, "username")
        spec.password = _secret(config, "password")
        spec.bearer_token = _secret(config, "bearer_token")
        spec.ca_file = _get(config, "ca_file", "get", None)
        spec.cert_file = _get(config, "cert_file", "get", None)
        spec.key_file = _get(config, "key_file", "get", None)
        spec.insecure_skip_verify = _get(config, "insecure_skip_verify", "getboolean", False)
        spec.forward_url_params = _get(config, "forward_url_params", "getboolean", False)
    elif spec.kind == "file":
        spec.path = _get(config, "path", "get", "")
    else:
        spec.command = list(_get(config, "command", "getlist", []))
        spec.shell = _get(config, "shell", "getboolean", False)
        spec.interval = _duration(config, "interval", options, spec.interval)
        spec.max_age = _duration(config, "max_age", options, spec.max_age)


def spec_from_section(config: Any) -> SourceSpec:
    """The validated SourceSpec of one section; SpecError names the option and the reason."""
    section = config.get_name()
    name = section[len(PREFIX):].strip()
    kind = _get(config, "type", "get", "http")
    if kind not in KINDS:
        raise SpecError("type", "must be one of %s, got %r" % ("|".join(KINDS), kind))
    spec = SourceSpec(name, kind)
    _read(config, spec)
    spec.validate()
    return spec


def _mark_read(config: Any) -> None:
    """Marks every option of a skipped section as read, so Moonraker does not report them
    as unparsed, quoting their values (a password among them)."""
    for option in config.get_options():
        try:
            config.get(option, None)
        except Exception:
            pass


def sources_from_sections(sections: Sequence[Any]) -> Tuple[Dict[str, List[Source]], List[str]]:
    """Sources grouped by `group` ("" = the main /server/metrics), plus warnings.

    A bad section is skipped with a warning naming the section, the option and the reason
    (never a value that may hold a secret); so is a section whose exporter name (the section
    name after the prefix, trimmed) another section already uses.
    """
    groups: Dict[str, List[Source]] = {}
    warnings: List[str] = []
    names: Dict[str, str] = {}  # exporter name -> section
    for config in sections:
        section = config.get_name()
        try:
            spec = spec_from_section(config)
            if spec.name in names:
                raise SpecError("name", "exporter name %r is already used by [%s]"
                                % (spec.name, names[spec.name]))
        except SpecError as e:
            _mark_read(config)
            warnings.append("[%s] option '%s': %s; section skipped"
                            % (section, e.option, e.reason))
            continue
        names[spec.name] = section
        groups.setdefault(spec.group, []).append(build_source(spec))
    return groups, warnings
