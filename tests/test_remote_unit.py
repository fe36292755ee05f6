"""The central exporter's parts that need no printer: target addresses, the YAML config and
file_sd files, failure reasons, credentials, and the one subscription per connection."""
from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl
import sys
import time
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Callable, Dict, List, Optional

import pytest
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application
from tornado.websocket import WebSocketHandler

from moonraker_prometheus.remote.client import (BATCH_BYTES, Bounds, Credentials,
                                                ProbeFailure, RpcError, classify)
from moonraker_prometheus.remote.config import load_config, load_targets_file
from moonraker_prometheus.remote.host import EXTRA_FIELDS, RemoteHost
from moonraker_prometheus.remote.target import normalize_target
from moonraker_prometheus.sidecar.config import ConfigError
from simulator.procs import until

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("raw, expected", [
    ("printer.local:7125", "printer.local:7125"),
    ("Printer.Local:80", "printer.local:80"),
    ("192.168.1.20:7125", "192.168.1.20:7125"),
    ("[fd00::2]:7125", "[fd00::2]:7125"),
    ("voron", "voron:7125"),
    ("http://printer.local:7125", None),
    ("printer.local:7125/websocket", None),
    ("user:pw@printer.local:7125", None),
    ("printer.local:0", None),
    ("printer.local:70000", None),
    ("-printer:7125", None),
    ("a" * 301, None),
    ("printer.local:7125?x=1", None),
])
def test_a_target_is_host_and_port_only(raw, expected):
    assert normalize_target(raw) == expected


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_the_config_lists_targets_with_their_settings_and_files_beside_it(tmp_path):
    cfg = load_config(write(tmp_path, "remote.yml", """
max_targets: 5
idle_timeout: 60
max_entries: 2000
max_string: 1024
targets:
  - address: Voron.local:7125
    name: voron
    tls: true
    ca_file: ca.pem
    api_key_file: voron.key
  - address: ender.local
    username: exporter
    password_file: secrets/ender.password
"""))
    assert cfg.max_targets == 5 and cfg.limits.idle_seconds == 60.0
    assert (cfg.limits.max_entries, cfg.limits.max_string) == (2000, 1024)
    voron, ender = cfg.targets["voron.local:7125"], cfg.targets["ender.local:7125"]
    assert voron.name == "voron" and voron.tls
    assert voron.ca_file == str(tmp_path / "ca.pem")
    assert voron.credentials.api_key_file == str(tmp_path / "voron.key")
    assert ender.credentials.password_file == str(tmp_path / "secrets" / "ender.password")
    assert "voron.key" not in repr(voron.credentials)


@pytest.mark.parametrize("text, key", [
    ("nonsense: 1\n", "nonsense"),
    ("max_targets: 0\n", "max_targets"),
    ("max_message_size: 1000000000\n", "max_message_size"),
    ("max_entries: 10\n", "max_entries"),
    ("max_string: 1\n", "max_string"),
    ("targets:\n  - address: http://x:1\n", "targets[0].address"),
    ("targets:\n  - address: x:1\n    password: hunter2\n", "targets[0].password"),
    ("targets:\n  - address: x:1\n    username: u\n", "targets[0]"),
    ("targets:\n  - address: x:1\n    tls: yes please\n", "targets[0].tls"),
    ("targets:\n  - address: x:1\n  - address: X:1\n", "targets[1].address"),
    ("targets:\n  - address: x:1\n    ca_file: ca.pem\n", "targets[0].ca_file"),
    ("tls_server_config:\n  cert_file: a.crt\n", "tls_server_config.key_file"),
    ("basic_auth_users:\n  prometheus: plaintext\n", "basic_auth_users.prometheus"),
])
def test_a_broken_config_names_its_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, "remote.yml", text))
    assert str(error.value).startswith(key), str(error.value)


def test_an_address_listed_twice_names_both_entries(tmp_path):
    with pytest.raises(ConfigError, match=r"x:1 is listed twice \(also targets\[0\]\)"):
        load_config(write(tmp_path, "remote.yml",
                          "targets:\n  - address: x:1\n  - address: X:1\n"))


def test_targets_files_are_prometheus_file_sd_in_json_or_yaml(tmp_path):
    json_file = write(tmp_path, "targets.json", '[{"targets": ["a.local:7125", "b:1"], '
                                                '"labels": {"site": "x"}}]')
    yaml_file = write(tmp_path, "targets.yml", "- targets: [c.local:7125]\n")
    assert load_targets_file(json_file) == ["a.local:7125", "b:1"]
    assert load_targets_file(yaml_file) == ["c.local:7125"]
    with pytest.raises(ConfigError, match="is not HOST:PORT"):
        load_targets_file(write(tmp_path, "bad.json", '[{"targets": ["http://a/"]}]'))


