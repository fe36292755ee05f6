"""A farm at scale: N live simulated printers scraped by one real Prometheus.

    .venv/moonraker/bin/python bench/bench_farm.py --printers 12 --interval 5 --duration 90

Starts N real Klippy (live, simulated MCU firmware) + Moonraker pairs (simulator/farm.py), each holding a paused
print so that every farm panel has something to show, writes their file_sd file with the
discovery tool, and runs Debian's Prometheus with prometheus/rules.yml and alerts.yml
(day-total group evaluated at the global interval) scraping them every --interval seconds,
plus itself. After --duration seconds it reports:

- series per printer (scrape_samples_scraped) and bytes per scrape (uncompressed and gzip,
  one GET /server/metrics per printer);
- Prometheus' resident memory (VmRSS of the process) and head series, measured with the farm
  and compared with an idle Prometheus with the same rules and no targets (run first, same
  duration), and samples appended per second (rate of
  prometheus_tsdb_head_samples_appended_total), per printer;
- whether every farm dashboard query and every recording rule returns data for every printer;
- a linear estimate for 100 and 1,000 printers.

Figures from a shared 2-core machine are noisy: compare runs on one machine only.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from simulator.farm import (PROMETHEUS_DIR, PrinterSpec, PrometheusServer,  # noqa: E402
                        rules_with_short_for, scrape_config, start_printers, stop_printers)
from bench.procfs import rss_bytes  # noqa: E402
from simulator import wait_for  # noqa: E402

# Farm panels with nothing to show in a healthy farm of paused printers.
NOT_PER_PRINTER = {
    ("Printers", "I"): "Klippy's reason: every Klippy is ready",
    ("Failed or cancelled jobs (last 15 minutes)", "A"): "no print failed",
}
# Recording rules with nothing to record in such a farm.
NOT_RECORDED = {"instance:klipper_printer_powered_off:info": "no printer is switched off"}


def scalar(prom: PrometheusServer, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else float("nan")


def self_scrape(interval: int) -> str:
    return (f"  - job_name: prometheus\n    scrape_interval: {interval}s\n"
            "    static_configs:\n      - targets: ['127.0.0.1:__PORT__']\n")


def start_prometheus(folder: str, scrape: str, rules: List[str], interval: int
                     ) -> PrometheusServer:
    prom = PrometheusServer(folder, scrape, rule_files=rules, interval=f"{interval}s")
    with open(prom.config_path, encoding="utf-8") as f:
        text = f.read().replace("__PORT__", str(prom.port))
    with open(prom.config_path, "w", encoding="utf-8") as f:
        f.write(text)
    return prom.start()


def farm_queries():
    with open(os.path.join(REPO, "dashboards", "farm.json"), encoding="utf-8") as f:
        d = json.load(f)
    for panel in d["panels"]:
        for t in panel.get("targets", []):
            yield panel["title"], t["refId"], t["expr"].replace("$printer", ".*")


def coverage(prom: PrometheusServer, names: List[str]) -> List[str]:
    """Problems: farm queries or recording rules without data for some printer."""
    problems = []
    want = set(names)
    for title, ref, expr in farm_queries():
        result = prom.query(expr)
        shown = {s["metric"].get("printer") for s in result}
        if (title, ref) in NOT_PER_PRINTER:
            continue
        if not result:
            problems.append(f"farm panel {title}/{ref}: no data")
        elif None not in shown and shown != want:
            problems.append(f"farm panel {title}/{ref}: {len(shown)} of {len(want)} printers")
    with open(os.path.join(PROMETHEUS_DIR, "rules.yml"), encoding="utf-8") as f:
        records = re.findall(r"- record: (\S+)", f.read())
    for record in records:
        if record in NOT_RECORDED:
            continue
        result = prom.query(record)
        shown = {s["metric"].get("printer") for s in result}
        if not result:
            problems.append(f"rule {record}: no data")
        elif record.startswith("instance") and shown != want:
            problems.append(f"rule {record}: {len(shown)} of {len(want)} printers")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--printers", type=int, default=12)
    ap.add_argument("--interval", type=int, default=5, help="scrape/evaluation interval (s)")
    ap.add_argument("--duration", type=int, default=90, help="seconds of scraping measured")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-farm-")
    rules = [rules_with_short_for(os.path.join(PROMETHEUS_DIR, n), os.path.join(tmp, n), "1m")
             for n in ("rules.yml", "alerts.yml")]

    print(f"idle Prometheus (rules, no printers) for {args.duration} s ...", flush=True)
    idle = start_prometheus(os.path.join(tmp, "idle"), self_scrape(args.interval), rules,
                            args.interval)
    time.sleep(args.duration)
    idle_rss = rss_bytes(idle.proc.pid)
    idle_series = scalar(idle, "prometheus_tsdb_head_series")
    idle.stop()

    names = [f"printer-{i:02d}" for i in range(1, args.printers + 1)]
    t0 = time.monotonic()
    printers = start_printers([PrinterSpec(n) for n in names], timeout=240)
    print(f"{len(printers)} printers ready in {time.monotonic() - t0:.0f} s", flush=True)
    prom = None
    try:
        # Moonraker's history must have handled klippy_ready before a print starts, or it
        # never records the job (no current job, no klipper_current_job_info)
        time.sleep(2)
        for p in printers:
            r = p.moonraker.post("/printer/print/start", params={"filename": "pause_print.gcode"})
            assert r.status == 200, r.text
        for p in printers:
            p.klippy.wait_status("print_stats", "state", "paused", timeout=60)
        hosts = os.path.join(tmp, "hosts.txt")
        with open(hosts, "w", encoding="utf-8") as f:
            f.write("".join(p.target + "\n" for p in printers))
        file_sd = os.path.join(tmp, "klipper.json")
        subprocess.run([sys.executable, "-m", "moonraker_prometheus.discovery",
                        "--hosts-file", hosts, "-o", file_sd], check=True, cwd=REPO)
        bodies = []
        for p in printers:
            with urllib.request.urlopen(f"http://{p.target}/server/metrics", timeout=10) as r:
                bodies.append(r.read())
        prom = start_prometheus(
            os.path.join(tmp, "farm"),
            scrape_config(file_sd=[file_sd], interval=f"{args.interval}s")
            + self_scrape(args.interval), rules, args.interval)
        wait_for(lambda: len(prom.query('up{job="klipper"} == 1')) == len(printers),
                 120, 1.0, "every printer scraped")
        print(f"scraping for {args.duration} s ...", flush=True)
        time.sleep(args.duration)

        rss = rss_bytes(prom.proc.pid)
        head_series = scalar(prom, "prometheus_tsdb_head_series")
        samples = [float(s["value"][1]) for s in prom.query(
            'scrape_samples_scraped{job="klipper"}')]
        appended = scalar(prom, "rate(prometheus_tsdb_head_samples_appended_total[1m])")
        rule_eval = scalar(prom, 'sum(prometheus_rule_group_last_duration_seconds)')
        scrape_s = [float(s["value"][1]) for s in prom.query(
            'scrape_duration_seconds{job="klipper"}')]
        problems = coverage(prom, names)
    finally:
        if prom is not None:
            prom.stop()
        stop_printers(printers)
        shutil.rmtree(tmp, ignore_errors=True)

    n = len(printers)
    series = sum(samples) / n
    raw = sum(len(b) for b in bodies) / n
    gz = sum(len(gzip.compress(b)) for b in bodies) / n
    extra_rss = rss - idle_rss
    extra_series = head_series - idle_series
    per_series = extra_rss / extra_series if extra_series > 0 else float("nan")
    per_printer_rate = series / args.interval
    result: Dict[str, object] = {
        "printers": n, "interval_s": args.interval, "duration_s": args.duration,
        "series_per_printer": series, "bytes_per_scrape": raw, "gzip_bytes_per_scrape": gz,
        "prometheus_rss_idle_mib": idle_rss / 2**20, "prometheus_rss_farm_mib": rss / 2**20,
        "head_series": head_series, "rss_per_head_series_bytes": per_series,
        "samples_appended_per_s": appended, "samples_per_s_per_printer": per_printer_rate,
        "rule_groups_eval_s": rule_eval, "median_scrape_s": sorted(scrape_s)[len(scrape_s) // 2],
        "coverage_problems": problems,
    }
    print(json.dumps(result, indent=2))
    print(f"\n{n} printers, every {args.interval} s: {series:.0f} series/printer, "
          f"{raw / 1024:.1f} KiB per scrape ({gz / 1024:.1f} KiB gzip), "
          f"{per_printer_rate:.0f} samples/s per printer ({appended:.0f} samples/s appended "
          f"in all, rules included)")
    print(f"Prometheus RSS {rss / 2**20:.0f} MiB with the farm, {idle_rss / 2**20:.0f} MiB "
          f"idle: {extra_rss / n / 2**20:.1f} MiB per printer "
          f"({per_series / 1024:.1f} KiB per head series)")
    for farm_size in (100, 1000):
        for interval in (args.interval, 15):
            print(f"estimate {farm_size} printers every {interval} s: "
                  f"{farm_size * series:,.0f} series, "
                  f"{farm_size * series / interval:,.0f} samples/s, "
                  f"{(idle_rss + farm_size * extra_rss / n) / 2**20:,.0f} MiB RSS (head only), "
                  f"{farm_size * gz * 8 / interval / 1e6:.2f} Mbit/s gzip scrape traffic")
    print("coverage: " + ("every farm query and recording rule has data for every printer"
                          if not problems else "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
