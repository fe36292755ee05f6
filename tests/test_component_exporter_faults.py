"""Hostile [prometheus exporter] sections and backends, in real Moonraker.

A hung backend, a slow one scraped by 20 clients at once, colliding section names and
malformed sections holding credentials: Moonraker keeps serving /server/metrics in time,
shares one backend request among concurrent scrapes and never shows a secret.
"""
from __future__ import annotations

import concurrent.futures
import time

import pytest

from simulator import Moonraker
from simulator.backend import Backend

SECRET = "hunter2TOPSECRET"
GOOD = b"# TYPE backend_up gauge\nbackend_up 1\n"


@pytest.fixture(scope="module")
def backend():
    b = Backend()
    b.body("/slow", GOOD, delay=1.0)
    b.body("/hung", GOOD, delay=60)
    b.body("/dup", GOOD)
    yield b
    b.close()


@pytest.fixture(scope="module")
def moonraker(backend):
    extra = f"""
[prometheus exporter slow]
url: {backend.url("/slow")}

[prometheus exporter hung]
url: {backend.url("/hung")}
timeout: 30s

[prometheus exporter dup]
url: {backend.url("/dup")}

[prometheus exporter  dup]
url: {backend.url("/dup")}?second=1

[prometheus exporter typo]
type: htpp
url: http://user:{SECRET}@127.0.0.1:9/m
username: user
password: {SECRET}

[prometheus exporter colon]
url: http://127.0.0.1:9/m
headers:
  Authorization: Bearer {SECRET}

[prometheus exporter scheme]
url: ftp://user:{SECRET}@127.0.0.1/m

[prometheus exporter unknown]
url: http://127.0.0.1:9/m
bearer_token: {SECRET}
pasword: {SECRET}
"""
    # scrape_timeout out of range: a warning, and the default (which answers inside 5 s)
    with Moonraker(None, prometheus="scrape_timeout: 500", extra_config=extra) as server:
        yield server


def test_a_hung_source_costs_nothing_under_a_5s_scrape_timeout(moonraker):
    for _ in range(2):
        started = time.monotonic()
        response = moonraker.get("/server/metrics", timeout=5)
        elapsed = time.monotonic() - started
        assert response.status == 200
        assert elapsed < 4.6, elapsed
        assert "klipper_klippy_connected 0.0" in response.text
        assert 'klipper_exporter_source_up{exporter_name="hung"} 0' in response.text
        assert 'backend_up{exporter_name="slow"} 1' in response.text


def test_concurrent_scrapes_share_one_request_per_source(moonraker, backend):
    before = sum(1 for p, _ in backend.requests if p == "/slow")
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda _: moonraker.get("/server/metrics", timeout=10),
                                  range(20)))
    assert all(r.status == 200 for r in responses)
    assert all('backend_up{exporter_name="slow"} 1' in r.text for r in responses)
    requests = sum(1 for p, _ in backend.requests if p == "/slow") - before
    assert requests <= 2, requests  # one run; two if the last clients arrive after it ended


def test_colliding_section_names_skip_the_later_section_with_a_warning(moonraker):
    body = moonraker.get("/server/metrics", timeout=10).text
    assert 'backend_up{exporter_name="dup"} 1' in body
    warnings = moonraker.server_info()["warnings"]
    assert any("[prometheus exporter  dup] option 'name'" in w and "already used" in w
               for w in warnings), warnings


def test_no_secret_in_warnings_log_or_metrics(moonraker):
    warnings = moonraker.server_info()["warnings"]
    for section, option in (("typo", "type"), ("colon", "headers"), ("scheme", "url"),
                            ("unknown", "pasword")):
        assert any(w.startswith("[prometheus exporter %s] option '%s'" % (section, option))
                   for w in warnings), (section, warnings)
    body = moonraker.get("/server/metrics", timeout=10).text
    everything = "\n".join(warnings) + log_after_config_dump(moonraker.log_text()) + body
    assert SECRET not in everything


def log_after_config_dump(log: str) -> str:
    """The log without the copy of moonraker.conf Moonraker writes at startup, before any
    component loads (docs/sidecar.md: credentials belong in the secrets file)."""
    start = log.index("Moonraker Configuration")
    end = log.index("All Configuration Files", start)
    assert SECRET in log[start:end]  # the dump is what this removes, nothing else
    return log[:start] + log[end:]


def test_scrape_timeout_warning_is_clear(moonraker):
    warnings = [w for w in moonraker.server_info()["warnings"] if "scrape_timeout" in w]
    assert warnings == ["[prometheus]: option 'scrape_timeout': must be above 0 and at most "
                        "120 seconds, got 500 (using the default: 4)"]
