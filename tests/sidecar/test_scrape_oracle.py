"""What a real Prometheus stores when it scrapes a body directly is what the merge serves.

Prometheus' scrape parser, not promtool's stricter text parser, is the oracle for what is
valid: a body whose last line has no newline (several exporters and scripts end so) is
stored by a direct scrape, so the merge must serve that sample too.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from moonraker_prometheus.sidecar.expfmt import Rewriter, parse, render
from simulator.farm import PrometheusServer

BODY = b"# TYPE a gauge\na 1\nb 12"  # no newline after the last line


@pytest.fixture
def exporter():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_sample_prometheus_stores_from_a_direct_scrape_is_served_by_the_merge(
        exporter, tmp_path):
    job = ("  - job_name: direct\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
           "    static_configs:\n      - targets: [\"%s\"]\n" % exporter)
    prom = PrometheusServer(str(tmp_path / "prometheus"), job).start()
    try:
        stored = prom.wait_query('{job="direct",__name__=~"a|b"}', lambda r: len(r) == 2)
    finally:
        prom.stop()
    assert {s["metric"]["__name__"]: s["value"][1] for s in stored} == {"a": "1", "b": "12"}
    parsed = parse(BODY, Rewriter(rewrite=False))
    assert parsed.dropped == {}
    assert render(parsed.families.values()) == "# TYPE a gauge\na 1\n# TYPE b untyped\nb 12\n"