@pytest.mark.parametrize("error, reason", [
    (ConnectionRefusedError(), "refused"),
    (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 7125, 0, 0), "
             "[Errno 111] Connect call failed ('127.0.0.1', 7125)"), "refused"),
    (socket.gaierror(-2, "Name or service not known"), "dns"),
    (ssl.SSLCertVerificationError(1, "certificate verify failed"), "tls"),
    (HTTPClientError(401), "auth"),
    (HTTPClientError(502), "http_error"),
    (asyncio.TimeoutError(), "timeout"),
    (OSError(113, "No route to host"), "unreachable"),
])
def test_each_failure_has_its_reason(error, reason):
    assert classify(error).reason == reason


def test_moonrakers_unauthorized_answers_are_refused_credentials():
    assert RpcError("server.info", -32602, "Unauthorized").refused_credentials()
    assert RpcError("server.info", 401, "Unauthorized").refused_credentials()
    assert not RpcError("server.info", -32601, "Method not found").refused_credentials()


def test_the_api_key_is_read_from_its_file_at_each_connection(tmp_path):
    key = tmp_path / "key"
    credentials = Credentials(api_key_file=str(key))

    async def headers() -> Dict[str, str]:
        return await credentials.headers("http://x", None, None, 1.0)  # type: ignore[arg-type]

    key.write_text("first\n")
    assert asyncio.run(headers()) == {"X-Api-Key": "first"}
    key.write_text("rotated\n")
    assert asyncio.run(headers()) == {"X-Api-Key": "rotated"}
    key.unlink()
    with pytest.raises(ProbeFailure) as failure:
        asyncio.run(headers())
    assert failure.value.reason == "auth" and "rotated" not in str(failure.value)


class RecordingConnection:
    """Answers printer.objects.subscribe with a status for every object asked."""

    def __init__(self) -> None:
        self.calls: List[Any] = []
        self.bounds = Bounds(max_entries=100, max_string=256, name="printer")

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        self.calls.append((method, params))
        objects = (params or {}).get("objects", {})
        return {"eventtime": 1.0, "status": {obj: {"x": 1} for obj in objects}}


def test_one_subscription_per_connection_holds_every_collectors_fields():
    conn = RecordingConnection()

    async def run() -> Any:
        host = RemoteHost(conn, "printer")  # type: ignore[arg-type]
        first = await host.subscribe_objects({"extruder": ["temperature"]}, lambda *_: None)
        second = await host.subscribe_objects({"extruder": ["target"], "mmu": None}, None)
        return first, second

    first, second = asyncio.run(run())
    assert set(first) == {"extruder"} and set(second) == {"extruder", "mmu"}
    asked = conn.calls[-1][1]["objects"]
    assert asked["extruder"] == ["target", "temperature"] and asked["mmu"] is None
    for obj, fields in EXTRA_FIELDS.items():
        assert set(fields) <= set(asked[obj])


class OldMoonraker(RecordingConnection):
    """A Moonraker whose proc_stats endpoint does not exist."""

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        if method == "machine.proc_stats":
            raise RpcError(method, -32601, "Method not found")
        if method == "server.info":
            return {"klippy_connected": False, "klippy_state": "disconnected",
                    "components": ["proc_stats"], "moonraker_version": "v0.7.1"}
        return {}


def test_a_method_an_old_moonraker_lacks_is_named_and_its_families_absent():
    async def loaded() -> RemoteHost:
        host = RemoteHost(OldMoonraker(), "printer")  # type: ignore[arg-type]
        await host.load()
        return host

    host = asyncio.run(loaded())
    assert host.unavailable == {"machine.proc_stats": "Method not found"}
    assert host.proc_stats() is None and host.network_stats() is None


@asynccontextmanager
async def websocket_server(handler: type, **settings: Any) -> AsyncIterator[str]:
    """A real tornado server of `handler` at /websocket on a free port of 127.0.0.1, for the
    block (`settings`: the tornado Application's); yields its HOST:PORT."""
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application([("/websocket", handler)], **settings))
    server.add_sockets(sockets)
    try:
        yield "127.0.0.1:%d" % sockets[0].getsockname()[1]
    finally:
        server.stop()


@asynccontextmanager
async def target_on(handler: type) -> AsyncIterator[Any]:
    """A remote exporter's Target (moonraker_prometheus.remote.target) for a real tornado
    server of `handler` (websocket_server()), closed after the block."""
    from moonraker_prometheus.remote.target import Limits, Target, TargetSpec

    async with websocket_server(handler) as address:
        target = Target(TargetSpec(address), "test", Limits())
        try:
            yield target
        finally:
            await target.close()


