"""A source kind is one Source class and one row of sources.KINDS: both configuration front
ends (moonraker.conf sections and the standalone YAML) read the options it declares."""
from __future__ import annotations

import pytest

from moonraker_prometheus.sidecar import reasons, sources, sources_from_sections
from moonraker_prometheus.sidecar.config import ConfigError, parse_config
from moonraker_prometheus.sidecar.sources import KINDS, Fetched, FetchError, Source
from moonraker_prometheus.sidecar.spec import DURATION, INTEGER, TEXT, Option, SpecError
from tests.sidecar.test_moonraker_sections import sections


class TcpSource(Source):
    """A made-up kind: reads an exposition from a raw TCP port."""

    options = (Option("address", TEXT, "127.0.0.1", yaml="host"),
               Option("port", INTEGER, 0),
               Option("linger", DURATION, 1.0))
    yaml_kinds = ("tcp",)

    @staticmethod
    def check(spec) -> None:
        if not 0 < spec.port < 65536:
            raise SpecError("port", "must be from 1 to 65535")

    async def fetch(self, params=None, timeout=None) -> Fetched:
        raise FetchError(reasons.CONNECT, "never fetched here: only its options are read")


@pytest.fixture
def tcp_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "tcp", TcpSource)


def test_a_new_kind_is_read_from_moonraker_conf_by_its_declared_options(tcp_kind):
    groups, warnings = sources_from_sections(sections("""
        [prometheus exporter scale]
        type: tcp
        port: 9100
        linger: 1m30s
        labels:
          room=lab
        [prometheus exporter bad]
        type: tcp
        port: 0
        [prometheus exporter typo]
        type: tcp
        prot: 9100
        """))
    (scale,) = groups[""]
    assert isinstance(scale, TcpSource)
    spec = scale.spec
    assert (spec.address, spec.port, spec.linger, spec.labels) == (
        "127.0.0.1", 9100, 90.0, {"room": "lab"})
    assert warnings[0].startswith("[prometheus exporter bad] option 'port': must be from 1")
    assert warnings[1].startswith("[prometheus exporter typo] option 'prot': unknown option "
                                  "for type tcp")


def test_a_new_kind_is_read_from_the_yaml_by_its_declared_keys(tcp_kind):
    cfg = parse_config({"reverse_exporters": [{"path": "/metrics", "exporters": {
        "tcp": [{"name": "scale", "host": "10.0.0.2", "port": 9100, "timeout": "2s"}]}}]})
    (spec,) = cfg.endpoints[0].specs
    assert (spec.kind, spec.address, spec.port, spec.linger, spec.timeout) == (
        "tcp", "10.0.0.2", 9100, 1.0, 2.0)
    with pytest.raises(ConfigError, match=r"exporters\.tcp\[0\]\.port: must be from 1"):
        parse_config({"reverse_exporters": [{"path": "/metrics", "exporters": {
            "tcp": [{"name": "scale", "port": 0}]}}]})
    with pytest.raises(ConfigError, match=r"exporters\.tcp\[0\]\.address: unknown key"):
        parse_config({"reverse_exporters": [{"path": "/metrics", "exporters": {
            "tcp": [{"name": "scale", "address": "x", "port": 1}]}}]})


def test_every_kind_declares_each_option_once_and_every_yaml_kind_is_unique():
    yaml_kinds = [y for source in KINDS.values() for y in source.yaml_kinds]
    assert len(yaml_kinds) == len(set(yaml_kinds))
    for kind in KINDS:
        names = [o.name for o in sources.new_spec("x", kind).options()]
        assert len(names) == len(set(names)), kind


def test_both_front_ends_refuse_the_same_options_with_the_same_reason():
    reason = "no_rewrite passes the source through untouched; remove labels or no_rewrite"
    _, warnings = sources_from_sections(sections("""
        [prometheus exporter node]
        url: http://127.0.0.1:9100/metrics
        no_rewrite: True
        labels:
          room=lab
        """))
    assert warnings == ["[prometheus exporter node] option 'labels': %s; section skipped"
                        % reason]
    with pytest.raises(ConfigError) as e:
        parse_config({"reverse_exporters": [{"path": "/metrics", "exporters": {"http": [
            {"name": "node", "address": "http://127.0.0.1:9100/metrics", "no_rewrite": True,
             "labels": {"room": "lab"}}]}}]})
    assert str(e.value) == "reverse_exporters[0].exporters.http[0].labels: " + reason
