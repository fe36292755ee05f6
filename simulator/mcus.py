"""Processes of the simulated MCUs (simulator/firmware.py), one per ``[mcu ...]``."""
from __future__ import annotations

import glob
import os
import sys
from typing import Any, Dict, List, Optional

from .firmware import control, import_msgproto
from .procs import VENV_ROOT, HarnessError, read_text, spawn, terminate, wait_for
from .world import read_config

FIRMWARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "firmware.py")


def klippy_source_dir(flavour: str) -> str:
    """Directory of the flavour's ``msgproto.py`` (the firmware decodes with it)."""
    venv = "klippy" if flavour == "klipper" else flavour
    found = glob.glob(os.path.join(VENV_ROOT, venv, "lib", "python*", "site-packages",
                                   "klippy", "msgproto.py"))
    if not found:
        raise HarnessError("no klippy/msgproto.py under %s: run scripts/bootstrap.sh"
                           % os.path.join(VENV_ROOT, venv))
    return os.path.dirname(found[0])


def msgproto_for(flavour: str):
    """Klippy's own ``msgproto`` module of ``flavour`` (encodes and decodes blocks)."""
    return import_msgproto(klippy_source_dir(flavour))


def serial_paths(config_path: str) -> Dict[str, str]:
    """``{mcu name: serial path}`` of every ``[mcu ...]`` section in a config."""
    cp = read_config(config_path)
    out = {}
    for sec in cp.sections():
        parts = sec.split()
        if parts[0] == "mcu" and cp.has_option(sec, "serial"):
            out[" ".join(parts[1:]) or "mcu"] = cp.get(sec, "serial").strip()
    return out


class SimulatedMCU:
    """One firmware process: pty linked at ``serial``, control socket, log file."""

    def __init__(self, name: str, dict_path: str, config_path: str, serial: str,
                 comms_dir: str, logs_dir: str, flavour: str, time_factor: float = 1.0):
        self.name = name
        safe = name.replace(" ", "_")
        self.serial = serial
        self.control_path = os.path.join(comms_dir, "%s.sim.sock" % safe)
        self.log_path = os.path.join(logs_dir, "%s.sim.log" % safe)
        self.stdout_path = os.path.join(logs_dir, "%s.sim.stdout" % safe)
        self.argv = [sys.executable, FIRMWARE, "--name", name, "--dict", dict_path,
                     "--config", config_path, "--serial", serial,
                     "--control", self.control_path, "--log", self.log_path,
                     "--klippy-dir", klippy_source_dir(flavour),
                     "--time-factor", repr(float(time_factor))]
        self.proc = None

    def start(self) -> "SimulatedMCU":
        for path in (self.serial, self.control_path):
            if os.path.lexists(path):
                os.unlink(path)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        self.proc = spawn(self.argv, "simulated MCU %s" % self.name, self.stdout_path, env=env)

        def up():
            if self.proc.poll() is not None:
                raise HarnessError("simulated MCU %s exited: %s" % (
                    self.name, read_text(self.stdout_path)[-2000:]))
            return os.path.exists(self.serial) and os.path.exists(self.control_path)
        wait_for(up, 10.0, 0.02, "simulated MCU %s" % self.name)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc)
        for path in (self.serial, self.control_path):
            if os.path.lexists(path):
                os.unlink(path)

    def control(self, **request: Any) -> Dict[str, Any]:
        """One control request (see simulator/firmware.py); raises on ``ok: false``."""
        reply = control(self.control_path, **request)
        if not reply.get("ok"):
            raise HarnessError("simulated MCU %s: %s" % (self.name, reply.get("error")))
        return reply

    def unhandled(self) -> Dict[str, int]:
        """Commands Klippy sent that the firmware has no handler for (from its log
        too, so a stopped process still counts)."""
        found: Dict[str, int] = {}
        for line in read_text(self.log_path).splitlines():
            if "UNHANDLED" in line or "Traceback" in line:
                found[line.split("UNHANDLED", 1)[-1].strip()[:120]] = 1
        return found


def start_mcus(config_path: str, dict_paths: Dict[str, str], comms_dir: str, logs_dir: str,
               flavour: str, time_factor: float) -> List[SimulatedMCU]:
    """Start one simulated MCU per ``[mcu ...]`` section of ``config_path``."""
    started: List[SimulatedMCU] = []
    try:
        for name, serial in serial_paths(config_path).items():
            started.append(SimulatedMCU(name, dict_paths[name], config_path, serial,
                                        comms_dir, logs_dir, flavour, time_factor).start())
    except BaseException:
        for m in started:
            m.stop()
        raise
    return started


def unhandled_report(mcus: List[SimulatedMCU]) -> Optional[str]:
    """None, or a description of every command some simulated MCU did not handle."""
    parts = ["%s: %s" % (m.name, ", ".join(sorted(m.unhandled()))) for m in mcus if m.unhandled()]
    return "; ".join(parts) or None
