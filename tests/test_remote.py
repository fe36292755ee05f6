"""The central exporter (`python -m moonraker_prometheus.remote`), live: real Klippy and
Moonraker from the simulator, the exporter as its own process, a real Prometheus.

- /probe serves what the component serves for the same printer, family by family and
  label set by label set, except the documented in-process-only data (IN_PROCESS_ONLY,
  each in docs/remote.md with its reason);
- prometheus-klipper-exporter's README job shape, unchanged, gets up=1 and printer series;
- faults: an unlisted target (403, nothing opened), a target down (probe_success 0 with
  its reason, no printer series, within the scrape timeout), a Klippy restart and a
  Moonraker restart (a correct probe again within seconds).
"""
from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Dict, List, Optional, Set, Tuple

import pytest

from simulator import Klippy, Moonraker, free_port, wait_for
from simulator.mqtt_standin import MqttStandin
from simulator.procs import REPO_ROOT, spawn, terminate
from simulator.services import moonraker_conf, settle
from simulator.spoolman_standin import SpoolmanStandin
from tests.loopback import LoopbackServer
from tests.promtool import promtool_check  # noqa: F401  (fixture)

# Families the component serves and the remote exporter cannot: Moonraker's API does not
# carry them (docs/remote.md, "In-process-only data", gives each reason).
IN_PROCESS_ONLY = {
    "klipper_moonraker_event_loop_blocked_total",
    "klipper_moonraker_sensor_error_info",
    "klipper_update_manager_last_refresh_timestamp_seconds",
}
# The probe's own families (blackbox_exporter's convention).
PROBE_FAMILIES = {"probe_success", "probe_duration_seconds", "klipper_probe_failure_info",
                  "klipper_probe_data_age_seconds", "klipper_probe_source_error_info"}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")
PAUSE_FILE = "pause_print.gcode"


def families(text: str) -> Dict[str, Set[str]]:
    """{family: its label sets (the `{...}` text of each sample)}."""
    found: Dict[str, Set[str]] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, line
            found.setdefault(m.group(1), set()).add(m.group(2) or "")
    return found


def values(text: str) -> Dict[str, float]:
    out = {}
    for line in text.splitlines():
        m = SAMPLE.match(line) if line and not line.startswith("#") else None
        if m:
            out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


