"""A source kind is one Source class and one row of sources.KINDS: both configuration front
ends (moonraker.conf sections and the standalone YAML) read the options it declares.

The kind tested here is docs/contributing.md's Recipe 3 example, run as the file the recipe
says to write and registered under the row the recipe gives: the recipe works as written."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import textwrap
import time
import types
from typing import Tuple

import pytest

from moonraker_prometheus.sidecar import build_source, reasons, sources
from moonraker_prometheus.sidecar.config import ConfigError, parse_config
from moonraker_prometheus.sidecar.sources import KINDS, FetchError
from tests.sidecar.test_moonraker_sections import read_sections, sections

CONTRIBUTING = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs", "contributing.md")


def recipe() -> Tuple[str, type]:
    """(the kind's name, its class) from Recipe 3: its python block run as the module it
    names (sidecar/sources/tcp.py, relative imports and all), and its `KINDS` row."""
    with open(CONTRIBUTING, encoding="utf-8") as f:
        text = f.read()
    text = text[text.index("## Recipe 3"):]
    code = textwrap.dedent(re.search(r"```python\n(.*?)```", text, re.DOTALL).group(1))
    path = re.search(r"\*\*Write\*\* `sidecar/sources/(\w+)\.py`", text).group(1)
    kind, name = re.search(r'one row `"(\w+)": (\w+)` in `KINDS`', text).groups()
    module = types.ModuleType("moonraker_prometheus.sidecar.sources." + path)
    module.__package__ = "moonraker_prometheus.sidecar.sources"
    exec(compile(code, CONTRIBUTING + " (Recipe 3)", "exec"), module.__dict__)
    return kind, getattr(module, name)


KIND, RecipeSource = recipe()


@pytest.fixture
def recipe_kind(monkeypatch):
    assert KIND not in KINDS, f"Recipe 3's made-up kind {KIND!r} is a real kind now"
    monkeypatch.setitem(KINDS, KIND, RecipeSource)


def test_the_recipe_s_kind_is_read_from_moonraker_conf_by_its_declared_options(recipe_kind):
    groups, warnings = read_sections(sections("""
        [prometheus exporter scale]
        type: tcp
        port: 9100
        timeout: 1m30s
        labels:
          room=lab
        [prometheus exporter bad]
        type: tcp
        port: 0
        [prometheus exporter typo]
        type: tcp
        prot: 9100
        """))
    (spec,) = groups[""]
    assert spec.source is RecipeSource and isinstance(build_source(spec), RecipeSource)
    assert (spec.host, spec.port, spec.timeout, spec.labels) == (
        "127.0.0.1", 9100, 90.0, {"room": "lab"})
    assert warnings[0].startswith("[prometheus exporter bad] option 'port': must be from 1")
    assert warnings[1].startswith("[prometheus exporter typo] option 'prot': unknown option "
                                  "for type tcp")


def yaml_spec(**exporter):
    cfg = parse_config({"reverse_exporters": [{"path": "/metrics", "exporters": {
        "tcp": [{"name": "scale", **exporter}]}}]})
    (spec,) = cfg.endpoints[0].specs
    return spec


def test_the_recipe_s_kind_is_read_from_the_yaml_by_its_declared_keys(recipe_kind):
    spec = yaml_spec(address="10.0.0.2", port=9100, timeout="2s")
    assert (spec.kind, spec.host, spec.port, spec.timeout) == ("tcp", "10.0.0.2", 9100, 2.0)
    with pytest.raises(ConfigError, match=r"exporters\.tcp\[0\]\.port: must be from 1"):
        yaml_spec(port=0)
    with pytest.raises(ConfigError, match=r"exporters\.tcp\[0\]\.host: unknown key"):
        yaml_spec(host="x", port=1)  # its YAML spelling is `address`


BODY = b"# TYPE scale_grams gauge\nscale_grams 812.5\n"


def test_the_recipe_s_kind_fetches_a_body_and_names_each_failure(recipe_kind):
    """A good backend; one refusing connections (connect); one that never ends its body,
    given the scrape's budget left (timeout, within that budget); a body above max_bytes
    (oversize)."""
    async def answer(reader, writer):
        writer.write(BODY)
        await writer.drain()
        writer.close()

    async def hang(reader, writer):
        await reader.read()  # until the source gives up and closes
        writer.close()

    async def failure(port, budget=5.0, **options):
        with pytest.raises(FetchError) as e:
            await build_source(yaml_spec(port=port, **options)).fetch(None, budget)
        return e.value.reason

    async def run():
        good = await asyncio.start_server(answer, "127.0.0.1", 0)
        slow = await asyncio.start_server(hang, "127.0.0.1", 0)
        good_port = good.sockets[0].getsockname()[1]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed = s.getsockname()[1]
        try:
            fetched = await build_source(yaml_spec(port=good_port)).fetch(None, 5.0)
            assert fetched.bodies == [BODY]
            assert await failure(closed) == reasons.CONNECT
            started = time.monotonic()
            assert await failure(slow.sockets[0].getsockname()[1], budget=0.2) \
                == reasons.TIMEOUT
            assert time.monotonic() - started < 1.0
            assert await failure(good_port, max_bytes=10) == reasons.OVERSIZE
        finally:
            for server in (good, slow):
                server.close()
                await server.wait_closed()

    asyncio.run(run())


def test_every_kind_declares_each_option_once_and_every_yaml_kind_is_unique():
    yaml_kinds = [y for source in KINDS.values() for y in source.yaml_kinds]
    assert len(yaml_kinds) == len(set(yaml_kinds))
    for kind in KINDS:
        names = [o.name for o in sources.new_spec("x", kind).options()]
        assert len(names) == len(set(names)), kind


def test_both_front_ends_refuse_the_same_options_with_the_same_reason():
    reason = "no_rewrite passes the source through untouched; remove labels or no_rewrite"
    _, warnings = read_sections(sections("""
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
