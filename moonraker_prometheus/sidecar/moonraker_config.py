"""`[prometheus exporter NAME]` sections of moonraker.conf -> a SidecarConfig (spec.py), the
type the standalone YAML's front end (config.py) returns too: one Endpoint per `group`.

Takes duck-typed ConfigHelper objects (get, getint, getfloat, getboolean, getlist, getdict,
get_options, get_name, error) so this module never imports Moonraker. A bad section is
skipped with a warning naming section, option and reason; Moonraker keeps running.
"""
from __future__ import annotations

from typing import Any, Dict, Sequence

from .sources import new_spec
from .spec import (ARGV, DURATION, FLAG, INTEGER, MAPPING, PATH, SECRET, TEXT, WORDS, Endpoint,
                   Option, SidecarConfig, SourceSpec, SpecError, parse_duration)

PREFIX = "prometheus exporter"
# ConfigHelper getter of each option type (SECRET and DURATION are read as text first).
_GETTERS = {TEXT: "get", PATH: "get", SECRET: "get", DURATION: "get", FLAG: "getboolean",
            INTEGER: "getint", WORDS: "getlist", ARGV: "getlist", MAPPING: "getdict"}


def _get(config: Any, option: str, getter: str, *args: Any, secret: bool = False) -> Any:
    """config.<getter>(option, *args), Moonraker's parse errors turned into SpecError.

    Moonraker's messages repeat the section name and quote the value; ours name the option
    once and quote a value only if it cannot hold a secret.
    """
    try:
        return getattr(config, getter)(option, *args)
    except config.error as e:
        if secret:
            reason = "cannot be parsed (value not shown: it may hold a secret)"
            if getter == "getdict":
                reason = "write one Name=value per line (value not shown: it may hold a secret)"
            raise SpecError(option, reason) from None
        cause = e.__cause__
        raise SpecError(option, "cannot be parsed: %s" % (cause if cause is not None else
                                                          "not a valid value")) from None


def _secret(config: Any, option: str) -> Any:
    """A credential; `{secrets.section.key}` and other Moonraker templates are rendered."""
    raw = _get(config, option, "get", None, secret=True)
    if raw is None or "{" not in raw or not hasattr(config, "gettemplate"):
        return raw
    try:
        return config.gettemplate(option).render()
    except Exception:
        raise SpecError(option, "template cannot be rendered (check the secrets file and "
                        "the {secrets.section.option} name)") from None


def _value(config: Any, option: Option) -> Any:
    """One declared option of the section, by its type (SpecError when it cannot be
    parsed); called only for options the section sets."""
    if option.type == SECRET:
        return _secret(config, option.name)
    value = _get(config, option.name, _GETTERS[option.type], secret=option.secret)
    if option.type == DURATION:
        return parse_duration(value, option.name)
    if option.type in (WORDS, ARGV):
        return list(value)
    if option.type == MAPPING:
        return dict(value)
    return value


def spec_from_section(config: Any) -> SourceSpec:
    """The validated SourceSpec of one section; SpecError names the option and the reason.

    The section's `type` (default http) picks the kind; every option the kind declares
    (sources.KINDS) is read by its type, any other option is an error.
    """
    section = config.get_name()
    name = section[len(PREFIX):].strip()
    spec = new_spec(name, _get(config, "type", "get", "http"))
    declared = {o.name: o for o in spec.options()}
    present = set(config.get_options()) - {"type"}
    unknown = sorted(present - set(declared))
    if unknown:
        raise SpecError(unknown[0], "unknown option for type %s (allowed: %s)"
                        % (spec.kind, ", ".join(sorted(set(declared) | {"type"}))))
    for option in spec.options():
        if option.name in present:
            setattr(spec, option.name, _value(config, option))
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


def config_from_sections(sections: Sequence[Any]) -> SidecarConfig:
    """The sections' sources, one Endpoint per `group` in the order groups first appear (its
    `path` is the group: "" for the main /server/metrics), plus warnings.

    A bad section is skipped with a warning naming the section, the option and the reason
    (never a value that may hold a secret); so is a section whose exporter name (the section
    name after the prefix, trimmed) another section already uses.
    """
    cfg = SidecarConfig()
    endpoints: Dict[str, Endpoint] = {}
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
            cfg.warnings.append("[%s] option '%s': %s; section skipped"
                                % (section, e.option, e.reason))
            continue
        names[spec.name] = section
        endpoint = endpoints.get(spec.group)
        if endpoint is None:
            endpoint = endpoints[spec.group] = Endpoint(spec.group)
            cfg.endpoints.append(endpoint)
        endpoint.specs.append(spec)
    return cfg