class Remote:
    """The exporter as its own process, listening on a free loopback port."""

    def __init__(self, tmp: str, *args: str, plain_http: bool = True) -> None:
        """`plain_http`: wait until it answers http:// (False: a TLS listener, the caller
        waits)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(tmp, f"remote-{self.port}.log")
        env = {**os.environ, "PYTHONPATH": REPO_ROOT}
        self.proc = spawn([sys.executable, "-m", "moonraker_prometheus.remote",
                           "--listen", f"127.0.0.1:{self.port}", "--log.level", "debug",
                           *args], "remote exporter", self.log_path, cwd=REPO_ROOT, env=env)
        if plain_http:
            wait_for(lambda: self.get("/")[0] == 200, 15, 0.1, "remote exporter listening")

    def get(self, path: str, timeout_header: Optional[str] = None,
            timeout: float = 15.0) -> Tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if timeout_header:
            request.add_header("X-Prometheus-Scrape-Timeout-Seconds", timeout_header)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError("remote exporter exited:\n" + self.log())
            return 0, ""

    def probe(self, target: str, modules: str = "", timeout_header: str = "5"
              ) -> Tuple[int, str, float]:
        """(status, body, seconds taken) of one probe."""
        query = f"/probe?target={target}" + (f"&modules={modules}" if modules else "")
        started = time.monotonic()
        status, body = self.get(query, timeout_header)
        return status, body, time.monotonic() - started

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-6000:]

    def stop(self) -> None:
        terminate(self.proc)


def target_of(moonraker: Moonraker) -> str:
    return f"{moonraker.host}:{moonraker.port}"


@pytest.fixture(scope="module")
def mqtt():
    with MqttStandin() as broker:
        yield broker


@pytest.fixture(scope="module")
def spoolman():
    standin = SpoolmanStandin().start()
    yield standin
    standin.stop()


@pytest.fixture(scope="module")
def printer(mqtt, spoolman):
    with Klippy("klipper") as klippy:
        klippy.wait_ready()
        moonraker = Moonraker(klippy, extra_config=moonraker_conf(mqtt.port, spoolman.url))
        with moonraker:
            settle(moonraker)
            mqtt.publish("test/room/state", b'{"temperature": 21.5, "humidity": 40}')
            yield klippy, moonraker


@pytest.fixture(scope="module")
def remote(printer, tmp_path_factory):
    _, moonraker = printer
    exporter = Remote(str(tmp_path_factory.mktemp("remote")), "--target", target_of(moonraker))
    yield exporter
    exporter.stop()


def differences(component: str, probe: str) -> Dict[str, Tuple[List[str], List[str]]]:
    """{family: (label sets only the component has, label sets only the probe has)}."""
    ours, theirs = families(component), families(probe)
    out = {}
    for name in sorted(set(ours) | set(theirs)):
        if name in PROBE_FAMILIES:
            continue
        a, b = ours.get(name, set()), theirs.get(name, set())
        if a != b:
            out[name] = (sorted(a - b)[:5], sorted(b - a)[:5])
    return out


def assert_probe_matches_component(moonraker: Moonraker, remote: Remote,
                                   timeout: float = 20.0) -> Dict[str, Set[str]]:
    """Scrapes both at the same moment until their families and label sets agree except
    IN_PROCESS_ONLY (values move every second, label sets settle within a push or two).
    Returns the probe's families."""
    deadline = time.monotonic() + timeout
    while True:
        component = moonraker.metrics().text
        status, probe, _ = remote.probe(target_of(moonraker))
        assert status == 200, probe
        diff = differences(component, probe)
        in_process = {n for n in diff if n in IN_PROCESS_ONLY and not diff[n][1]}
        if not set(diff) - in_process:
            assert "probe_success 1.0" in probe
            return families(probe)
        if time.monotonic() > deadline:
            pytest.fail(f"the probe and /server/metrics differ: {diff}\n{remote.log()}")
        time.sleep(0.5)


def test_probe_serves_the_components_families_and_label_sets(printer, remote,
                                                              promtool_check):
    klippy, moonraker = printer
    found = assert_probe_matches_component(moonraker, remote)
    # the comparison saw every kind of data: printer objects, Moonraker's components
    for name in ("klipper_extruder_temperature", "klipper_klippy_state_info",
                 "klipper_system_cpu", "klipper_network_rx_bytes", "klipper_job_queue_length",
                 "klipper_total_jobs", "klipper_disk_usage_total", "klipper_power_device_info",
                 "klipper_moonraker_sensor_value", "klipper_spoolman_spool_info",
                 "klipper_service_available" if "klipper_service_available" in found
                 else "klipper_system_cpu_count", "klipper_printer_info"):
        assert name in found, name
    assert "klipper_moonraker_event_loop_blocked_total" not in found
    # the same while a job is in progress (history's current job, print_stats)
    assert moonraker.post("/printer/print/start", params={"filename": PAUSE_FILE}).status == 200
    try:
        assert klippy.wait_status("print_stats", "state", "paused", timeout=15) == "paused"
        # Klippy pauses before Moonraker's history records the job: wait for the component
        # to show it, or both may agree that there is no job yet
        wait_for(lambda: "klipper_current_job_info{" in moonraker.metrics().text, timeout=15,
                 what="history's current job in /server/metrics")
        found = assert_probe_matches_component(moonraker, remote)
        assert "klipper_current_job_info" in found
    finally:
        moonraker.post("/printer/print/cancel")
    _, probe, _ = remote.probe(target_of(moonraker))
    promtool_check(probe)


def test_in_process_only_data_is_documented_with_its_reason():
    with open(os.path.join(REPO_ROOT, "docs", "remote.md"), encoding="utf-8") as f:
        doc = f.read()
    section = doc.split("## In-process-only data", 1)[1].split("\n## ", 1)[0]
    for name in IN_PROCESS_ONLY:
        line = next((l for l in section.splitlines() if f"`{name}`" in l), "")
        assert line and len(line) > len(name) + 20, f"{name}: no reason in docs/remote.md"


