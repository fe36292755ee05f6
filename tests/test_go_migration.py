"""prometheus-klipper-exporter's Prometheus job, pointed at Moonraker, works as it is.

Real Prometheus scrapes real Moonraker (which does not trust it) with the Go exporter's
documented job shape: modules as a YAML list (repeated ?modules= arguments) and the API
key sent as `Authorization: APIKEY <key>`. Every listed module must be stored, and only
those.
"""
from __future__ import annotations

import time

from simulator import Moonraker, free_port, terminate, wait_for
from simulator.procs import spawn
from tests.test_alerts import require_tool
from tests.test_dashboard import Prom

UNTRUSTED = "10.255.0.0/16"  # Prometheus (127.0.0.1) is outside this range


def test_go_exporter_job_with_module_list_and_apikey(tmp_path):
    prometheus = require_tool("prometheus")
    data_dir = str(tmp_path / "printer_data")
    with Moonraker(None, data_dir=data_dir) as trusted:
        api_key = trusted.get("/access/api_key").json()["result"]
    key_file = tmp_path / "moonraker-api-key"
    key_file.write_text(api_key + "\n")
    with Moonraker(None, data_dir=data_dir, trusted_clients=UNTRUSTED) as moonraker:
        assert moonraker.metrics().status == 401  # Prometheus needs the key
        port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "scrape_configs:\n  - job_name: klipper\n    scrape_interval: 1s\n"
            "    scrape_timeout: 1s\n    metrics_path: /server/metrics\n"
            "    params:\n      modules:\n        - process_stats\n        - job_queue\n"
            f"    authorization:\n      type: APIKEY\n      credentials_file: {key_file}\n"
            f"    static_configs:\n      - targets: ['127.0.0.1:{moonraker.port}']\n")
        proc = spawn([prometheus, f"--config.file={config}",
                      f"--storage.tsdb.path={tmp_path / 'data'}",
                      f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                     "prometheus", str(tmp_path / "prometheus.log"), cwd=str(tmp_path))
        try:
            prom = Prom(f"http://127.0.0.1:{port}")

            def target():
                try:
                    targets = prom.get("/api/v1/targets")["data"]["activeTargets"]
                except OSError:
                    return None
                if targets and targets[0]["health"] != "unknown":
                    return targets[0]
                return None

            scraped = wait_for(target, 30, 0.25, "the first scrape")
            assert scraped["health"] == "up", scraped["lastError"]
            time.sleep(1.5)  # stored and queryable

            def stored(name: str) -> bool:
                return bool(prom.get("/api/v1/query", query=name)["data"]["result"])

            assert stored("klipper_moonraker_memory_kb")  # process_stats
            assert stored("klipper_job_queue_length")  # job_queue
            assert not stored("klipper_network_rx_bytes")  # not asked for
        finally:
            terminate(proc)
