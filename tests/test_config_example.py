"""moonraker.conf.example lists exactly the options the component reads.

The options read are recorded by running the component's own option parsing
(`Options.load`, and the `[prometheus exporter NAME]` reader for every source type) against
a config object that notes every option asked for, so a new option in the code fails this
test until the example documents it.
"""
from __future__ import annotations

import os
import re
from typing import Any, Dict, Set

import pytest

from moonraker_prometheus.options import Options
from moonraker_prometheus.sidecar.moonraker_config import spec_from_section
from moonraker_prometheus.sidecar.sources import KINDS, new_spec
from moonraker_prometheus.sidecar.spec import SpecError

pytestmark = pytest.mark.unit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OPTION = re.compile(r"^#?([a-z_]+):")


class RecordingConfig:
    """Duck-typed Moonraker ConfigHelper: answers defaults and records each option read."""

    class error(Exception):  # noqa: N801 (Moonraker's name)
        pass

    def __init__(self, name: str, options: Set[str] = frozenset(), kind: str = "http"):
        self.name, self.options, self.kind = name, set(options), kind
        self.read: Set[str] = set()

    def get_name(self) -> str:
        return self.name

    def get_options(self) -> Dict[str, str]:
        return {option: "" for option in self.options}

    def get(self, option: str, default: Any = ..., **_: Any) -> Any:
        self.read.add(option)
        if option == "type":
            return self.kind
        return "5" if default is ... else default

    def _reader(empty: Any):  # noqa: N805 (builds the typed getters below)
        def read(self, option: str, default: Any = ..., *args: Any, **kwargs: Any) -> Any:
            self.read.add(option)
            return empty if default is ... else default
        return read

    getboolean = _reader(False)
    getfloat = _reader(5.0)
    getint = _reader(5)
    getlist = _reader([])
    getdict = _reader({})


def documented() -> Dict[str, Set[str]]:
    """Options per section of moonraker.conf.example ("exporter" for the exporter block)."""
    sections: Dict[str, Set[str]] = {}
    current = None
    with open(os.path.join(REPO, "moonraker.conf.example"), encoding="utf-8") as f:
        for line in f:
            header = re.match(r"^#?\[([^\]]+)\]", line)
            if header:
                name = header.group(1)
                current = "exporter" if name.startswith("prometheus exporter") else name
                sections.setdefault(current, set())
            elif current is not None and OPTION.match(line):
                sections[current].add(OPTION.match(line).group(1))
    return sections


def test_every_prometheus_option_the_component_reads_is_documented():
    config = RecordingConfig("prometheus")
    Options.load(config)
    assert config.read and documented()["prometheus"] == config.read


def test_every_exporter_option_of_every_type_is_documented():
    read: Set[str] = set()
    accepted = {"type"}
    for kind in KINDS:
        options = {o.name for o in new_spec(kind, kind).options()}
        config = RecordingConfig(f"prometheus exporter {kind}", options, kind)
        try:
            spec_from_section(config)
        except SpecError:
            pass  # the defaults are not a valid source; every option was read by then
        read |= config.read
        accepted |= options
    assert read == accepted, "the options read and the options accepted differ"
    assert documented()["exporter"] == read
