"""`[prometheus exporter NAME]` sections, read through Moonraker's real ConfigHelper."""
from __future__ import annotations

import logging
import re
import textwrap
from typing import Dict, List, Tuple

import pytest

from moonraker_prometheus.sidecar import SourceSpec, config_from_sections
from moonraker_prometheus.sidecar.sources.exec import command_argv

confighelper = pytest.importorskip("moonraker.confighelper")


SECRETS = {"camera": {"token": "s3cret-token"}}


class _Template:
    """Stands in for Moonraker's template component: renders {secrets.a.b} only."""

    def __init__(self, text: str) -> None:
        self.text = text

    def render(self, context=None) -> str:
        return re.sub(r"\{secrets\.(\w+)\.(\w+)\}",
                      lambda m: SECRETS[m.group(1)][m.group(2)], self.text)


class _Server:
    """The Server methods ConfigHelper calls while reading options."""

    def __init__(self) -> None:
        self.warnings = []

    def add_warning(self, msg: str, *args, **kwargs) -> None:
        self.warnings.append(msg)

    def load_component(self, config, name):
        assert name == "template"
        return type("TemplateFactory", (), {
            "create_template": staticmethod(lambda text, is_async=False: _Template(text))})()


def load(text: str):
    """(root ConfigHelper, its server, the exporter sections), sharing one parsed record."""
    source = confighelper.ConfigSourceWrapper()
    source.get_parser().read_string(textwrap.dedent(text))
    server = _Server()
    parsed = {}
    root = confighelper.ConfigHelper(server, source, "server", parsed)
    return root, server, [confighelper.ConfigHelper(server, source, name, parsed)
                          for name in source.get_parser().sections()
                          if name.startswith("prometheus exporter")]


def sections(text: str):
    return load(text)[2]


def read_sections(configs) -> Tuple[Dict[str, List[SourceSpec]], List[str]]:
    """The sections' specs by group (each Endpoint's path) and the warnings."""
    cfg = config_from_sections(configs)
    return {e.path: e.specs for e in cfg.endpoints}, cfg.warnings


def test_sections_become_sources_grouped_by_endpoint(tmp_path):
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho a 1\n")
    script.chmod(0o755)
    groups, warnings = read_sections(sections("""
        [prometheus exporter node]
        url: http://127.0.0.1:9100/metrics?collect[]=cpu
        timeout: 2.5
        labels:
          site=lab
          room=basement
        headers:
          X-Token=abc
        drop:
          go_.*
        [prometheus exporter scale]
        type: exec
        command:
          %s
          --format
          prometheus text
        [prometheus exporter smart]
        type: exec_periodic
        command: %s
        interval: 5m
        group: disks
        [prometheus exporter textfiles]
        type: file
        path: /var/lib/node_exporter/*.prom
        no_rewrite: True
        [prometheus exporter sock]
        type: unix
        socket: /run/x.sock
        bearer_token: {secrets.camera.token}
        """ % (script, script)))
    assert warnings == []
    assert sorted(groups) == ["", "disks"]
    main = {s.name: s for s in groups[""]}
    assert list(main) == ["node", "scale", "textfiles", "sock"]
    node = main["node"]
    assert node.url.endswith("?collect[]=cpu") and node.timeout == 2.5
    assert node.labels == {"site": "lab", "room": "basement"}
    assert node.headers == {"X-Token": "abc"} and node.drop == ["go_.*"]
    assert command_argv(main["scale"]) == [str(script), "--format", "prometheus text"]
    assert main["textfiles"].no_rewrite is True
    assert main["sock"].url == "/metrics" and main["sock"].bearer_token == "s3cret-token"
    smart = groups["disks"][0]
    assert smart.interval == 300 and smart.max_age == 900


@pytest.mark.parametrize("body, option, reason", [
    ("url: ftp://x/metrics", "url", "http:// or https://"),
    ("url: http://x/m\nlabels:\n  exporter_name=x", "labels", "exporter_name"),
    ("url: http://x/m\nlabels:\n  bad-name=x", "labels", "not a valid label name"),
    ("url: http://x/m\ntimeout: soon", "timeout", "duration"),
    ("url: http://x/m\ncommand: /bin/true", "command", "unknown option for type http"),
    ("type: exec_periodic\ncommand: /bin/true\ninterval: 0.1", "interval", "at least 1"),
    ("type: exec\ncommand: /no/such/program", "command", "not an executable"),
    ("type: gopher", "type", "must be one of"),
    ("url: http://x/m\ndrop: (", "drop", "bad regular expression"),
    ("url: http://x/m\nkey_file: /etc/hostname", "key_file", "needs cert_file"),
    ("url: http://x/m\nno_rewrite: True\nlabels:\n  a=b", "labels", "no_rewrite"),
    ("url: http://x/m\ngroup: a/b", "group", "URL path"),
    ("type: exec_periodic\ncommand: /bin/true\ninterval: inf", "interval", "finite"),
    ("type: exec_periodic\ncommand: /bin/true\nmax_age: nan", "max_age", "finite"),
    ("url: http://x/m\nmax_bytes: 1000000000000", "max_bytes", "at most"),
    ("url: http://x/m\ntimeout: -1", "timeout", "finite duration of at least 0"),
])
def test_a_bad_section_is_skipped_with_a_warning_naming_section_option_and_reason(
        body, option, reason):
    text = "[prometheus exporter bad]\n%s\n[prometheus exporter good]\nurl: http://h/m\n" % body
    groups, warnings = read_sections(sections(text))
    assert [s.name for s in groups[""]] == ["good"]
    assert len(warnings) == 1
    assert warnings[0].startswith("[prometheus exporter bad]")
    assert "'%s'" % option in warnings[0] and reason in warnings[0]


