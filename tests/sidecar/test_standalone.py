"""`python -m moonraker_prometheus.sidecar`: reverse_exporter YAML, TLS, mTLS, bcrypt auth."""
from __future__ import annotations

import base64
import gzip
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Dict, List, Optional, Tuple

import bcrypt
import pytest
import trustme
import yaml

from moonraker_prometheus.sidecar.config import ConfigError, parse_config
from moonraker_prometheus.sidecar.webconfig import load_web_config
from tests.sidecar.support import ROOT, write_script


class SidecarProcess:
    def __init__(self, tmp_path, config: dict, web: Optional[dict] = None) -> None:
        cfg = tmp_path / "sidecar.yml"
        cfg.write_text(yaml.safe_dump(config))
        argv = [sys.executable, "-m", "moonraker_prometheus.sidecar", "--config", str(cfg)]
        if web is not None:
            (tmp_path / "web.yml").write_text(yaml.safe_dump(web))
            argv += ["--web.config.file", str(tmp_path / "web.yml")]
        self.proc = subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.lines: List[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_log(self, pattern: str, timeout: float = 10) -> "re.Match[str]":
        """The first stderr line matching `pattern` (the sidecar logs each bound listener)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None:
                raise AssertionError("sidecar exited: %s" % "".join(self.lines))
            time.sleep(0.05)
        raise AssertionError("sidecar did not log %r: %s" % (pattern, "".join(self.lines)))

    def port(self, timeout: float = 10) -> int:
        return int(self.wait_log(r"listening on tcps?://127\.0\.0\.1:(\d+)", timeout).group(1))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._reader.join(5)


@pytest.fixture
def sidecar(tmp_path):
    started: List[SidecarProcess] = []

    def start(config: dict, web: Optional[dict] = None) -> SidecarProcess:
        s = SidecarProcess(tmp_path, config, web)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def get(port: int, path: str, headers: Optional[Dict[str, str]] = None,
        tls: Optional[ssl.SSLContext] = None, timeout: float = 10
        ) -> Tuple[int, http.client.HTTPMessage, bytes]:
    """status, headers (case-insensitive), body."""
    if tls is not None:
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, context=tls, timeout=timeout)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.headers, r.read()
    finally:
        conn.close()


def one_path(exporters, path="/metrics", **extra) -> dict:
    cfg = {"web": {"listen": ["tcp://127.0.0.1:0"]},
           "reverse_exporters": [dict(path=path, exporters=exporters, **extra)]}
    return cfg


def test_reverse_exporter_config_serves_every_kind_on_its_paths(sidecar, tmp_path, backend):
    backend.body("/metrics", b"# TYPE be gauge\nbe 1\n")
    (tmp_path / "a.prom").write_text("from_file 2\n")
    write_script(str(tmp_path / "s.sh"), 'echo "from_exec{argc=\\"$#\\"} 3"\n')
    cfg = {
        "web": {"listen": ["tcp://127.0.0.1:0"], "context_path": "/ctx",
                "read_header_timeout": "5s"},
        "reverse_exporters": [
            {"path": "/metrics", "exporters": {
                "http": [{"name": "be", "address": backend.url("/metrics"), "timeout": "2s",
                          "labels": {"site": "lab"}}],
                "file": [{"name": "tf", "path": "a.prom"}],
                "exec": [{"name": "ex", "command": "./s.sh", "args": ["one", "two"]}],
                "exec_cached": [{"name": "cached", "command": "./s.sh",
                                 "exec_interval": "1m"}]}},
            {"path": "/other", "exporters": [
                {"http": {"name": "be", "address": backend.url("/metrics"),
                          "no_rewrite": True}}]},
        ]}
    s = sidecar(cfg)
    port = s.port()
    status, headers, body = get(port, "/ctx/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'be{exporter_name="be",site="lab"} 1' in text
    assert 'from_file{exporter_name="tf"} 2' in text
    assert 'from_exec{exporter_name="ex",argc="2"} 3' in text
    assert 'from_exec{exporter_name="cached",argc="0"} 3' in text
    status, _, body = get(port, "/ctx/other")
    assert status == 200 and "\nbe 1\n" in body.decode()
    assert get(port, "/metrics")[0] == 404


def test_sidecar_serves_its_own_process_metrics_unlabelled(sidecar, backend):
    backend.body("/metrics", b"# TYPE process_open_fds gauge\nprocess_open_fds 7\n")
    s = sidecar(one_path({"http": [{"name": "be", "address": backend.url("/metrics")}]}))
    text = get(s.port(), "/metrics")[2].decode()
    assert re.search(r"^process_resident_memory_bytes \d", text, re.M)
    # the backend's family of the same name is merged under one header, told apart by label
    assert text.count("# TYPE process_open_fds gauge") == 1
    assert 'process_open_fds{exporter_name="be"} 7' in text
    assert re.search(r"^process_open_fds \d", text, re.M)


def test_scrape_query_never_reaches_commands_or_paths(sidecar, tmp_path, backend):
    backend.body("/probe", b"probe 1\n")
    (tmp_path / "a.prom").write_text("from_file 2\n")
    script = write_script(str(tmp_path / "s.sh"), 'echo "argc $#"\n')
    s = sidecar(one_path({
        "http": [{"name": "probe", "address": backend.url("/probe"),
                  "forward_url_params": True}],
        "file": [{"name": "tf", "path": str(tmp_path / "a.prom")}],
        "exec": [{"name": "ex", "command": script}]}))
    status, _, body = get(s.port(), "/metrics?target=x&command=/bin/sh&path=/etc/passwd")
    text = body.decode()
    assert status == 200
    assert 'argc{exporter_name="ex"} 0' in text and 'from_file{exporter_name="tf"} 2' in text
    assert "root:" not in text
    assert backend.requests[-1][0] == "/probe?command=%2Fbin%2Fsh&path=%2Fetc%2Fpasswd&target=x"


def test_prometheus_scrape_timeout_header_bounds_the_answer(sidecar, backend):
    backend.body("/slow", b"slow 1\n", delay=5)
    backend.body("/fast", b"fast 1\n")
    s = sidecar(one_path({"http": [{"name": "slow", "address": backend.url("/slow"),
                                    "timeout": "30s"},
                                   {"name": "fast", "address": backend.url("/fast")}]}))
    port = s.port()
    started = time.monotonic()
    status, _, body = get(port, "/metrics", {"X-Prometheus-Scrape-Timeout-Seconds": "1.5"})
    assert time.monotonic() - started < 1.6
    assert status == 200 and b'fast{exporter_name="fast"} 1' in body
    assert b'errors_total{exporter_name="slow",reason="timeout"} 1' in body


def test_gzip_on_request_and_not_when_refused(sidecar, backend):
    backend.body("/m", b"m 1\n")
    s = sidecar(one_path({"http": [{"name": "m", "address": backend.url("/m")}]}))
    port = s.port()
    _, headers, body = get(port, "/metrics", {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert b'm{exporter_name="m"} 1' in gzip.decompress(body)
    _, headers, body = get(port, "/metrics", {"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in headers and b'm{exporter_name="m"} 1' in body


@pytest.mark.parametrize("mutate, key", [
    (lambda c: c["reverse_exporters"][0]["exporters"]["http"][0].update(timeout="soon"),
     "reverse_exporters[0].exporters.http[0].timeout"),
    (lambda c: c["reverse_exporters"][0]["exporters"]["http"][0].update(adress="x"),
     "reverse_exporters[0].exporters.http[0].adress"),
    (lambda c: c["reverse_exporters"][0]["exporters"]["http"][0].update(address="ftp://x"),
     "reverse_exporters[0].exporters.http[0].address"),
    (lambda c: c["reverse_exporters"][0]["exporters"]["http"][0].pop("name"),
     "reverse_exporters[0].exporters.http[0].name"),
    (lambda c: c["reverse_exporters"][0]["exporters"].update(
        http=[{"name": "a", "address": "http://h/m"}, {"name": "a", "address": "http://h/m"}]),
     "reverse_exporters[0].exporters.http[1].name"),
    (lambda c: c["reverse_exporters"][0]["exporters"].update(
        exec_cached=[{"name": "c", "command": "/bin/true", "exec_interval": "0s"}]),
     "reverse_exporters[0].exporters.exec_cached[0].exec_interval"),
    (lambda c: c["reverse_exporters"][0]["exporters"].update(ftp=[]),
     "reverse_exporters[0].exporters.ftp"),
    (lambda c: c["reverse_exporters"].append(dict(c["reverse_exporters"][0])),
     "reverse_exporters[1].path"),
    (lambda c: c["web"].update(listen=["tcps://127.0.0.1:1"]), "web.listen[0]"),
    (lambda c: c["reverse_exporters"][0]["exporters"]["http"][0].update(labels=["a"]),
     "reverse_exporters[0].exporters.http[0].labels"),
])
def test_broken_config_names_the_key(mutate, key):
    cfg = one_path({"http": [{"name": "a", "address": "http://127.0.0.1:1/m"}]})
    mutate(cfg)
    with pytest.raises(ConfigError) as e:
        parse_config(cfg)
    assert e.value.key == key, str(e.value)


def test_broken_yaml_exits_with_the_key_in_the_message(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("reverse_exporters:\n  - path: /metrics\n    exporters:\n      http:\n"
                   "        - name: a\n          address: http://h/m\n          timeout: 1 second\n")
    proc = subprocess.run([sys.executable, "-m", "moonraker_prometheus.sidecar", "--config",
                           str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "reverse_exporters[0].exporters.http[0].timeout" in proc.stderr
    bad.write_text("reverse_exporters: [\n  - path: /m\n")
    proc = subprocess.run([sys.executable, "-m", "moonraker_prometheus.sidecar", "--config",
                           str(bad)], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "invalid YAML (line" in proc.stderr


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.cert_chain_pems[0].write_to_path(str(d / "server.crt"))
    server.private_key_pem.write_to_path(str(d / "server.key"))
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    ca.issue_cert("scraper.local").private_key_and_cert_chain_pem.write_to_path(
        str(d / "client.pem"))
    return d


def client_tls(pki, cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / "client.pem"))
    return ctx


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_tls_from_web_config_with_tls12_minimum(sidecar, backend, pki):
    backend.body("/m", b"m 1\n")
    s = sidecar(one_path({"http": [{"name": "m", "address": backend.url("/m")}]}),
                web={"tls_server_config": {"cert_file": str(pki / "server.crt"),
                                           "key_file": str(pki / "server.key")}})
    port = s.port()
    status, _, body = get(port, "/metrics", tls=client_tls(pki))
    assert status == 200 and b'm{exporter_name="m"} 1' in body
    old = client_tls(pki)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(port, "/metrics", tls=old)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(port, "/metrics")  # plain HTTP to a TLS port gets nothing


def test_mutual_tls_rejects_a_client_without_certificate(sidecar, backend, pki):
    backend.body("/m", b"m 1\n")
    s = sidecar(one_path({"http": [{"name": "m", "address": backend.url("/m")}]}),
                web={"tls_server_config": {
                    "cert_file": str(pki / "server.crt"), "key_file": str(pki / "server.key"),
                    "client_ca_file": str(pki / "ca.pem"),
                    "client_auth_type": "RequireAndVerifyClientCert"}})
    port = s.port()
    assert get(port, "/metrics", tls=client_tls(pki, cert=True))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(port, "/metrics", tls=client_tls(pki, cert=False))


def test_tcps_listener_with_client_ca_in_the_url(sidecar, backend, pki, tmp_path):
    backend.body("/m", b"m 1\n")
    url = "tcps://127.0.0.1:0?tlscert=%s&tlskey=%s&tlsclientca=%s" % (
        pki / "server.crt", pki / "server.key", pki / "ca.pem")
    cfg = one_path({"http": [{"name": "m", "address": backend.url("/m")}]})
    cfg["web"]["listen"] = [url]
    port = sidecar(cfg).port()
    assert get(port, "/metrics", tls=client_tls(pki, cert=True))[0] == 200
    with pytest.raises((ssl.SSLError, ConnectionError)):
        get(port, "/metrics", tls=client_tls(pki, cert=False))


def basic(user: str, password: str) -> Dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()}


def basic_auth_sidecar_port(sidecar, backend, rounds: int) -> int:
    """Port of a sidecar serving backend's `m 1` to user prometheus, password s3cret
    (bcrypt with `rounds`)."""
    backend.body("/m", b"m 1\n")
    digest = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=rounds)).decode()
    return sidecar(one_path({"http": [{"name": "m", "address": backend.url("/m")}]}),
                   web={"basic_auth_users": {"prometheus": digest}}).port()


def test_bcrypt_basic_auth(sidecar, backend):
    port = basic_auth_sidecar_port(sidecar, backend, rounds=4)
    status, _, body = get(port, "/metrics", basic("prometheus", "s3cret"))
    assert status == 200 and b'm{exporter_name="m"} 1' in body
    for headers in (basic("prometheus", "wrong"), basic("nobody", "s3cret"), {},
                    {"Authorization": "Basic !!!"}, {"Authorization": "Bearer x"}):
        status, reply, body = get(port, "/metrics", headers)
        assert status == 401, headers
        assert reply["WWW-Authenticate"].startswith("Basic realm=")
        assert b"m 1" not in body


def test_web_config_refuses_old_tls_and_plaintext_users(tmp_path, pki):
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({"tls_server_config": {
        "cert_file": str(pki / "server.crt"), "key_file": str(pki / "server.key"),
        "min_version": "TLS10"}}))
    with pytest.raises(ConfigError, match="min_version"):
        load_web_config(str(web))
    web.write_text(yaml.safe_dump({"basic_auth_users": {"u": "plaintext"}}))
    with pytest.raises(ConfigError, match="basic_auth_users.u"):
        load_web_config(str(web))


def test_unix_listener_and_slow_clients_are_cut_off(sidecar, backend, tmp_path):
    backend.body("/m", b"m 1\n")
    sock_path = str(tmp_path / "sidecar.sock")
    cfg = one_path({"http": [{"name": "m", "address": backend.url("/m")}]})
    cfg["web"]["listen"] = ["tcp://127.0.0.1:0", "unix://" + sock_path]
    cfg["web"]["read_header_timeout"] = "1s"
    s = sidecar(cfg)
    port = s.port()
    s.wait_log("listening on unix://" + re.escape(sock_path))
    with socket.socket(socket.AF_UNIX) as u:
        u.settimeout(10)
        u.connect(sock_path)
        u.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        reply = b""
        while True:
            chunk = u.recv(65536)
            if not chunk:
                break
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200") and b'm{exporter_name="m"} 1' in reply
    with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        started = time.monotonic()
        assert slow.recv(1024) == b""
        assert time.monotonic() - started < 5


def test_older_reverse_exporter_layout_and_htpasswd_file_are_accepted(tmp_path):
    digest = bcrypt.hashpw(b"pw", bcrypt.gensalt(rounds=4)).decode()
    (tmp_path / "users.htpasswd").write_text("admin:%s\n" % digest)
    (tmp_path / "metrics.prom").write_text("a 1\n")
    data = yaml.safe_load("""
web:
  listen: [tcp://127.0.0.1:9115, "unix:///run/sidecar.sock"]
  telemetry_path: /metrics
reverse_exporters:
- path: /metrics
  auth_type: basic
  htpasswd_file: users.htpasswd
  exporters:
  - http: {name: prometheus, address: "http://127.0.0.1:9090/metrics", timeout: 1s}
  - http: {name: sock, address: "http://unix:/run/exporter.sock:/metrics?x=1"}
  - file: {name: cron_metrics, path: metrics.prom}
  - exec-cached: {name: periodic, command: /bin/echo, args: [], exec_interval: 30s}
""")
    cfg = parse_config(data, str(tmp_path))
    (ep,) = cfg.endpoints
    assert ep.users == {"admin": digest}
    specs = {s.name: s for s in ep.specs}
    assert (specs["sock"].kind, specs["sock"].url, specs["sock"].socket) == (
        "unix", "/metrics?x=1", "/run/exporter.sock")
    assert (specs["cron_metrics"].kind, specs["cron_metrics"].path) == (
        "file", str(tmp_path / "metrics.prom"))
    assert [s.interval for s in ep.specs if s.kind == "exec_periodic"] == [30.0]
    assert cfg.warnings and "telemetry_path" in cfg.warnings[0]
    (tmp_path / "users.htpasswd").write_text("admin:$apr1$salt$hash\n")
    with pytest.raises(ConfigError, match="only bcrypt"):
        parse_config(data, str(tmp_path))


def test_a_wrong_password_flood_does_not_starve_authenticated_scrapes(sidecar, backend):
    port = basic_auth_sidecar_port(sidecar, backend, rounds=10)
    assert get(port, "/metrics", basic("prometheus", "s3cret"))[0] == 200
    statuses: List[int] = []

    def flood(client: int) -> None:
        for n in range(15):
            status, reply, _ = get(port, "/metrics", basic("prometheus", "w%d-%d" % (client, n)),
                                   timeout=60)
            statuses.append(status)
            if status == 429:
                assert reply["Retry-After"] == "1"

    threads = [threading.Thread(target=flood, args=(c,)) for c in range(20)]
    for t in threads:
        t.start()
    latencies = []
    while any(t.is_alive() for t in threads) and len(latencies) < 20:
        started = time.monotonic()
        assert get(port, "/metrics", basic("prometheus", "s3cret"))[0] == 200
        latencies.append(time.monotonic() - started)
    for t in threads:
        t.join()
    assert len(latencies) >= 5
    assert max(latencies) < 1.0, latencies
    assert set(statuses) <= {401, 429} and 401 in statuses


SECRET = "hunter2TOPSECRET"


@pytest.mark.parametrize("entry", [
    {"address": "ftp://user:%s@h/m" % SECRET},
    {"address": "http://user:%s@/m?token=%s" % (SECRET, SECRET)},
    {"address": "http://user:%s@h:99999999/m" % SECRET},
    {"address": "http://h/m", "headers": {"Authorization: Bearer %s" % SECRET: "x"}},
    {"address": "http://h/m", "password": SECRET},
    {"address": "http://h/m", "username": "u", "bearer_token": SECRET},
    {"address": "http://h/m", "bearer_token": SECRET, "timeout": "soon"},
    {"address": "http://h/m", "bearer_token": SECRET, "pasword": SECRET},
])
def test_no_broken_exporter_entry_puts_a_secret_in_the_error(entry):
    with pytest.raises(ConfigError) as e:
        parse_config(one_path({"http": [dict(name="a", **entry)]}))
    assert SECRET not in str(e.value)


def test_textfile_matches_it_cannot_read_are_reported_with_their_reason(sidecar, tmp_path):
    from tests.sidecar.test_file_sources import (assert_reports_every_unreadable_match,
                                                 fifo_writer_after, textfile_folder)
    textfile_folder(tmp_path)
    port = sidecar(one_path({"file": [{"name": "tf", "path": str(tmp_path / "*.prom")}]})).port()
    with fifo_writer_after(str(tmp_path / "pipe.prom")) as released:
        started = time.monotonic()
        status, _, body = get(port, "/metrics")
        assert time.monotonic() - started < 2
    assert status == 200 and released == []
    assert_reports_every_unreadable_match(body.decode(), tmp_path, scrapes=1)


def test_a_textfile_of_utf8_names_is_served_escaped_and_its_collisions_counted(sidecar, tmp_path):
    """Prometheus 3's quoted names in a textfile, through the standalone sidecar: served
    escaped (`underscores`), the collision the escaping makes counted, the same on the next
    scrape (the source's series cache)."""
    from tests.sidecar.support import promtool_check
    (tmp_path / "chamber.prom").write_text(
        '# HELP "chamber.humidity" Relative humidity.\n# TYPE "chamber.humidity" gauge\n'
        '{"chamber.humidity","probe.name"="sht-2"} 41\nchamber_temp{"probe.name"="sht-2"} 30\n'
        '{"door.open"} 1\ndoor_open 0\n')
    port = sidecar(one_path({"file": [{"name": "tf", "path": str(tmp_path / "*.prom")}]})).port()
    counted = 'klipper_exporter_merge_dropped_total{exporter_name="tf",reason="escape_collision"} '
    for scrape in (1, 2):
        status, _, body = get(port, "/metrics")
        text = body.decode()
        assert status == 200
        lines = text.splitlines()
        for line in ["# HELP chamber_humidity Relative humidity.",
                     "# TYPE chamber_humidity gauge",
                     'chamber_humidity{exporter_name="tf",probe_name="sht-2"} 41',
                     'chamber_temp{exporter_name="tf",probe_name="sht-2"} 30',
                     'door_open{exporter_name="tf"} 0']:
            assert line in lines, text
        assert [float(x[len(counted):]) for x in lines if x.startswith(counted)] == [scrape]
        assert 'door_open{exporter_name="tf"} 1' not in lines
        promtool_check(text)
