"""prometheus-klipper-exporter's README scrape jobs, unchanged but for the addresses, against
the central exporter: a real Prometheus, a real Klippy and Moonraker (no component in it).

The jobs are the README's exactly: metrics_path /probe, the three relabellings
(__address__ -> __param_target, __param_target -> instance, __address__ replaced by the
exporter's address), and the optional job on the exporter's own /metrics.
"""
from __future__ import annotations

import os

import pytest

from simulator import Klippy, Moonraker
from simulator.farm import PrometheusServer
from tests.test_alerts import require_tool
from tests.test_remote import Remote, target_of

README_JOBS = """
  - job_name: "klipper"
    scrape_interval: 5s
    metrics_path: /probe
    static_configs:
      - targets: [ '{printer}' ]
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: {exporter}

  # optional exporter metrics
  - job_name: "klipper-exporter"
    scrape_interval: 5s
    metrics_path: /metrics
    static_configs:
      - targets: [ '{exporter}' ]
"""


@pytest.fixture
def printer():
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        with Moonraker(klippy, prometheus=None) as moonraker:  # nothing installed in it
            moonraker.wait_klippy_ready()
            yield klippy, moonraker


def test_the_go_exporters_readme_jobs_get_up_and_printer_series(printer, tmp_path):
    require_tool("prometheus")
    _, moonraker = printer
    printer_address = target_of(moonraker)
    remote = Remote(str(tmp_path), "--target", printer_address)
    exporter = f"127.0.0.1:{remote.port}"
    prom = PrometheusServer(os.path.join(str(tmp_path), "prom"),
                            README_JOBS.replace("{printer}", printer_address)
                            .replace("{exporter}", exporter))
    try:
        prom.start()
        up = prom.wait_query('up', lambda r: len(r) == 2 and all(
            s["value"][1] == "1" for s in r), timeout=40)
        assert {(s["metric"]["job"], s["metric"]["instance"]) for s in up} == {
            ("klipper", printer_address), ("klipper-exporter", exporter)}
        temps = prom.wait_query('klipper_extruder_temperature{job="klipper"}',
                                lambda r: len(r) >= 1, timeout=20)
        assert temps[0]["metric"]["instance"] == printer_address
        assert prom.query('probe_success{job="klipper"}')[0]["value"][1] == "1"
        ready = prom.query('klipper_klippy_state_info{job="klipper",state="ready"}')
        assert ready and ready[0]["value"][1] == "1"
        # the exporter's own job: the target's connection, once connected
        prom.wait_query(f'klipper_remote_target_connected{{job="klipper-exporter",'
                        f'target="{printer_address}"}}',
                        lambda r: r and r[0]["value"][1] == "1", timeout=20)
    finally:
        prom.stop()
        remote.stop()