def test_a_message_over_the_size_limit_closes_the_connection():
    """A real tornado websocket server answering with 100 kB; the limit is 64 KiB."""

    from moonraker_prometheus.remote.client import connect

    class Big(WebSocketHandler):
        def on_message(self, message: Any) -> None:
            self.write_message('{"jsonrpc": "2.0", "id": 1, "result": "%s"}' % ("x" * 100000))

    async def run() -> ProbeFailure:
        async with websocket_server(Big) as address:
            conn = await connect(address, Credentials(), lambda *_: None, max_message_size=65536)
            with pytest.raises(ProbeFailure) as failure:
                await conn.call("server.info")
            await conn.close()
            return failure.value

    assert asyncio.run(run()).reason == "message_too_large"


def test_messages_are_handled_as_they_arrive_whole_or_in_fragments():
    """A real websockets server sending a notification in one frame, one in three frames
    (a fragmented message) and the answer to a call: each reaches the Connection whole,
    in order, and the call gets its answer."""
    from websockets.asyncio.server import serve

    from moonraker_prometheus.remote.client import connect

    def note(n: int) -> str:
        return json.dumps({"jsonrpc": "2.0", "method": "notify_x", "params": [n]})

    async def moonraker(ws: Any) -> None:
        await ws.send(note(1))
        text = note(2)
        await ws.send([text[:10], text[10:20], text[20:]])
        request = json.loads(await ws.recv())
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "ok"}))
        await ws.wait_closed()

    async def run() -> List[Any]:
        got: List[Any] = []
        async with serve(moonraker, "127.0.0.1", 0, compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            conn = await connect(f"127.0.0.1:{port}", Credentials(),
                                 lambda method, params: got.append((method, params)))
            answer = await conn.call("server.info")
            await conn.close()
        return [answer, got]

    assert asyncio.run(run()) == ["ok", [("notify_x", [1]), ("notify_x", [2])]]


def test_the_api_key_is_not_logged_even_at_debug_level(tmp_path, caplog):
    """A real tornado websocket server; the exporter's log at DEBUG (--log-level debug)
    while a target with an API key connects: the key appears in no log line (websockets
    logs a handshake's headers at DEBUG)."""
    from moonraker_prometheus.remote.client import connect

    key_file = tmp_path / "key"
    key_file.write_text("sekrit-api-key-4242\n")
    seen: List[Optional[str]] = []

    class Echo(WebSocketHandler):
        def open(self) -> None:
            seen.append(self.request.headers.get("X-Api-Key"))

    async def run() -> None:
        async with websocket_server(Echo) as address:
            conn = await connect(address, Credentials(api_key_file=str(key_file)),
                                 lambda *_: None)
            await conn.close()

    caplog.set_level(logging.DEBUG)
    asyncio.run(run())
    assert seen == ["sekrit-api-key-4242"]
    assert "sekrit" not in caplog.text and all(
        "sekrit" not in str(r.args) for r in caplog.records), caplog.text


def test_a_redirect_of_the_websocket_is_not_followed():
    """A real tornado server redirecting /websocket elsewhere: the probe fails with
    http_error and the exporter connects nowhere else (nothing a target answers picks a
    URL)."""
    from tornado.web import RequestHandler

    from moonraker_prometheus.remote.client import connect

    elsewhere = bind_sockets(0, "127.0.0.1")[0]  # listening, never accepted from
    elsewhere.setblocking(True)

    class Redirect(RequestHandler):
        def get(self) -> None:
            self.redirect(f"ws://127.0.0.1:{elsewhere.getsockname()[1]}/websocket")

    async def run() -> ProbeFailure:
        async with websocket_server(Redirect) as address:
            with pytest.raises(ProbeFailure) as failure:
                await connect(address, Credentials(), lambda *_: None, connect_timeout=2.0)
            return failure.value

    failure = asyncio.run(run())
    elsewhere.settimeout(0.1)
    with pytest.raises(socket.timeout):
        elsewhere.accept()  # no connection came
    elsewhere.close()
    assert failure.reason == "http_error" and failure.detail == "HTTP 302", failure


class History(RecordingConnection):
    """A history of 150 completed jobs and 1 cancelled one, listed a page at a time."""

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None) -> Any:
        self.calls.append((method, params))
        jobs = [{"status": "completed"}] * 150 + [{"status": "cancelled"}]
        start, limit = (params or {}).get("start", 0), (params or {}).get("limit", 50)
        return {"jobs": jobs[start:start + limit]}


