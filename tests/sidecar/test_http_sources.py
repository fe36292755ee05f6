"""HTTP backends: query string kept, auth and headers sent, TLS verified, Unix sockets."""
from __future__ import annotations

import asyncio
import base64
import ssl

import pytest
import trustme

from tests.sidecar.support import Backend, collect, make_spec, merger_for

BODY = b"# TYPE thing gauge\nthing 1\n"


def test_query_string_of_the_configured_url_is_kept(backend):
    backend.body("/metrics", BODY)
    out = collect(merger_for(make_spec("q", "http", url=backend.url("/metrics?format=prometheus&x=1"))))
    assert 'thing{exporter_name="q"} 1' in out
    assert backend.requests[0][0] == "/metrics?format=prometheus&x=1"


def test_scrape_params_are_forwarded_only_when_enabled_and_only_to_the_query(backend):
    backend.body("/probe", BODY)
    fwd = merger_for(make_spec("fwd", "http", url=backend.url("/probe?module=a"),
                               forward_url_params=True))
    plain = merger_for(make_spec("plain", "http", url=backend.url("/probe")))

    async def run():
        params = {"target": ["example.org"], "module": ["b"], "../x": ["/etc/passwd"]}
        await fwd.collect(None, timeout=5, params=params)
        await plain.collect(None, timeout=5, params=params)
        await fwd.close()
        await plain.close()

    asyncio.run(run())
    paths = [p for p, _ in backend.requests]
    assert paths[0].startswith("/probe?module=a&")
    assert "target=example.org" in paths[0] and "..%2Fx=%2Fetc%2Fpasswd" in paths[0]
    assert "module=b" not in paths[0]  # a name the configured URL sets is never overridden
    assert paths[1] == "/probe"


def test_headers_basic_and_bearer_auth_are_sent(backend):
    backend.body("/m", BODY)
    collect(merger_for(
        make_spec("basic", "http", url=backend.url("/m"), username="u", password="p w",
                  headers={"X-Org": "lab"}),
        make_spec("bearer", "http", url=backend.url("/m"), bearer_token="tok")))
    sent = [h for _, h in backend.requests]
    auths = sorted(h.get("Authorization") for h in sent)
    assert auths == ["Basic " + base64.b64encode(b"u:p w").decode(), "Bearer tok"]
    assert any(h.get("X-Org") == "lab" for h in sent)
    assert all("text/plain;version=0.0.4" in h.get("Accept", "") for h in sent)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def tls_backend(ca, tmp_path, require_client_cert=False) -> Backend:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)
    if require_client_cert:
        ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_REQUIRED
    b = Backend(tls=ctx)
    b.body("/m", BODY)
    return b


def test_tls_backend_is_verified_against_the_configured_ca(ca, tmp_path):
    b = tls_backend(ca, tmp_path)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        out = collect(merger_for(
            make_spec("trusted", "http", url=b.url("/m"), ca_file=str(ca_file)),
            make_spec("untrusted", "http", url=b.url("/m")),
            make_spec("skip", "http", url=b.url("/m"), insecure_skip_verify=True)))
    finally:
        b.close()
    assert 'thing{exporter_name="trusted"} 1' in out
    assert 'thing{exporter_name="skip"} 1' in out
    assert 'errors_total{exporter_name="untrusted",reason="tls"} 1' in out


def test_client_certificate_is_presented_to_a_mutual_tls_backend(ca, tmp_path):
    b = tls_backend(ca, tmp_path, require_client_cert=True)
    ca_file, cert = tmp_path / "ca.pem", tmp_path / "client.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    ca.issue_cert("client.local").private_key_and_cert_chain_pem.write_to_path(str(cert))
    try:
        out = collect(merger_for(
            make_spec("mtls", "http", url=b.url("/m"), ca_file=str(ca_file), cert_file=str(cert)),
            make_spec("nocert", "http", url=b.url("/m"), ca_file=str(ca_file), timeout=2)))
    finally:
        b.close()
    assert 'thing{exporter_name="mtls"} 1' in out
    assert 'klipper_exporter_source_up{exporter_name="nocert"} 0' in out


def test_unix_socket_backend(tmp_path):
    sock = str(tmp_path / "exporter.sock")
    b = Backend(unix_path=sock)
    b.body("/metrics", BODY)
    try:
        out = collect(merger_for(make_spec("sock", "unix", socket=sock, url="/metrics?x=1")))
    finally:
        b.close()
    assert 'thing{exporter_name="sock"} 1' in out
    assert b.requests[0][0] == "/metrics?x=1"