def test_go_module_names_select_modules_repeated_or_comma_separated(printer, remote):
    _, moonraker = printer
    target = target_of(moonraker)
    status, body, _ = remote.probe(target, "process_stats&modules=job_queue")
    assert status == 200
    found = families(body)
    assert "klipper_moonraker_cpu_usage" in found and "klipper_job_queue_length" in found
    assert "klipper_extruder_temperature" not in found
    status, body, _ = remote.probe(target, "printer_objects,network_stats")
    found = families(body)
    assert "klipper_extruder_temperature" in found and "klipper_network_rx_bytes" in found
    assert "klipper_moonraker_cpu_usage" not in found
    status, body, _ = remote.probe(target, "nonsense")
    assert status == 400 and "nonsense" in body


def test_a_probe_in_steady_state_sends_moonraker_no_request(printer, remote):
    _, moonraker = printer
    target = target_of(moonraker)
    remote.probe(target)

    def requests() -> float:
        own = values(remote.get("/metrics")[1])
        return own[f'klipper_remote_target_requests_total{{target="{target}"}}']

    time.sleep(1.0)  # background fetches of the first probe are done
    before = requests()
    for _ in range(20):
        assert remote.probe(target)[0] == 200
    assert requests() == before


def test_own_metrics_show_each_targets_connection(printer, remote):
    _, moonraker = printer
    target = target_of(moonraker)
    remote.probe(target)
    status, body = remote.get("/metrics")
    assert status == 200
    found = values(body)
    assert found[f'klipper_remote_target_connected{{target="{target}"}}'] == 1.0
    assert found[f'klipper_remote_target_update_age_seconds{{target="{target}"}}'] < 5.0
    assert "process_resident_memory_bytes" in found


def test_an_unlisted_target_is_refused_and_never_connected(remote):
    hung = LoopbackServer()  # accepts and never answers (a hung host)
    try:
        status, body, _ = remote.probe(f"127.0.0.1:{hung.port}")
        assert status == 403 and "not listed" in body
        time.sleep(0.5)
        assert hung.open == []  # nothing accepted
        assert remote.probe("http://127.0.0.1:80/x")[0] == 400  # no URL from a scraper
    finally:
        hung.close()


def test_a_target_down_or_hung_answers_probe_success_0_in_time(tmp_path):
    closed = free_port()
    hung = LoopbackServer()
    exporter = Remote(str(tmp_path), "--target", f"127.0.0.1:{closed}",
                      "--target", f"127.0.0.1:{hung.port}")
    try:
        status, body, took = exporter.probe(f"127.0.0.1:{closed}", timeout_header="3")
        assert status == 200 and took < 3.0
        found = values(body)
        assert found["probe_success"] == 0.0
        assert found['klipper_probe_failure_info{reason="refused"}'] == 1.0
        assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
        status, body, took = exporter.probe(f"127.0.0.1:{hung.port}", timeout_header="3")
        assert status == 200 and took < 3.0, took
        found = values(body)
        assert found["probe_success"] == 0.0
        assert any(n.startswith("klipper_probe_failure_info") for n in found)
        assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
    finally:
        exporter.stop()
        hung.close()


def wait_probe(remote: Remote, target: str, check, timeout: float) -> Dict[str, float]:
    deadline = time.monotonic() + timeout
    while True:
        status, body, _ = remote.probe(target, timeout_header="2")
        found = values(body) if status == 200 else {}
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"no such probe in {timeout} s; last: {body[-3000:]}\n"
                                 f"{remote.log()}")
        time.sleep(0.2)


def ready_with_printer(found: Dict[str, float]) -> bool:
    return (found.get("probe_success") == 1.0
            and found.get('klipper_klippy_state_info{state="ready"}') == 1.0
            and any(n.startswith("klipper_extruder_temperature") for n in found))