def test_history_outcomes_are_counted_once_then_kept_current_by_notifications():
    conn = History()

    async def run() -> List[Any]:
        host = RemoteHost(conn, "printer")  # type: ignore[arg-type]
        host.components = {"history"}
        first = await host.history_outcomes()
        pages = len(conn.calls)
        host.notify("notify_history_changed",
                    [{"action": "finished", "job": {"status": "cancelled"}}])
        second = await host.history_outcomes()
        return [first, pages, second, len(conn.calls)]

    first, pages, second, calls = asyncio.run(run())
    assert first == {"completed": 150.0, "cancelled": 1.0} and pages == 2
    assert second == {"completed": 150.0, "cancelled": 2.0} and calls == pages


def test_the_exporters_own_families_and_reasons_are_documented(promtool_check):
    import os

    from moonraker_prometheus.exposition import Family, render_families
    from moonraker_prometheus.remote import metrics
    from moonraker_prometheus.remote.client import REASONS

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "remote.md"), encoding="utf-8") as f:
        doc = f.read()
    families = []
    for metric in (*metrics.PROBE, *metrics.TARGETS):
        assert f"`{metric.name}" in doc, metric.name
        family = Family(metric)
        family.add(1.0, *("x" for _ in metric.labels))
        families.append(family)
    for reason in REASONS:
        assert reason in metrics.PROBE_FAILURE.help and reason in doc, reason
    promtool_check(render_families(families))


def test_the_memory_bound_leaves_out_long_strings_and_entries_beyond_max_entries(caplog):
    """A real tornado websocket server answering with 300 items, a 5,000-character string
    and an object of 150 keys; the bound: 100 entries, 256 characters."""

    from moonraker_prometheus.remote.client import connect

    answer = {"files": [{"path": f"f{i}.gcode", "size": i} for i in range(300)],
              "message": "x" * 5000, "short": "kept",
              "nested": {"config": {f"k{i}": "v" for i in range(150)}}}

    class Wide(WebSocketHandler):
        def on_message(self, message: Any) -> None:
            self.write_message(json.dumps({"jsonrpc": "2.0", "id": 1, "result": answer}))

    async def run() -> Any:
        bounds = Bounds(max_entries=100, max_string=256, name="wide:7125")
        async with websocket_server(Wide) as address:
            conn = await connect(address, Credentials(), lambda *_: None, bounds=bounds)
            result = await conn.call("server.files.get_directory")
            await conn.close()
            return result, bounds

    with caplog.at_level(logging.WARNING, "moonraker_prometheus.remote.client"):
        result, bounds = asyncio.run(run())
    assert result["files"] == answer["files"][:100]
    assert "message" not in result and result["short"] == "kept"
    assert list(result["nested"]["config"]) == [f"k{i}" for i in range(100)]
    assert bounds.limited == {"entries": 200 + 50, "string": 1}
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2, logged  # once per limit and method
    assert all("wide:7125: server.files.get_directory" in m for m in logged)
    assert any("max_entries 100" in m for m in logged)
    assert any("max_string 256" in m for m in logged)


def test_a_small_message_is_not_walked_by_the_memory_bound():
    bounds = Bounds(max_entries=100, max_string=256)
    message = {"params": [{"extruder": {"temperature": 210.0}}]}
    assert bounds.cut(message, 200, "notify_status_update") is message


def push(host: RemoteHost, status: Dict[str, Any]) -> None:
    host.notify("notify_status_update", [status, 1.0])


def test_status_pushes_reach_the_collectors_merged_at_the_next_flush():
    """A probe flushes before it renders: the collectors see each field's newest value."""
    seen: List[Any] = []

    async def run() -> None:
        host = RemoteHost(RecordingConnection(), "printer")  # type: ignore[arg-type]
        await host.subscribe_objects({"extruder": ["temperature", "target"]},
                                     lambda status, _: seen.append(status))
        push(host, {"extruder": {"temperature": 20.0, "target": 200.0}})
        push(host, {"extruder": {"temperature": 21.0}})
        assert seen == []
        host.flush()
        host.flush()  # nothing new: no call

    asyncio.run(run())
    assert seen == [{"extruder": {"temperature": 21.0, "target": 200.0}}]


def test_what_a_push_carries_beyond_the_subscription_is_left_out_and_counted():
    """Moonraker pushes only what was subscribed; anything else (another object, another
    field, ever new keys) would grow the target's memory: it is counted, not kept."""
    seen: List[Any] = []
    conn = RecordingConnection()

    async def run() -> RemoteHost:
        host = RemoteHost(conn, "printer")  # type: ignore[arg-type]
        await host.subscribe_objects({"extruder": ["temperature"], "mmu": None},
                                     lambda status, _: seen.append(status))
        for i in range(500):
            push(host, {"extruder": {"temperature": float(i), f"junk{i}": i},
                        "mmu": {"x": i, f"more{i}": i}, f"object{i}": {"a": 1},
                        "webhooks": {"state": "ready", f"w{i}": "x"}})
        host.flush()
        return host

    host = asyncio.run(run())
    assert seen == [{"extruder": {"temperature": 499.0}, "mmu": {"x": 499},
                     "webhooks": {"state": "ready"}}]
    assert conn.bounds.limited == {"fields": 4 * 500}
    assert set(host._webhooks) <= set(EXTRA_FIELDS["webhooks"])


