"""TLS on both sides of the central exporter, live: a printer reached over wss/https (a TLS
front in front of a real Moonraker, its certificate from a private CA), and the exporter's
own listener with the sidecar's TLS and mutual TLS settings."""
from __future__ import annotations

import os
import socket
import ssl
import threading
import urllib.request

import pytest
import trustme

from simulator import Klippy, Moonraker, wait_for
from tests.loopback import LoopbackServer
from tests.test_remote import Remote, ready_with_printer, target_of, values, wait_probe


class TlsFront(LoopbackServer):
    """Terminates TLS with `cert` and forwards to 127.0.0.1:`port` (as a reverse proxy in
    front of Moonraker would)."""

    def __init__(self, port: int, cert: trustme.LeafCert) -> None:
        self.target = port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self.ctx)
        super().__init__()

    def handle(self, raw: socket.socket) -> None:
        threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            client = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        server = socket.create_connection(("127.0.0.1", self.target))
        self.open += [client, server]
        threading.Thread(target=self._pump, args=(server, client), daemon=True).start()
        self._pump(client, server)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture(scope="module")
def printer():
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, prometheus=None) as moonraker:
            moonraker.wait_klippy_ready()
            yield moonraker


def write_config(folder: str, text: str) -> str:
    path = os.path.join(folder, "remote.yml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


@pytest.mark.parametrize("trusted", [True, False], ids=["private-ca", "unknown-ca"])
def test_a_tls_target_is_verified_against_its_ca(printer, tmp_path, trusted):
    ca, other = trustme.CA(), trustme.CA()
    front = TlsFront(printer.port, ca.issue_cert("127.0.0.1"))
    (ca if trusted else other).cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    target = f"127.0.0.1:{front.port}"
    path = write_config(str(tmp_path), f"targets:\n  - address: {target}\n    tls: true\n"
                                       f"    ca_file: ca.pem\n")
    remote = Remote(str(tmp_path), "--config", path)
    try:
        if trusted:
            wait_probe(remote, target, ready_with_printer, 15)
        else:
            found = wait_probe(remote, target, lambda f: f.get("probe_success") == 0.0, 10)
            assert found.get('klipper_probe_failure_info{reason="tls"}') == 1.0, found
            assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
    finally:
        remote.stop()
        front.close()


def test_the_listener_serves_tls_and_requires_client_certificates(printer, tmp_path):
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("prometheus")
    folder = str(tmp_path)
    server.cert_chain_pems[0].write_to_path(os.path.join(folder, "server.crt"))
    server.private_key_pem.write_to_path(os.path.join(folder, "server.key"))
    ca.cert_pem.write_to_path(os.path.join(folder, "ca.pem"))
    path = write_config(folder, f"""\
tls_server_config:
  cert_file: {folder}/server.crt
  key_file: {folder}/server.key
  client_ca_file: {folder}/ca.pem
  client_auth_type: RequireAndVerifyClientCert
targets:
  - address: {target_of(printer)}
""")
    remote = Remote(folder, "--config", path, plain_http=False)
    try:
        with_cert = ssl.create_default_context(cafile=os.path.join(folder, "ca.pem"))
        client.configure_cert(with_cert)
        without_cert = ssl.create_default_context(cafile=os.path.join(folder, "ca.pem"))
        url = f"https://127.0.0.1:{remote.port}/probe?target={target_of(printer)}"

        def fetch(ctx: ssl.SSLContext) -> str:
            with urllib.request.urlopen(url, context=ctx, timeout=10) as r:
                return r.read().decode()

        body = wait_for(lambda: fetch(with_cert), 20, 0.3, "https probe")
        assert values(body)["probe_success"] == 1.0
        with pytest.raises(OSError):
            fetch(without_cert)
    finally:
        remote.stop()