@pytest.mark.parametrize("endpoint", ["/printer/restart", "/printer/firmware_restart"])
def test_a_klippy_restart_gives_a_correct_probe_within_seconds(printer, remote, endpoint):
    klippy, moonraker = printer
    target = target_of(moonraker)
    wait_probe(remote, target, ready_with_printer, 10)
    assert moonraker.post(endpoint).status == 200
    # While Klippy is away: Moonraker is connected, the printer series are gone.
    wait_probe(remote, target, lambda f: f.get("probe_success") == 1.0 and not f.get(
        'klipper_klippy_state_info{state="ready"}') and not any(
        n.startswith("klipper_extruder_temperature") for n in f), 10)
    moonraker.wait_klippy_ready()
    back = time.monotonic()
    wait_probe(remote, target, ready_with_printer, 5)
    assert time.monotonic() - back < 5
    settle(moonraker)


def test_a_moonraker_restart_gives_a_correct_probe_within_seconds(printer, remote):
    klippy, moonraker = printer
    target = target_of(moonraker)
    wait_probe(remote, target, ready_with_printer, 10)
    moonraker.stop()
    found = wait_probe(remote, target, lambda f: f.get("probe_success") == 0.0, 10)
    assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
    moonraker.start()
    moonraker.wait_klippy_ready()
    back = time.monotonic()
    wait_probe(remote, target, ready_with_printer, 10)
    assert time.monotonic() - back < 10
    settle(moonraker)


def test_the_targets_file_is_reloaded_when_it_changes(printer, tmp_path):
    _, moonraker = printer
    target = target_of(moonraker)
    targets = tmp_path / "targets.json"
    targets.write_text('[{"targets": ["127.0.0.1:1"], "labels": {}}]')
    exporter = Remote(str(tmp_path), "--targets-file", str(targets))
    try:
        assert exporter.probe(target)[0] == 403
        targets.write_text(f'[{{"targets": ["{target}"], "labels": {{}}}}]')
        found = wait_probe(exporter, target, ready_with_printer, 15)
        assert found["probe_success"] == 1.0
        targets.write_text("[{broken")  # kept: the last good list
        time.sleep(6)
        assert exporter.probe(target)[0] == 200
        targets.write_text('[{"targets": ["127.0.0.1:1"]}]')
        wait_for(lambda: exporter.probe(target)[0] == 403, 15, 0.5, "target unlisted")
        own = values(exporter.get("/metrics")[1])
        assert f'klipper_remote_target_connected{{target="{target}"}}' not in own
    finally:
        exporter.stop()


class CuttableLink(LoopbackServer):
    """A TCP forwarder to `port` whose link can be cut: while cut, bytes are dropped in
    both directions and no socket is closed (as when a cable is pulled); connections made
    after the cut heals go through."""

    def __init__(self, port: int) -> None:
        self.target = port
        self.cut = False
        super().__init__()

    def handle(self, client: socket.socket) -> None:
        if self.cut:
            self.open.append(client)  # a SYN that got through; nothing more will
            return
        server = socket.create_connection(("127.0.0.1", self.target))
        self.open += [client, server]
        dead = threading.Event()
        for a, b in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(a, b, dead), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, dead: threading.Event) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                if not dead.is_set() and not self.cut:
                    dst.close()
                return
            if self.cut:
                dead.set()  # this connection stays cut, as a timed-out TCP stream would
            if dead.is_set():
                continue
            try:
                dst.sendall(data)
            except OSError:
                return


# The issue's network cut: 30 s without a byte either way (longer than the pings' 5 s and
# the stale-data limit of 10 s, shorter than a kernel's TCP give-up).
CUT_SECONDS = 30.0


def test_a_network_cut_gives_probe_success_0_then_a_correct_probe_after(printer, tmp_path):
    _, moonraker = printer
    link = CuttableLink(moonraker.port)
    target = f"127.0.0.1:{link.port}"
    exporter = Remote(str(tmp_path), "--target", target)
    try:
        wait_probe(exporter, target, ready_with_printer, 15)
        link.cut = True
        cut = time.monotonic()
        found = wait_probe(exporter, target, lambda f: f.get("probe_success") == 0.0, 25)
        assert not [n for n in found if n.startswith("klipper_") and "probe" not in n]
        assert time.monotonic() - cut < 20
        while time.monotonic() - cut < CUT_SECONDS:  # every probe of the cut: no series
            status, body, took = exporter.probe(target, timeout_header="2")
            during = values(body)
            assert status == 200 and during["probe_success"] == 0.0, body[-2000:]
            assert not [n for n in during if n.startswith("klipper_") and "probe" not in n]
            assert took < 2.5
            time.sleep(1.0)
        link.cut = False
        healed = time.monotonic()
        wait_probe(exporter, target, ready_with_printer, 15)
        assert time.monotonic() - healed < 15
    finally:
        exporter.stop()
        link.close()