def test_notifications_add_no_power_device_sensor_value_or_service_beyond_those_listed():
    conn = RecordingConnection()
    host = RemoteHost(conn, "printer")  # type: ignore[arg-type]
    host._power = {"relay": {"device": "relay", "status": "off"}}
    host._sensors = {"room": {"values": {"temperature": 20.0}}}
    host._system = {"service_state": {"klipper": {"active_state": "active"}}}
    for i in range(50):
        host.notify("notify_power_changed", [{"device": f"dev{i}", "status": "on"}])
        host.notify("notify_sensor_update", [{"room": {"temperature": 21.0, f"v{i}": 1}}])
        host.notify("notify_service_state_changed", [{f"svc{i}": {"active_state": "x"}}])
    host.notify("notify_power_changed", [{"device": "relay", "status": "on"}])
    assert host._power == {"relay": {"device": "relay", "status": "on"}}
    assert host._sensors["room"]["values"] == {"temperature": 21.0}
    assert list(host._system["service_state"]) == ["klipper"]
    assert conn.bounds.limited == {"fields": 150}


def test_history_outcomes_keep_at_most_max_entries_statuses():
    conn = History()
    conn.bounds = Bounds(max_entries=100, max_string=256)

    async def run() -> Any:
        host = RemoteHost(conn, "printer")  # type: ignore[arg-type]
        host.components = {"history"}
        await host.history_outcomes()
        for i in range(150):
            host.notify("notify_history_changed",
                        [{"action": "finished", "job": {"status": f"odd{i}"}}])
        return await host.history_outcomes()

    outcomes = asyncio.run(run())
    assert len(outcomes) == 100 and outcomes["completed"] == 150.0
    assert conn.bounds.limited == {"entries": 52}


def test_a_silent_moonraker_is_closed_with_reason_timeout(monkeypatch):
    """A real tornado websocket server that accepts and then sends nothing (a network cut
    that closes no socket): the connection closes with reason timeout, not
    message_too_large."""

    from moonraker_prometheus.remote import client

    monkeypatch.setattr(client, "PING_SECONDS", 0.2)
    monkeypatch.setattr(client, "SILENT_SECONDS", 0.5)

    class Silent(WebSocketHandler):
        def on_message(self, message: Any) -> None:
            pass

    async def run() -> Any:
        async with websocket_server(Silent) as address:
            conn = await client.connect(address, Credentials(), lambda *_: None)
            await asyncio.wait_for(conn.closed.wait(), 5)
            failure = conn.failure
            await conn.close()
            return failure

    failure = asyncio.run(run())
    assert failure.reason == "timeout" and "nothing from Moonraker" in failure.detail


class Pusher(WebSocketHandler):
    """A Moonraker that answers every request with "ok" and pushes what a test asks:
    `Pusher.opened` holds the handlers of the open websockets."""
    opened: List["Pusher"] = []

    def open(self) -> None:  # type: ignore[override]
        Pusher.opened.append(self)

    def on_message(self, message: Any) -> None:
        rid = json.loads(message)["id"]
        self.write_message(json.dumps({"jsonrpc": "2.0", "id": rid, "result": "ok"}))

    def notify(self, n: int, pad: int = 0) -> None:
        self.write_message(json.dumps({"jsonrpc": "2.0", "method": "notify_x",
                                       "params": [n, "x" * pad]}))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are batched on Linux only")
