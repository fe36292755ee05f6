#!/usr/bin/env python3
"""Run the simulated printer: real Klippy against the simulated MCUs + real Moonraker
with the component.

    .venv/moonraker/bin/python simulator/run.py [--port 7125] [--flavour klipper]
        [--print cube_5_layers.gcode | --print ''] [--time-factor 1] [--moonraker 0.11.0]

Once Klippy is ready it starts a virtual-SD print of a real multi-layer file (it
heats the bed and the hotend, homes, probes nothing, prints 5 layers: a few minutes).
Prints the metrics URL and runs until Ctrl-C (SIGINT) or SIGTERM, then stops
everything.  Used by scripts/demo.sh; the tests use the same process managers.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO_ROOT)

from simulator import (COMPONENT_VERSIONS, MOONRAKER_VERSIONS, HarnessError,  # noqa: E402
                       Klippy, Moonraker, flavour_unavailable, moonraker_unavailable)

POWER_CONFIG = """\
[power printer_relay]
type: klipper_device
object_name: output_pin power_relay
"""


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    # first signal wins: Ctrl-C reaches both this process and demo.sh, which
    # then sends SIGTERM too
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "7125")))
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--flavour", default=os.environ.get("FLAVOUR", "klipper"),
                        choices=("klipper", "kalico"))
    parser.add_argument("--prometheus", default=os.environ.get("PROMETHEUS_CONFIG", ""),
                        help="body of the [prometheus] section (default: empty)")
    parser.add_argument("--no-auth", action="store_true",
                        help="leave out [authorization] (default: trust 127.0.0.0/8)")
    parser.add_argument("--print", dest="print_file", default="cube_5_layers.gcode",
                        metavar="FILE", help="virtual-SD print started once ready "
                        "(default: %(default)s; '' for none)")
    parser.add_argument("--moonraker", metavar="VERSION", choices=list(MOONRAKER_VERSIONS),
                        help="run this Moonraker (%(choices)s; default: .venv/moonraker's; "
                        "older ones need the full bootstrap, scripts/test.sh's; "
                        "those the component does not run on start without it)")
    parser.add_argument("--time-factor", type=float, default=1.0,
                        help="heaters and sensors change this many times faster than real "
                        "time (default 1: Klippy's PID gains in printer.cfg fit that)")
    args = parser.parse_args(argv)

    reason = flavour_unavailable(args.flavour) or (
        moonraker_unavailable(args.moonraker) if args.moonraker else None)
    if reason:
        print(reason, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    klippy = moonraker = None
    try:
        klippy = Klippy(args.flavour, time_factor=args.time_factor).start()
        klippy.wait_ready()
        component = args.moonraker is None or args.moonraker in COMPONENT_VERSIONS
        moonraker = Moonraker(klippy, host=args.host, port=args.port, version=args.moonraker,
                              prometheus=args.prometheus if component else None,
                              extra_config=POWER_CONFIG,
                              trusted_clients=None if args.no_auth else "127.0.0.0/8")
        moonraker.start()
        moonraker.wait_klippy_ready()
        if args.print_file:
            klippy.gcode("SDCARD_PRINT_FILE FILENAME=%s" % args.print_file)
        print("Simulated printer (%s) running; data dir %s" % (args.flavour, klippy.data_dir))
        print("Moonraker: %s  (log %s)" % (moonraker.base_url, moonraker.log_path))
        print("G-code pty: %s" % klippy.pty_path)
        for mcu in klippy.mcus:
            print("Simulated MCU %s: serial %s, control socket %s (faults: see "
                  "simulator/README.md)" % (mcu.name, mcu.serial, mcu.control_path))
        print("Metrics: %s/server/metrics" % moonraker.base_url, flush=True)
        while True:
            for name, proc in (("klippy", klippy), ("moonraker", moonraker)):
                if not proc.running():
                    print("%s exited unexpectedly; log tail:\n%s" % (name, proc.log_tail()),
                          file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except _Stop:
        return 0
    except HarnessError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stopping Moonraker and Klippy", flush=True)
        if moonraker is not None:
            moonraker.stop()
        if klippy is not None:
            klippy.cleanup()


if __name__ == "__main__":
    sys.exit(main())
