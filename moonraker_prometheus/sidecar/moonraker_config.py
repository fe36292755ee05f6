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


def _secret(config: Any, option: str) -> Any:
    """A credential; `{secrets.section.key}` and other Moonraker templates are rendered."""
    raw = config.get(option, None)
    if raw is None or "{" not in raw or not hasattr(config, "gettemplate"):
        return raw
    return config.gettemplate(option).render()


def _read(config: Any, spec: SourceSpec) -> None:
    """Copies options from the section into spec; Moonraker's own parse errors propagate."""
    options = set(config.get_options())
    allowed = set(COMMON) | set(KIND_OPTIONS[spec.kind])
    unknown = sorted(options - allowed)
    if unknown:
        raise SpecError(unknown[0], "unknown option for type %s (allowed: %s)"
                        % (spec.kind, ", ".join(sorted(allowed))))
    spec.group = config.get("group", "")
    spec.labels = dict(config.getdict("labels", {}))
    spec.honor_labels = config.getboolean("honor_labels", False)
    spec.no_rewrite = config.getboolean("no_rewrite", False)
    if spec.no_rewrite and spec.labels:
        raise SpecError("labels", "no_rewrite passes the source through untouched; "
                        "remove labels or no_rewrite")
    spec.keep = list(config.getlist("keep", []))
    spec.drop = list(config.getlist("drop", []))
    if "timeout" in options:
        spec.timeout = parse_duration(config.get("timeout"), "timeout")
    spec.max_bytes = config.getint("max_bytes", spec.max_bytes)
    get = config.get
    if spec.kind in ("http", "unix"):
        spec.url = get("url", "")
        spec.socket = get("socket", "")
        spec.headers = dict(config.getdict("headers", {}))
        spec.username = _secret(config, "username")
        spec.password = _secret(config, "password")
        spec.bearer_token = _secret(config, "bearer_token")
        spec.ca_file = get("ca_file", None)
        spec.cert_file = get("cert_file", None)
        spec.key_file = get("key_file", None)
        spec.insecure_skip_verify = config.getboolean("insecure_skip_verify", False)
        spec.forward_url_params = config.getboolean("forward_url_params", False)
    elif spec.kind == "file":
        spec.path = get("path", "")
    else:
        spec.command = list(config.getlist("command", []))
        spec.shell = config.getboolean("shell", False)
        if "interval" in options:
            spec.interval = parse_duration(get("interval"), "interval")
        if "max_age" in options:
            spec.max_age = parse_duration(get("max_age"), "max_age")


def spec_from_section(config: Any) -> SourceSpec:
    section = config.get_name()
    name = section[len(PREFIX):].strip()
    kind = config.get("type", "http")
    if kind not in KINDS:
        raise SpecError("type", "must be one of %s, got %r" % ("|".join(KINDS), kind))
    spec = SourceSpec(name, kind)
    _read(config, spec)
    spec.validate()
    return spec


def sources_from_sections(sections: Sequence[Any]) -> Tuple[Dict[str, List[Source]], List[str]]:
    """Sources grouped by `group` ("" = the main /server/metrics), plus warnings."""
    groups: Dict[str, List[Source]] = {}
    warnings: List[str] = []
    for config in sections:
        section = config.get_name()
        try:
            spec = spec_from_section(config)
        except SpecError as e:
            warnings.append("[%s] option '%s': %s; section skipped"
                            % (section, e.option, e.reason))
            continue
        except config.error as e:
            warnings.append("[%s]: %s; section skipped" % (section, e))
            continue
        groups.setdefault(spec.group, []).append(build_source(spec))
    return groups, warnings
