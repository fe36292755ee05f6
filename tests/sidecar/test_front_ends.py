"""Both configuration front ends (moonraker.conf's `[prometheus exporter NAME]` sections and
the standalone YAML) return one type: a SidecarConfig of Endpoints of SourceSpecs."""
from __future__ import annotations

from typing import Any, Dict, List

from moonraker_prometheus.sidecar import Endpoint, SidecarConfig, SourceSpec, config_from_sections
from moonraker_prometheus.sidecar.config import parse_config
from tests.sidecar.test_moonraker_sections import sections

CONF = """
    [prometheus exporter node]
    url: http://127.0.0.1:9100/metrics?collect[]=cpu
    timeout: 2.5
    labels:
      site=lab
    drop:
      go_.*
    [prometheus exporter textfiles]
    type: file
    path: /var/lib/node_exporter/*.prom
    no_rewrite: True
    [prometheus exporter smart]
    type: exec_periodic
    command: /bin/true
    interval: 5m
    """
YAML = {"reverse_exporters": [{"path": "/metrics", "exporters": {
    "http": [{"name": "node", "address": "http://127.0.0.1:9100/metrics?collect[]=cpu",
              "timeout": "2500ms", "labels": {"site": "lab"}, "drop": ["go_.*"]}],
    "file": [{"name": "textfiles", "path": "/var/lib/node_exporter/*.prom",
              "no_rewrite": True}],
    "exec_cached": [{"name": "smart", "command": "/bin/true", "exec_interval": 300}],
}}]}


def options(specs: List[SourceSpec]) -> List[Dict[str, Any]]:
    """Each spec's kind, name, every option and the compiled patterns, as plain values."""
    return [dict({o.name: getattr(s, o.name) for o in s.options()}, kind=s.kind, name=s.name,
                 keep_re=[p.pattern for p in s.keep_re], drop_re=[p.pattern for p in s.drop_re])
            for s in specs]


def test_both_front_ends_return_one_config_type_with_equal_specs():
    from_conf = config_from_sections(sections(CONF))
    from_yaml = parse_config(YAML)
    for cfg in (from_conf, from_yaml):
        assert type(cfg) is SidecarConfig and cfg.warnings == []
        (endpoint,) = cfg.endpoints
        assert type(endpoint) is Endpoint
        assert all(type(s) is SourceSpec for s in endpoint.specs)
    assert from_conf.endpoints[0].path == ""  # the group: /server/metrics itself
    assert from_yaml.endpoints[0].path == "/metrics"
    assert options(from_conf.endpoints[0].specs) == options(from_yaml.endpoints[0].specs)


def test_each_group_of_sections_is_one_endpoint_in_order_of_first_use():
    cfg = config_from_sections(sections("""
        [prometheus exporter a]
        url: http://h/a
        group: disks
        [prometheus exporter b]
        url: http://h/b
        [prometheus exporter c]
        url: http://h/c
        group: disks
        """))
    assert [(e.path, [s.name for s in e.specs]) for e in cfg.endpoints] == [
        ("disks", ["a", "c"]), ("", ["b"])]