def test_moonraker_parse_errors_are_warnings_naming_the_section_once():
    groups, warnings = read_sections(sections(
        "[prometheus exporter bad]\nurl: http://h/m\nmax_bytes: lots\n"))
    assert groups == {}
    assert warnings == ["[prometheus exporter bad] option 'max_bytes': cannot be parsed: "
                        "invalid literal for int() with base 10: 'lots'; section skipped"]


def test_names_colliding_after_trimming_keep_the_first_section_and_warn():
    groups, warnings = read_sections(sections(
        "[prometheus exporter dup]\nurl: http://a/m\n"
        "[prometheus exporter  dup]\nurl: http://b/m\n"
        "[prometheus exporter dup ]\nurl: http://c/m\ngroup: other\n"))
    assert [(s.name, s.url) for s in groups[""]] == [("dup", "http://a/m")]
    assert "other" not in groups
    assert warnings == [
        "[prometheus exporter  dup] option 'name': exporter name 'dup' is already used by "
        "[prometheus exporter dup]; section skipped",
        "[prometheus exporter dup ] option 'name': exporter name 'dup' is already used by "
        "[prometheus exporter dup]; section skipped"]


SECRET = "hunter2TOPSECRET"
# Every way a section holding a credential can be malformed (one section each).
SECRET_SECTIONS = {
    "unknown type": "type: htpp\nurl: http://u:%s@h/m\npassword: %s\nusername: u" % (SECRET, SECRET),
    "colon header": "url: http://h/m\nheaders:\n  Authorization: Bearer %s" % SECRET,
    "token as name": "url: http://h/m\nheaders:\n  Authorization: Bearer %s=" % SECRET,
    "bad scheme": "url: ftp://user:%s@h/m?token=%s" % (SECRET, SECRET),
    "no host": "url: http://user:%s@/m" % SECRET,
    "bad port": "url: http://user:%s@h:99999999/m" % SECRET,
    "unknown option": "url: http://h/m\nbearer_token: %s\npasswrod: %s" % (SECRET, SECRET),
    "password without user": "url: http://h/m\npassword: %s" % SECRET,
    "token and user": "url: http://h/m\nusername: u\nbearer_token: %s" % SECRET,
    "bad template": "url: http://h/m\nusername: u\npassword: {secrets.nope.%s}" % SECRET,
    "misplaced option": "type: file\npath: /x\npassword: %s" % SECRET,
    "bad timeout": "url: http://h/m\nbearer_token: %s\ntimeout: soon" % SECRET,
    "header line break": "url: http://h/m\nheaders:\n  X-Token=%s" % SECRET,
    "unix bad path": "type: unix\nsocket: run.sock\nbearer_token: %s" % SECRET,
    "exec with secret arg": "type: exec\ncommand:\n  /no/such\n  --password=%s" % SECRET,
}


def test_no_malformed_section_puts_a_secret_in_a_warning_or_the_log(caplog):
    text = "".join("[prometheus exporter %s]\n%s\n" % (name.replace(" ", "_"), body)
                   for name, body in SECRET_SECTIONS.items())
    text += "[prometheus exporter good]\nurl: http://h/m\n"
    root, server, configs = load(text)
    with caplog.at_level(logging.DEBUG):
        groups, warnings = read_sections(configs)
        root.validate_config()  # Moonraker's check for options nobody read
    skipped = {w.split("]")[0][len("[prometheus exporter "):] for w in warnings}
    valid = {"header_line_break"}  # a value with '=' in it is fine
    assert skipped == {n.replace(" ", "_") for n in SECRET_SECTIONS} - valid
    assert [s.name for s in groups[""]] == ["header_line_break", "good"]
    everything = warnings + server.warnings + [r.getMessage() for r in caplog.records]
    leaks = [w for w in everything if SECRET in w or "hunter2" in w]
    assert leaks == []
    assert server.warnings == []  # every option was read: nothing reported as unparsed
