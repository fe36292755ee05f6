"""[prometheus exporter NAME] sections: other exporters merged by the sidecar inside Moonraker."""
from __future__ import annotations

import pytest

from simulator import Moonraker, free_port
from tests.promtool import assert_promtool_clean, check_metrics
from tests.sidecar.support import exporter_starter


def assert_parses_and_ours_are_clean(body: str) -> None:
    """Backends bring their own lint findings; the body must parse and ours stay clean."""
    code, findings = check_metrics(body)
    assert code != 1, "\n".join(findings)
    ours = "\n".join(ln for ln in body.splitlines() if "klipper_" in ln.split(" ", 3)[:3][-1]
                     or ln.startswith("klipper_"))
    assert_promtool_clean(ours + "\n")


@pytest.fixture(scope="module")
def node_exporter():
    start, stop_all = exporter_starter()
    exporter = start("prometheus-node-exporter", "--collector.disable-defaults",
                     "--collector.cpu", "--collector.meminfo", "--collector.loadavg")
    exporter.wait_ready()
    yield exporter
    stop_all()


@pytest.fixture(scope="module")
def moonraker(node_exporter, tmp_path_factory):
    textfile = tmp_path_factory.mktemp("textfile") / "job.prom"
    textfile.write_text('# TYPE backup_last_success_seconds gauge\n'
                        'backup_last_success_seconds{target="nas \\"A\\""} 1.7e9\n')
    dead_port = free_port()
    extra = f"""
[prometheus exporter node]
type: http
url: {node_exporter.url}
labels: role=host

[prometheus exporter backups]
type: file
path: {textfile}
group: files

[prometheus exporter gone]
type: http
url: http://127.0.0.1:{dead_port}/metrics
timeout: 1s

[prometheus exporter broken]
type: ftp
"""
    with Moonraker(None, extra_config=extra) as server:
        yield server


def test_backend_samples_are_merged_with_exporter_name(moonraker):
    response = moonraker.metrics()
    assert response.status == 200
    body = response.text
    node_lines = [ln for ln in body.splitlines() if ln.startswith("node_load1")]
    assert node_lines and all('exporter_name="node"' in ln and 'role="host"' in ln
                              for ln in node_lines)
    assert "klipper_klippy_connected 0.0" in body
    assert 'klipper_exporter_source_up{exporter_name="node"} 1' in body
    assert_parses_and_ours_are_clean(body)


def test_dead_backend_is_reported_and_the_rest_is_served(moonraker):
    body = moonraker.metrics().text
    assert 'klipper_exporter_source_up{exporter_name="gone"} 0' in body
    assert "node_load1" in body


def test_bad_exporter_section_is_a_named_warning(moonraker):
    warnings = "\n".join(moonraker.server_info()["warnings"])
    assert "[prometheus exporter broken]" in warnings
    assert "'type'" in warnings


def test_group_is_served_on_its_own_path_only(moonraker):
    group = moonraker.get("/server/metrics/files")
    assert group.status == 200
    assert group.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert ('backup_last_success_seconds{exporter_name="backups",target="nas \\"A\\""} 1.7e9'
            in group.text)
    assert "klipper_klippy_connected" not in group.text
    assert "backup_last_success_seconds" not in moonraker.metrics().text
    assert_parses_and_ours_are_clean(group.text)


def test_module_selection_includes_exporters_only_when_asked(moonraker):
    assert "node_load1" not in moonraker.metrics(params={"modules": "klippy"}).text
    assert "node_load1" in moonraker.metrics(params={"modules": "exporters"}).text


def test_group_path_follows_moonraker_authorization(node_exporter, tmp_path):
    extra = f"""
[prometheus exporter node]
type: http
url: {node_exporter.url}
group: node
"""
    with Moonraker(None, extra_config=extra, trusted_clients="10.255.0.0/16") as server:
        assert server.get("/server/metrics/node").status == 401
