"""A farm of real simulated printers and real Prometheus servers, for tests and bench/.

    printers = start_printers([PrinterSpec("alpha"), PrinterSpec("bravo")])
    prom = PrometheusServer(tmp_dir, scrape_config(file_sd=[path]), rule_files=[...]).start()
    prom.query('up')
    ...
    prom.stop(); stop_printers(printers)

Each printer is one real Klippy (live, on simulated MCU firmware) and one real Moonraker with the
component and `[prometheus] printer_name`; Klippys and Moonrakers start concurrently, so N
printers take about as long as the slowest one. Prometheus is Debian's `prometheus` binary.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import yaml

from simulator import HarnessError, Klippy, Moonraker, free_port, terminate, wait_for
from simulator.procs import spawn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMETHEUS_DIR = os.path.join(REPO, "prometheus")

# A power device named "printer" (what rules.yml treats as the printer's supply), switched
# through Klippy's [output_pin power_relay] of the simulated printer.
POWER_DEVICE_CONF = """
[power printer]
type: klipper_device
object_name: output_pin power_relay
"""


@dataclass
class PrinterSpec:
    name: str
    extra_config: str = ""  # appended to moonraker.conf
    prometheus: str = "require_auth: False"  # [prometheus] body (printer_name is added)
    klippy_config: str = ""  # appended to Klippy's printer.cfg


@dataclass
class Printer:
    name: str
    klippy: Klippy
    moonraker: Moonraker

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.moonraker.port}"


def start_printers(specs: Sequence[PrinterSpec], flavour: str = "klipper",
                   timeout: float = 90.0) -> List[Printer]:
    """Start one Klippy + Moonraker per spec concurrently; all ready, or none left running."""
    printers: List[Printer] = []
    klippys: List[Klippy] = []
    try:
        for spec in specs:
            klippys.append(Klippy(flavour, extra_config=spec.klippy_config).start())
        for k in klippys:
            k.wait_ready(timeout=timeout)
        for spec, k in zip(specs, klippys):
            m = Moonraker(k, prometheus=f"printer_name: {spec.name}\n{spec.prometheus}",
                          extra_config=spec.extra_config)
            printers.append(Printer(spec.name, k, m))
        for p in printers:
            p.moonraker.start(wait=False)
        for p in printers:
            p.moonraker.wait_started(timeout)
        for p in printers:
            p.moonraker.wait_klippy_ready(timeout)
        return printers
    except BaseException:
        for p in printers:
            p.moonraker.cleanup()
        for k in klippys:
            k.cleanup()
        raise


def stop_printers(printers: Sequence[Printer]) -> None:
    for p in printers:
        p.moonraker.cleanup()
        p.klippy.cleanup()


def scrape_config(targets: Sequence[str] = (), file_sd: Sequence[str] = (),
                  interval: str = "1s", job: str = "klipper") -> str:
    """The YAML of one `klipper` scrape job on /server/metrics."""
    lines = [f"  - job_name: {job}", "    metrics_path: /server/metrics",
             f"    scrape_interval: {interval}", f"    scrape_timeout: {interval}"]
    if targets:
        lines += ["    static_configs:", "      - targets: " + json.dumps(list(targets))]
    if file_sd:
        lines += ["    file_sd_configs:", "      - files: " + json.dumps(list(file_sd))]
    return "\n".join(lines) + "\n"


RANGE_WINDOW = re.compile(r"\[(\d+[smhdwy])([:\]])")


def rules_with_short_for(src: str, dst: str, duration: str = "3s",
                         window: Optional[str] = None) -> str:
    """Copy a rule file (read and written with PyYAML) with only its durations shortened:
    every rule's `for:` set to `duration`, every group's `interval:` removed (evaluated at
    the global interval) and, when `window` is given, every range window (`[5m]`,
    `[15m:1m]`'s `15m`) set to it. Expressions, thresholds, labels and annotations are
    unchanged: live tests cannot wait 30 minutes for an alert, 5 minutes for a day total
    or 15 minutes for a rate window to empty. Returns dst."""
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        group.pop("interval", None)
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = duration
            if window is not None:
                rule["expr"] = RANGE_WINDOW.sub(f"[{window}\\2", rule["expr"])
    with open(dst, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False, allow_unicode=True)
    return dst


class PrometheusServer:
    """One real Prometheus (server, agent or remote-write receiver) in `folder`.

    `scrape_configs`: YAML under `scrape_configs:`; `rule_files`: paths; `extra_config`:
    top-level YAML (e.g. remote_write); `flags`: extra command-line flags."""

    def __init__(self, folder: str, scrape_configs: str = "",
                 rule_files: Sequence[str] = (), extra_config: str = "",
                 flags: Sequence[str] = (), interval: str = "1s",
                 agent: bool = False) -> None:
        self.folder = folder
        os.makedirs(folder, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.agent = agent
        self.config_path = os.path.join(folder, "prometheus.yml")
        self.log_path = os.path.join(folder, "prometheus.log")
        text = f"global:\n  scrape_interval: {interval}\n"
        if not agent:
            text += f"  evaluation_interval: {interval}\n"
        if rule_files:
            text += "rule_files:\n" + "".join(f"  - {json.dumps(r)}\n" for r in rule_files)
        if scrape_configs:
            text += "scrape_configs:\n" + scrape_configs
        text += extra_config
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text)
        self.flags = list(flags)
        self.proc = None

    def start(self, timeout: float = 30.0) -> "PrometheusServer":
        binary = shutil.which("prometheus")
        if binary is None:
            raise HarnessError("prometheus is not installed: run scripts/bootstrap.sh")
        data = "--storage.agent.path" if self.agent else "--storage.tsdb.path"
        argv = [binary, f"--config.file={self.config_path}",
                f"{data}={os.path.join(self.folder, 'data')}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                *(["--enable-feature=agent"] if self.agent else []), *self.flags]
        self.proc = spawn(argv, "prometheus", self.log_path, cwd=self.folder)

        def ready():
            if self.proc.poll() is not None:
                raise HarnessError("prometheus exited:\n" + self.log())
            with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                return r.status == 200
        wait_for(ready, timeout, 0.2, "prometheus /-/ready")
        return self

    def stop(self) -> None:
        terminate(self.proc)

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the JSON body, also for 4xx answers (bad PromQL)."""
        url = f"{self.base}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            return json.loads(e.read())

    def query(self, expr: str) -> List[Dict[str, Any]]:
        """Instant query; raises AssertionError on a PromQL error."""
        body = self.api("query", query=expr)
        assert body.get("status") == "success", f"{expr}: {body.get('error')}"
        return body["data"]["result"]

    def wait_query(self, expr: str, check, timeout: float = 30.0,
                   what: Optional[str] = None) -> List[Dict[str, Any]]:
        """Poll `expr` until check(result) is truthy; return the result."""
        def poll():
            if self.proc is not None and self.proc.poll() is not None:
                raise HarnessError("prometheus exited:\n" + self.log())
            result = self.query(expr)
            return result if check(result) else None
        try:
            return wait_for(poll, timeout, 0.5, what or expr)
        except HarnessError as e:
            raise AssertionError(f"{e}; last result: {self.query(expr)}") from None

    def targets(self) -> List[Dict[str, Any]]:
        return self.api("targets")["data"]["activeTargets"]


def by_label(result: Sequence[Dict[str, Any]], label: str) -> Dict[str, Dict[str, str]]:
    """{label value: metric labels} of a query result."""
    return {s["metric"].get(label, ""): s["metric"] for s in result}