def test_pushes_wait_in_the_kernel_until_a_batch_fills_or_a_drain_reads_them():
    """A real tornado websocket server: a call is answered at once while pushes are
    batched; three small pushes (far less than BATCH_BYTES) are not read until drain()
    reads them; pushes that fill a batch are read without one."""
    from moonraker_prometheus.remote.client import connect

    async def run() -> None:
        Pusher.opened.clear()
        got: List[int] = []
        async with websocket_server(Pusher) as address:
            conn = await connect(address, Credentials(), lambda _, params: got.append(
                params[0]))
            started = time.monotonic()
            assert await conn.call("server.info", timeout=3.0) == "ok"
            assert time.monotonic() - started < 1.0
            for n in range(3):
                Pusher.opened[0].notify(n)
            await asyncio.sleep(0.3)
            assert got == [], "read before the batch filled"
            await conn.drain(2.0)
            assert got == [0, 1, 2]
            for n in range(3, 6):
                Pusher.opened[0].notify(n, BATCH_BYTES // 2)
            await until(lambda: len(got) >= 5, 2.0)
            await conn.close()

    asyncio.run(run())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are batched on Linux only")
def test_pushes_a_batch_holds_are_read_by_the_silence_watch(monkeypatch):
    """A real tornado websocket server that pushes a little and then nothing: the watch
    reads what the kernel holds after PING_SECONDS, and the connection is not closed as
    silent while it held something."""
    from moonraker_prometheus.remote import client

    monkeypatch.setattr(client, "PING_SECONDS", 0.2)
    monkeypatch.setattr(client, "SILENT_SECONDS", 0.5)

    async def run() -> None:
        Pusher.opened.clear()
        got: List[int] = []
        async with websocket_server(Pusher) as address:
            conn = await client.connect(address, Credentials(), lambda _, params: got.append(
                params[0]))
            await until(lambda: bool(Pusher.opened), 2.0)
            for n in range(3):
                Pusher.opened[0].notify(n)
            await until(lambda: got == [0, 1, 2], 2.0)
            assert not conn.closed.is_set()
            await conn.close()

    asyncio.run(run())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are batched on Linux only")
def test_moonrakers_websocket_pings_are_answered_in_time_while_reads_are_batched(monkeypatch):
    """A real tornado websocket server with Moonraker 0.11's ping settings scaled down
    (tornado 6.5: a ping every second, the connection closed when its pong is not back
    within a second; Moonraker's are 10 s) that pushes nothing: over 3.5 s the pings
    wait in the kernel (far less than BATCH_BYTES) and the silence watch, every
    PING_SECONDS (0.3 s here), reads them, so their pongs go back in time."""
    from moonraker_prometheus.remote import client

    monkeypatch.setattr(client, "PING_SECONDS", 0.3)
    pongs: List[bytes] = []

    class Pinging(Pusher):
        def on_pong(self, data: bytes) -> None:
            pongs.append(data)

    async def run() -> None:
        Pusher.opened.clear()
        async with websocket_server(Pinging, websocket_ping_interval=1.0,
                                    websocket_ping_timeout=1.0) as address:
            conn = await client.connect(address, Credentials(), lambda *_: None)
            await asyncio.sleep(3.5)
            assert not conn.closed.is_set(), conn.failure
            assert len(pongs) >= 3, pongs
            await conn.close()

    asyncio.run(run())


def test_a_close_frame_from_moonraker_ends_the_connection_as_it_is_read():
    """A real tornado websocket server closing with 1001 "Server Shutdown" (Moonraker's
    stop): the Connection is closed, with the code, when the close frame is read, before
    the TCP connection ends (a probe between the two must not serve the old data)."""
    from moonraker_prometheus.remote.client import connect

    async def run() -> List[Any]:
        Pusher.opened.clear()
        async with websocket_server(Pusher) as address:
            conn = await connect(address, Credentials(), lambda *_: None)
            ws = conn._ws
            at_tcp_end: List[bool] = []
            tcp_end = ws.connection_lost

            def connection_lost(exc: Optional[Exception]) -> None:
                at_tcp_end.append(conn.closed.is_set())
                tcp_end(exc)

            ws.connection_lost = connection_lost  # type: ignore[method-assign]
            await until(lambda: bool(Pusher.opened), 2.0)
            Pusher.opened[0].close(1001, "Server Shutdown")
            await asyncio.sleep(0.2)
            await conn.drain(2.0)
            await asyncio.wait_for(conn.closed.wait(), 2.0)
            await until(lambda: bool(at_tcp_end), 2.0)
            failure = conn.failure
            await conn.close()
            return [at_tcp_end, failure]

    at_tcp_end, failure = asyncio.run(run())
    assert at_tcp_end == [True]
    assert failure.reason == "closed" and "code 1001" in failure.detail, failure


class KlippyDown(Pusher):
    """A Moonraker whose Klippy is disconnected, with proc_stats (1 websocket connection);
    `asked` holds the methods it was asked, in order."""
    asked: List[str] = []
    ANSWERS = {"server.info": {"klippy_connected": False, "klippy_state": "disconnected",
                               "components": ["proc_stats"], "moonraker_version": "v0.11.0"},
               "machine.proc_stats": {"moonraker_stats": [], "websocket_connections": 1}}

    def on_message(self, message: Any) -> None:
        request = json.loads(message)
        KlippyDown.asked.append(request["method"])
        self.write_message(json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                       "result": self.ANSWERS.get(request["method"], {})}))