def test_a_printer_powered_off_shows_klippys_shutdown_then_recovers(printer, remote):
    """The MCU stops answering (its power is cut): Klippy shuts down with its own message;
    the probe says so exactly as the component does, without printer series, and is correct
    again within seconds once the printer is powered on (its MCUs and Klippy start)."""
    klippy, moonraker = printer
    target = target_of(moonraker)
    wait_probe(remote, target, ready_with_printer, 10)
    klippy.mcu("mcu").control(op="fault", fault="mute")
    try:
        klippy.wait_ready(timeout=60, state="shutdown")
        found = wait_probe(remote, target, lambda f: f.get(
            'klipper_klippy_state_info{state="shutdown"}') == 1.0, 10)
        assert found["probe_success"] == 1.0
        assert not any(n.startswith("klipper_extruder_temperature") for n in found)
        messages = {n for n in found if n.startswith("klipper_klippy_state_message_info")}
        assert any("Lost communication with MCU" in n for n in messages), messages
        ours = families(moonraker.metrics().text)
        assert ours["klipper_klippy_state_message_info"] == {
            n[len("klipper_klippy_state_message_info"):] for n in messages}
    finally:
        klippy.stop()  # powered off: the MCUs and Klippy stop
    klippy.start()
    moonraker.wait_klippy_ready()
    back = time.monotonic()
    wait_probe(remote, target, ready_with_printer, 5)
    assert time.monotonic() - back < 5
    settle(moonraker)


def test_any_target_with_allow_any_target_and_max_targets_bounding_only_unlisted_ones(
        printer, tmp_path):
    """max_targets 1: the unlisted printer takes the one slot; another unlisted address
    answers probe_success 0, reason max_targets (HTTP 200), and a listed (refused) one is
    still probed."""
    _, moonraker = printer
    target = target_of(moonraker)
    listed = f"127.0.0.1:{free_port()}"
    config = tmp_path / "remote.yml"
    config.write_text("max_targets: 1\n")
    exporter = Remote(str(tmp_path), "--allow-any-target", "--config", str(config),
                      "--target", listed)
    try:
        found = wait_probe(exporter, target, ready_with_printer, 15)
        assert found["probe_success"] == 1.0
        status, body, _ = exporter.probe(f"127.0.0.1:{free_port()}")
        assert status == 200, body
        found = values(body)
        assert found["probe_success"] == 0.0
        assert found['klipper_probe_failure_info{reason="max_targets"}'] == 1.0
        status, body, _ = exporter.probe(listed, timeout_header="3")
        assert status == 200 and values(body)['klipper_probe_failure_info{reason="refused"}']
        own = values(exporter.get("/metrics")[1])
        assert own["klipper_remote_probes_over_max_targets_total"] == 1.0
    finally:
        exporter.stop()


def test_a_target_nobody_probes_is_disconnected(printer, tmp_path):
    _, moonraker = printer
    target = target_of(moonraker)
    config = tmp_path / "remote.yml"
    config.write_text(f"idle_timeout: 10\ntargets:\n  - address: {target}\n")
    exporter = Remote(str(tmp_path), "--config", str(config))
    try:
        before = moonraker.server_info()["websocket_count"]
        wait_probe(exporter, target, ready_with_printer, 15)
        assert moonraker.server_info()["websocket_count"] == before + 1
        key = f'klipper_remote_target_connected{{target="{target}"}}'
        wait_for(lambda: values(exporter.get("/metrics")[1]).get(key, 0.0) == 0.0, 25, 0.5,
                 "the idle target disconnected")
        wait_for(lambda: moonraker.server_info()["websocket_count"] == before, 10, 0.2,
                 "Moonraker's websocket closed")
        wait_probe(exporter, target, ready_with_printer, 15)  # and back at the next probe
    finally:
        exporter.stop()
