"""The [prometheus] component inside a real Moonraker: loading, endpoint, options, auth."""
from __future__ import annotations

import contextlib
import time
from types import SimpleNamespace
from typing import Iterator, Tuple

import pytest

from simulator import Klippy, Moonraker, make_data_dir, remove_data_dir

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNTRUSTED = "10.255.0.0/16"  # the test client (127.0.0.1) is outside this range


@pytest.fixture(scope="module")
def printer():
    """One simulated printer with Moonraker and the component, shared by the module."""
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy) as moonraker:
            moonraker.wait_klippy_ready()
            # the component subscribes right after Klippy's ready event
            assert wait_for_sample(
                moonraker, 'klipper_extruder_target{extruder="extruder"}', 0.0) == 0.0
            yield klippy, moonraker


def sample_value(body: str, series: str):
    for line in body.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def wait_for_sample(moonraker: Moonraker, series: str, expected: float, timeout: float = 3.0):
    """Scrape until `series` has `expected` (Klippy pushes state every 250 ms)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = sample_value(moonraker.metrics().text, series)
        if value == expected:
            return value
        time.sleep(0.1)
    return value


def test_component_loads_in_moonraker(printer):
    _, moonraker = printer
    info = moonraker.server_info()
    assert "prometheus" in info["components"]
    assert "prometheus" not in info["failed_components"]


def test_metrics_endpoint_answers_text_exposition(printer, promtool_check):
    _, moonraker = printer
    response = moonraker.metrics()
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    assert "klipper_klippy_connected 1.0" in response.text
    assert 'klipper_klippy_state_info{state="ready"} 1.0' in response.text
    promtool_check(response.text)
    # Tornado hashes a GET's whole body into an ETag; no scraper asks for it, so the
    # metrics routes skip it (other routes keep theirs)
    assert "Etag" not in response.headers
    assert "Etag" in moonraker.request("GET", "/server/info").headers


def test_extruder_target_follows_m104_in_next_scrape(printer):
    klippy, moonraker = printer
    series = 'klipper_extruder_target{extruder="extruder"}'
    assert sample_value(moonraker.metrics().text, series) == 0.0
    klippy.gcode("M104 S200")
    assert wait_for_sample(moonraker, series, 200.0) == 200.0
    klippy.gcode("M104 S0")
    assert wait_for_sample(moonraker, series, 0.0) == 0.0


def test_unknown_module_in_query_is_rejected_by_name(printer):
    _, moonraker = printer
    response = moonraker.metrics(params={"modules": "printer,no_such_module"})
    assert response.status == 400
    assert "no_such_module" in response.text


def test_module_selection_limits_output(printer):
    _, moonraker = printer
    body = moonraker.metrics(params={"modules": "history"}).text
    assert "klipper_klippy_connected" in body  # the health signal is always served
    assert "klipper_extruder_target" not in body
    assert "klipper_moonraker_memory_kb" not in body
    go_alias = moonraker.metrics(params={"modules": "printer_objects"}).text
    assert "klipper_extruder_target" in go_alias


def test_repeated_modules_arguments_are_all_served(printer):
    """Prometheus sends `params: {modules: [a, b]}` (the Go exporter's example job) as
    ?modules=a&modules=b; Moonraker alone would hand the component only the last one."""
    _, moonraker = printer
    response = moonraker.metrics(params=[("modules", "process_stats"),
                                         ("modules", "printer_objects")])
    assert response.status == 200, response.text
    assert "klipper_moonraker_memory_kb" in response.text
    assert "klipper_extruder_target" in response.text
    assert "klipper_job_queue_length" not in response.text  # only what was asked for
    unknown = moonraker.metrics(params=[("modules", "bogus"), ("modules", "printer")])
    assert unknown.status == 400 and "bogus" in unknown.text


def test_a_get_requests_json_body_is_not_an_argument(printer):
    """Moonraker merges a JSON body's fields into an endpoint's arguments; a scrape's
    arguments are its query only (nor does a body reach forward_url_params backends)."""
    _, moonraker = printer
    response = moonraker.request("GET", "/server/metrics", params={"modules": "printer"},
                                 body={"modules": "history", "secret_path": "/etc/shadow"})
    assert response.status == 200, response.text
    assert "klipper_extruder_target" in response.text
    assert "klipper_history_jobs" not in response.text
    no_query = moonraker.request("GET", "/server/metrics", body={"modules": "bogus"})
    assert no_query.status == 200, no_query.text  # all modules: the body chose nothing


@pytest.mark.unit
def test_metrics_routes_are_tried_first_and_other_routes_keep_their_place():
    """Tornado tries a router's rules in order; Moonraker registers ~80 before a component
    loads. The metrics routes move to the front (Moonraker's own router class)."""
    import tornado.web
    from moonraker.components.application import DynamicRequestHandler, MutableRouter

    from moonraker_prometheus.component import _hook_routes

    router = MutableRouter(tornado.web.Application())
    for path in ("/server/info", "/printer/info", "/server/metrics", "/machine/proc_stats",
                 "/server/metrics/node"):
        router.add_handler(path, DynamicRequestHandler, {})
    app = SimpleNamespace(mutable_router=router)
    server = SimpleNamespace(lookup_component=lambda name, default=None: app)
    assert _hook_routes(server, ["/server/metrics", "/server/metrics/node"])
    order = [rule.matcher.regex.pattern for rule in router.rules]
    assert order == ["/server/metrics/node$", "/server/metrics$", "/server/info$",
                     "/printer/info$", "/machine/proc_stats$"]
    assert all(rule.target.__name__ == "MetricsRequestHandler" for rule in router.rules[:2])
    assert router.rules[2].target is DynamicRequestHandler


@pytest.fixture
def untrusted_moonraker():
    """Moonraker (no Klippy) whose trusted_clients excludes the test client."""
    servers = []

    def start(prometheus: str = "") -> Moonraker:
        server = Moonraker(None, prometheus=prometheus, trusted_clients=UNTRUSTED)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.cleanup()


def test_untrusted_client_without_credentials_gets_401(untrusted_moonraker):
    moonraker = untrusted_moonraker()
    assert moonraker.metrics().status == 401


def test_require_auth_false_serves_untrusted_client(untrusted_moonraker):
    moonraker = untrusted_moonraker("require_auth: False")
    response = moonraker.metrics()
    assert response.status == 200
    assert "klipper_klippy_connected 0.0" in response.text


@contextlib.contextmanager
def untrusted_server_and_api_key() -> Iterator[Tuple[Moonraker, str]]:
    """Moonraker that does not trust the test client, and its API key (read while trusted)."""
    data_dir = make_data_dir()
    try:
        with Moonraker(None, data_dir=data_dir) as trusted:
            api_key = trusted.get("/access/api_key").json()["result"]
        with Moonraker(None, data_dir=data_dir, trusted_clients=UNTRUSTED) as untrusted:
            yield untrusted, api_key
    finally:
        remove_data_dir(data_dir)


def test_api_key_header_authorizes_untrusted_client():
    with untrusted_server_and_api_key() as (untrusted, api_key):
        assert untrusted.metrics().status == 401
        assert untrusted.metrics(headers={"X-Api-Key": "wrong"}).status == 401
        assert untrusted.metrics(headers={"X-Api-Key": api_key}).status == 200


def test_go_exporter_apikey_authorization_header_is_accepted():
    """prometheus-klipper-exporter documents `authorization: {type: APIKEY, credentials:
    KEY}` in the Prometheus job: `Authorization: APIKEY KEY` works on /server/metrics."""
    with untrusted_server_and_api_key() as (untrusted, api_key):
        assert untrusted.metrics(headers={"Authorization": f"APIKEY {api_key}"}).status == 200
        assert untrusted.metrics(headers={"Authorization": "APIKEY wrong"}).status == 401
        # only the metrics endpoints translate it: Moonraker's own stay as they are
        assert untrusted.get("/server/info",
                             headers={"Authorization": f"APIKEY {api_key}"}).status == 401


def test_bad_option_values_warn_by_name_and_moonraker_keeps_serving():
    with Moonraker(None, prometheus="require_auth: maybe\nmodules: printer, bogus") as moonraker:
        info = moonraker.server_info()
        warnings = "\n".join(info["warnings"])
        assert "require_auth" in warnings
        assert "bogus" in warnings
        assert "prometheus" in info["components"]
        response = moonraker.metrics()
        assert response.status == 200
        assert "klipper_klippy_connected 0.0" in response.text


def test_metrics_without_klippy_report_disconnected_and_no_printer_series():
    with Moonraker(None) as moonraker:
        body = moonraker.metrics().text
        assert "klipper_klippy_connected 0.0" in body
        assert 'klipper_klippy_state_info{state="disconnected"} 1.0' in body
        assert "klipper_extruder" not in body