def probes_around(action: Callable[[Pusher], None]) -> List[str]:
    """Two probes of a KlippyDown Moonraker (a real tornado websocket server) with
    `action(its handler)` between them, 0.3 s before the second, taken just after the
    exporter's poll of server.info (every KLIPPY_POLL_SECONDS while Klippy is not ready):
    no answer is awaited until after the second probe, so nothing but that probe reads
    what `action` made Moonraker send."""
    from moonraker_prometheus.collectors import module_names

    async def run() -> List[str]:
        Pusher.opened.clear()
        KlippyDown.asked.clear()
        async with target_on(KlippyDown) as target:
            first = await target.probe(module_names(), 3.0)
            polls = KlippyDown.asked.count("server.info")
            await until(lambda: KlippyDown.asked.count("server.info") > polls, 5.0)
            await asyncio.sleep(0.1)
            action(Pusher.opened[0])
            await asyncio.sleep(0.3)
            return [first, await target.probe(module_names(), 3.0)]

    return asyncio.run(run())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are batched on Linux only")
def test_a_probe_serves_what_moonraker_sent_before_it_though_no_batch_filled():
    """Between two probes Moonraker pushes a proc_stats notification of 7 websocket
    connections (far less than BATCH_BYTES, held by the kernel): the second probe serves
    7, not the 1 of the first."""
    first, second = probes_around(lambda moonraker: moonraker.write_message(json.dumps({
        "jsonrpc": "2.0", "method": "notify_proc_stat_update",
        "params": [{"moonraker_stats": {}, "websocket_connections": 7}]})))
    assert "klipper_moonraker_websocket_connections 1.0\n" in first, first
    assert "klipper_moonraker_websocket_connections 7.0\n" in second, second


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads are batched on Linux only")
def test_a_probe_after_moonraker_closed_the_websocket_serves_no_printer_series():
    """Between two probes Moonraker closes the websocket with 1001 (its stop; the close
    frame far less than BATCH_BYTES, held by the kernel): the second probe reads it and
    answers probe_success 0, reason closed, without the old series."""
    first, second = probes_around(lambda moonraker: moonraker.close(1001, "Server Shutdown"))
    assert "probe_success 1.0" in first, first
    assert "probe_success 0.0" in second, second
    assert 'klipper_probe_failure_info{reason="closed"} 1.0' in second, second
    assert "klipper_moonraker_version_info" not in second, second


def test_a_probe_in_the_loop_turn_its_connection_ended_serves_no_printer_series():
    """The connection to a KlippyDown Moonraker ends (here: failed by hand) and a probe
    comes before the target's session task has run to say so: the probe answers
    probe_success 0 with the connection's reason, not the old series."""
    from moonraker_prometheus.collectors import module_names

    async def run() -> str:
        async with target_on(KlippyDown) as target:
            assert "probe_success 1.0" in await target.probe(module_names(), 3.0)
            target._connection._fail(ProbeFailure("closed", "Moonraker closed"))
            return await target.probe(module_names(), 3.0)

    body = asyncio.run(run())
    assert "probe_success 0.0" in body, body
    assert 'klipper_probe_failure_info{reason="closed"} 1.0' in body, body
    assert "klipper_moonraker_version_info" not in body, body


@pytest.mark.parametrize("name, text, reason", [
    ("missing.json", None, "read"),
    ("big.json", '[{"targets": ["a:1"]}]' + " " * (1 << 20), "too_large"),
    ("broken.json", "[{broken", "syntax"),
    ("broken.yml", "- targets: [a:1\n", "syntax"),
    ("shape.json", '{"targets": ["a:1"]}', "format"),
    ("address.json", '[{"targets": ["http://a/"]}]', "format"),
])
def test_a_targets_file_that_cannot_be_loaded_says_why(tmp_path, name, text, reason):
    from moonraker_prometheus.remote.config import TargetsFileError

    path = str(tmp_path / name) if text is None else write(tmp_path, name, text)
    with pytest.raises(TargetsFileError) as error:
        load_targets_file(path)
    assert error.value.reason == reason, str(error.value)


