"""CPU use of the simulated MCUs (simulator/firmware.py): idle and while printing.

Starts real Klippy live against the two simulated MCUs of simulator/printer.cfg
(``mcu`` and ``toolboard``), then reads each firmware process's user+system CPU time
from /proc over an idle window (connected and ready, heaters off) and over a printing
window (the bed and the hotend held at temperature, a virtual-SD print of
simulator/gcodes/cube_5_layers.gcode streaming steps).  Klippy's own CPU use over the same
windows is reported for scale.  Targets (issue 12): under 5 % of one core idle and
under 15 % printing, both MCUs together.

Usage: .venv/moonraker/bin/python bench/bench_simulated_mcus.py [--idle 30] [--printing 60]
       [--flavour klipper|kalico]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.procfs import cpu_seconds  # noqa: E402
from simulator import Klippy  # noqa: E402


def measure(pids, seconds: float):
    """Share of one core each pid used over ``seconds`` of wall-clock time."""
    start = {name: cpu_seconds(pid) for name, pid in pids.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    wall = time.monotonic() - t0
    return {name: (cpu_seconds(pid) - start[name]) / wall for name, pid in pids.items()}


def report(title: str, shares) -> None:
    mcus = sum(v for k, v in shares.items() if k != "klippy")
    parts = ", ".join("%s %.2f %%" % (k, v * 100) for k, v in shares.items())
    print("%-9s both MCUs %.2f %% of one core (%s)" % (title, mcus * 100, parts), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--idle", type=float, default=30.0, help="idle window, seconds")
    ap.add_argument("--printing", type=float, default=60.0, help="printing window, seconds")
    ap.add_argument("--flavour", default="klipper", choices=("klipper", "kalico"))
    args = ap.parse_args()
    with Klippy(args.flavour) as klippy:
        klippy.wait_ready()
        pids = {m.name: m.proc.pid for m in klippy.mcus}
        pids["klippy"] = klippy.proc.pid
        time.sleep(5)  # past the connect burst
        report("idle", measure(pids, args.idle))
        klippy.script("M140 S60\nM109 S200\nM190 S60\nG28", timeout=300)
        klippy.gcode("SDCARD_PRINT_FILE FILENAME=cube_5_layers.gcode")
        klippy.wait_status("print_stats", "state", "printing", timeout=30)
        shares = measure(pids, args.printing)
        state = klippy.query("print_stats")["print_stats"]["state"]
        report("printing", shares)
        print("print state at the end of the window: %s" % state)
        unhandled = klippy.unhandled_commands()
        if unhandled:
            print("UNHANDLED commands: %s" % unhandled)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