def test_a_broken_targets_file_is_counted_and_logged_and_parsed_off_the_loop(
        tmp_path, monkeypatch, caplog, promtool_check):
    """The watcher keeps the last good list and says why in /metrics and the log; the file
    is read in a thread, not on the event loop."""
    import threading

    from moonraker_prometheus.remote import __main__ as main
    from moonraker_prometheus.remote.config import RemoteConfig
    from moonraker_prometheus.remote.server import Exporter, TargetsFileStatus
    from moonraker_prometheus.remote.target import Limits, TargetSpec

    monkeypatch.setattr(main, "TARGETS_FILE_POLL", 0.05)
    threads: List[str] = []
    real = main.load_targets_file

    def load(path: str) -> List[str]:
        threads.append(threading.current_thread().name)
        return real(path)

    monkeypatch.setattr(main, "load_targets_file", load)
    path = write(tmp_path, "targets.json", '[{"targets": ["a:1"]}]')
    status = TargetsFileStatus()
    status.loaded()

    async def run() -> str:
        exporter = Exporter({"a:1": TargetSpec("a:1")}, "test", Limits(), targets_file=status)
        watcher = asyncio.get_running_loop().create_task(
            main._watch_targets(path, exporter, RemoteConfig(), [], status))
        try:
            await asyncio.sleep(0.1)
            write(tmp_path, "targets.json", '[{"targets": ["a:1"]}]' + " " * (1 << 20))
            for _ in range(100):
                await asyncio.sleep(0.02)
                if status.errors:
                    break
            assert exporter.listed == {"a:1": exporter.listed["a:1"]}  # the last good list
            write(tmp_path, "targets.json", "[{broken")
            for _ in range(100):
                await asyncio.sleep(0.02)
                if len(status.errors) == 2:
                    break
            return exporter.render()
        finally:
            watcher.cancel()

    with caplog.at_level(logging.ERROR, "moonraker_prometheus.remote"):
        own = asyncio.run(run())
    assert threads and threading.main_thread().name not in threads
    assert 'klipper_remote_targets_file_errors_total{reason="too_large"} 1' in own
    assert 'klipper_remote_targets_file_errors_total{reason="syntax"} 1' in own
    assert "klipper_remote_targets_file_last_reload_success 0" in own
    assert "klipper_remote_targets_file_last_reload_success_timestamp_seconds " in own
    assert "over 1048576 bytes" in caplog.text and "invalid JSON" in caplog.text
    promtool_check(own)


def test_listed_targets_are_never_refused_and_max_targets_bounds_only_unlisted_ones():
    """max_targets 1 with three listed targets: each listed one gets its Target; one
    unlisted one at a time, the next refused while it is probed and let in (the old one
    disconnected) once it was not probed for EVICT_SECONDS."""
    from moonraker_prometheus.remote import server
    from moonraker_prometheus.remote.target import Limits, TargetSpec

    listed = {a: TargetSpec(a) for a in ("a:1", "b:1", "c:1")}

    async def run() -> server.Exporter:
        exporter = server.Exporter(listed, "test", Limits(), allow_any=True, max_targets=1)
        for address in listed:
            exporter.target(address)
        first = exporter.target("u:1")
        with pytest.raises(OverflowError):
            exporter.target("v:1")
        first.last_probe -= server.EVICT_SECONDS + 1
        exporter.target("v:1")
        for address in listed:
            exporter.target(address)
        await asyncio.sleep(0)
        await exporter.close()
        return exporter

    exporter = asyncio.run(run())
    assert sorted(exporter.targets) == []
    assert (exporter.over_max, exporter.evicted) == (1, 1)


def test_a_probe_over_max_targets_answers_probe_success_0_with_its_reason(promtool_check):
    from moonraker_prometheus.remote.server import over_max_targets

    text = over_max_targets()
    assert "probe_success 0" in text
    assert 'klipper_probe_failure_info{reason="max_targets"} 1' in text
    promtool_check(text)


def test_many_listed_targets_give_a_warning(caplog):
    from moonraker_prometheus.remote import server
    from moonraker_prometheus.remote.target import Limits, TargetSpec

    many = {f"p{i}:1": TargetSpec(f"p{i}:1") for i in range(server.LISTED_WARNING + 1)}
    with caplog.at_level(logging.WARNING, "moonraker_prometheus.remote"):
        server.Exporter(many, "test", Limits())
    assert f"{server.LISTED_WARNING + 1} targets listed" in caplog.text


@pytest.mark.parametrize("answer", [42, "x", [], {}, None,
                                    {"klippy_connected": True, "klippy_state": "ready",
                                     "components": [], "moonraker_version": ""}])
def test_a_json_rpc_server_that_is_not_moonraker_fails_the_probe_as_protocol(answer):
    """A real tornado websocket server answering every request with `answer`: the probe
    says protocol and serves no printer series (no klipper_printer_info with "")."""

    from moonraker_prometheus.collectors import module_names

    class Anything(WebSocketHandler):
        def on_message(self, message: Any) -> None:
            rid = json.loads(message)["id"]
            self.write_message(json.dumps({"jsonrpc": "2.0", "id": rid, "result": answer}))

    async def run() -> str:
        async with target_on(Anything) as target:
            return await target.probe(module_names(), 3.0)

    body = asyncio.run(run())
    assert "probe_success 0" in body, body
    assert 'klipper_probe_failure_info{reason="protocol"} 1' in body, body
    assert "klipper_printer_info" not in body
