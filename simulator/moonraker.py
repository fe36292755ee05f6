"""Real Moonraker (from .venv/moonraker) with the moonraker-prometheus component."""
from __future__ import annotations

import glob
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Dict, Mapping, Optional, Union

from .procs import (REPO_ROOT, VENV_ROOT, HarnessError, free_port, read_text, spawn,
                    terminate, wait_for)
from .klippy import Klippy, make_data_dir, remove_data_dir

COMPONENT_DIR = os.path.join(REPO_ROOT, "moonraker_prometheus")


# The Moonraker versions the simulator starts, each from its virtualenv under VENV_ROOT
# (scripts/bootstrap.sh builds them: OLD_MOONRAKERS there). 0.8.0 runs on Python 3.7, where
# the component cannot load: start it with ``prometheus=None`` (a target for the remote
# exporter). Every version takes the same command line (-d data path, -c config, -l log)
# and the same moonraker.conf options (render_config); 0.8.0 has no usb.ids download.
MOONRAKER_VERSIONS = {"0.11.0": "moonraker", "0.10.0": "moonraker-py39",
                      "0.9.3": "moonraker-0.9", "0.8.0": "moonraker-0.8"}
COMPONENT_VERSIONS = ("0.11.0", "0.10.0", "0.9.3")  # the component's matrix

# The virtualenv that runs when no version is asked for (scripts/test.sh selects
# moonraker-py39 or moonraker-0.9 for its legs of older Moonrakers).
MOONRAKER_VENV = os.environ.get("MOONRAKER_PROMETHEUS_MOONRAKER_VENV", "moonraker")


def moonraker_venv(version: Optional[str] = None) -> str:
    """Name of the virtualenv (under VENV_ROOT) of Moonraker ``version``, a key of
    MOONRAKER_VERSIONS; None: MOONRAKER_VENV. ValueError for a version not there."""
    if version is None:
        return MOONRAKER_VENV
    try:
        return MOONRAKER_VERSIONS[version]
    except KeyError:
        raise ValueError("no Moonraker %r in the simulator (one of %s)"
                         % (version, ", ".join(MOONRAKER_VERSIONS))) from None


def moonraker_unavailable(version: Optional[str] = None) -> Optional[str]:
    """None when Moonraker ``version`` can be started, else why not (bootstrap's
    .venv/NAME.unavailable: no interpreter of its Python, or a failed install)."""
    venv = moonraker_venv(version)
    note = os.path.join(VENV_ROOT, venv + ".unavailable")
    if os.path.exists(note):
        return "Moonraker %s unavailable: %s" % (version or venv, read_text(note).strip())
    if not os.access(moonraker_python(venv), os.X_OK):
        return "Moonraker %s not installed (%s missing; run scripts/bootstrap.sh)" % (
            version or venv, moonraker_python(venv))
    return None


def moonraker_python(venv: Optional[str] = None) -> str:
    """The Python of the Moonraker virtualenv ``venv`` (default MOONRAKER_VENV)."""
    return os.path.join(VENV_ROOT, venv or MOONRAKER_VENV, "bin", "python")


def component_link(venv: Optional[str] = None) -> str:
    """Path of the ``prometheus`` link in the venv's moonraker/components/."""
    venv = venv or MOONRAKER_VENV
    found = glob.glob(os.path.join(VENV_ROOT, venv, "lib", "python*",
                                   "site-packages", "moonraker", "components"))
    if not found:
        raise HarnessError("Moonraker is not installed in %s: run scripts/bootstrap.sh"
                           % os.path.join(VENV_ROOT, venv))
    return os.path.join(found[0], "prometheus")


def check_component_link(venv: Optional[str] = None) -> str:
    """Fail clearly unless the component is linked as install.sh links it."""
    link = component_link(venv)
    target = os.path.realpath(link) if os.path.islink(link) else None
    if target != os.path.realpath(COMPONENT_DIR):
        raise HarnessError(
            "%s must be a symlink to %s (it is %s); run scripts/bootstrap.sh"
            % (link, COMPONENT_DIR, "a link to %s" % target if target
               else ("a non-link" if os.path.exists(link) else "missing")))
    if not os.path.exists(os.path.join(COMPONENT_DIR, "__init__.py")):
        raise HarnessError("%s/__init__.py is missing: the component cannot load"
                           % COMPONENT_DIR)
    return link


class Response:
    """A finished HTTP exchange (never raises on HTTP error status)."""

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return "<Response %d %d bytes>" % (self.status, len(self.body))


# What Moonraker logs when its HTTP port is taken (it keeps running without HTTP).
PORT_TAKEN = "Failed to start HTTP server: [Errno 98] Address already in use"


class Moonraker:
    """One Moonraker process.

    ``klippy``: the Klippy whose data dir and API socket Moonraker uses (may be
    None: Moonraker then runs with Klippy disconnected).  ``prometheus``: the
    body of the ``[prometheus]`` section, or None to leave the component out.
    ``extra_config``: text appended to moonraker.conf.  ``trusted_clients``:
    ``[authorization] trusted_clients`` (None: no ``[authorization]`` section).
    ``version``: which Moonraker runs, a key of MOONRAKER_VERSIONS (default: the
    virtualenv MOONRAKER_VENV names).  Nothing it starts reaches beyond the machine:
    announcements come from the data folder (``[announcements] dev_mode``) and
    ``misc/usb.ids`` is an empty file, so Moonraker downloads neither.
    """

    def __init__(self, klippy: Optional[Klippy] = None, prometheus: Optional[str] = "",
                 extra_config: str = "", trusted_clients: Optional[str] = "127.0.0.0/8",
                 port: Optional[int] = None, host: str = "127.0.0.1",
                 data_dir: Optional[str] = None,
                 env: Optional[Mapping[str, str]] = None,
                 version: Optional[str] = None) -> None:
        self.version = version
        self.venv = moonraker_venv(version)
        if version is not None and prometheus is not None \
                and version not in COMPONENT_VERSIONS:
            raise HarnessError("the component does not run on Moonraker %s (Python 3.7): "
                               "start it with prometheus=None" % version)
        self.klippy = klippy
        self.data_dir = data_dir or (klippy.data_dir if klippy else make_data_dir())
        self.owns_data_dir = data_dir is None and klippy is None
        for sub in ("config", "gcodes", "logs", "comms", "misc"):
            os.makedirs(os.path.join(self.data_dir, sub), exist_ok=True)
        # Moonraker (0.9 and later) downloads usb.ids into misc/ unless the file exists
        self.usb_ids_path = os.path.join(self.data_dir, "misc", "usb.ids")
        if not os.path.exists(self.usb_ids_path):
            open(self.usb_ids_path, "w").close()
        self.host = host
        self.port = port or free_port(host)
        self._own_port = port is None  # chosen here: another may be taken if it is lost
        self._log_start = 0  # where the log of the last start() begins
        self.prometheus = prometheus
        self.extra_config = extra_config
        self.trusted_clients = trusted_clients
        self.config_path = os.path.join(self.data_dir, "config", "moonraker.conf")
        self.log_path = os.path.join(self.data_dir, "logs", "moonraker.log")
        self.stdout_path = os.path.join(self.data_dir, "logs", "moonraker.stdout")
        self.uds_address = (klippy.socket_path if klippy
                            else os.path.join(self.data_dir, "comms", "klippy.sock"))
        self.env = dict(env or {})
        self.proc = None

    @property
    def base_url(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    def render_config(self) -> str:
        parts = ["[server]", "host: %s" % self.host, "port: %d" % self.port,
                 "klippy_uds_address: %s" % self.uds_address, "",
                 "[machine]", "provider: none", "validate_service: False",
                 "validate_config: False", "",
                 "[file_manager]", "enable_object_processing: False", ""]
        if "[announcements]" not in self.extra_config:
            # feeds from <data>/development/announcements (0.8: the package's .devel/),
            # not from the internet
            parts += ["[announcements]", "dev_mode: True", ""]
        if self.trusted_clients is not None:
            parts += ["[authorization]", "trusted_clients:"]
            parts += ["  " + c.strip() for c in self.trusted_clients.replace(",", "\n").splitlines()
                      if c.strip()]
            parts += [""]
        if self.prometheus is not None:
            parts += ["[prometheus]", self.prometheus.strip("\n"), ""]
        if self.extra_config:
            parts += [self.extra_config.strip("\n"), ""]
        return "\n".join(parts)

    def write_config(self) -> str:
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(self.render_config())
        return self.config_path

    def start(self, wait: bool = True, timeout: float = 20.0, retry: bool = True
              ) -> "Moonraker":
        """Start Moonraker; with `wait`, until it answers HTTP. A port this harness chose that
        another process took before Moonraker bound it is replaced once (`retry`)."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("moonraker already running")
        python = moonraker_python(self.venv)
        if not os.access(python, os.X_OK):
            raise HarnessError(moonraker_unavailable(self.version)
                               or "%s not found: run scripts/bootstrap.sh" % python)
        if self.prometheus is not None:
            check_component_link(self.venv)
        self.write_config()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        # Moonraker's temporary files (the metadata script's metacfg-*.json, uploads) go in
        # the data folder and are removed with it: one stopped mid-job leaves them behind.
        env["TMPDIR"] = os.path.join(self.data_dir, "tmp")
        os.makedirs(env["TMPDIR"], exist_ok=True)
        env.update(self.env)
        argv = [python, "-m", "moonraker", "-d", self.data_dir, "-c", self.config_path,
                "-l", self.log_path]
        self._log_start = len(read_text(self.log_path))  # this start's lines come after
        self.proc = spawn(argv, "moonraker", self.stdout_path, cwd=self.data_dir, env=env)
        if wait:
            try:
                self.wait_started(timeout)
            except HarnessError:
                self.stop()  # never leave a half-started Moonraker behind
                # A port free when chosen can be taken by another process before Moonraker
                # binds it (parallel test legs, benchmarks): Moonraker then runs on without
                # its HTTP server. Start again on a new port, once, if the port was ours.
                if not (retry and self._own_port
                        and PORT_TAKEN in read_text(self.log_path)[self._log_start:]):
                    raise
                self.port = free_port(self.host)
                return self.start(wait, timeout, retry=False)
            except BaseException:
                self.stop()
                raise
        return self

    def _check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise HarnessError("moonraker exited with code %s; log tail:\n%s"
                               % (self.proc.returncode, self.log_tail()))

    def wait_started(self, timeout: float = 20.0) -> Dict[str, Any]:
        """Wait until Moonraker answers HTTP; returns /server/info's result, or {}
        when the harness is not authorized (401/403: Moonraker is up all the same)."""
        def check():
            self._check_alive()
            if PORT_TAKEN in read_text(self.log_path)[self._log_start:]:
                raise HarnessError(PORT_TAKEN)  # it would wait in vain: see start()
            r = self.get("/server/info", timeout=2.0)
            if r.status == 200:
                return r.json()["result"]
            return {"http_status": r.status} if r.status in (401, 403) else None
        try:
            return wait_for(check, timeout, 0.1, "moonraker /server/info")
        except HarnessError as e:
            raise HarnessError("%s\nmoonraker log tail:\n%s" % (e, self.log_tail())) from None

    def server_info(self) -> Dict[str, Any]:
        return self.get("/server/info").json()["result"]

    def wait_klippy_ready(self, timeout: float = 30.0, state: str = "ready") -> Dict[str, Any]:
        """Poll /server/info until ``klippy_state`` is ``state``."""
        def check():
            self._check_alive()
            info = self.server_info()
            return info if info.get("klippy_state") == state else None
        try:
            return wait_for(check, timeout, 0.1, "moonraker klippy_state %r" % state)
        except HarnessError as e:
            raise HarnessError("%s\nmoonraker log tail:\n%s" % (e, self.log_tail())) from None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> Optional[int]:
        return terminate(self.proc)

    def cleanup(self) -> None:
        self.stop()
        if self.owns_data_dir:
            remove_data_dir(self.data_dir)

    def __enter__(self) -> "Moonraker":
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # --------------------------------------------------------------- HTTP
    def request(self, method: str, path: str, params: Optional[Mapping[str, Any]] = None,
                headers: Optional[Mapping[str, str]] = None,
                body: Union[None, bytes, str, Mapping[str, Any]] = None,
                timeout: float = 10.0) -> Response:
        url = self.base_url + path
        if params:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(params)
        hdrs = dict(headers or {})
        data: Optional[bytes] = None
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            data = body.encode()
        elif body is not None:
            data = body
        elif method in ("POST", "PUT"):
            data = b""
        req = urllib.request.Request(url, data=data, headers=hdrs, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return Response(resp.status, resp.headers, resp.read())
        except urllib.error.HTTPError as e:
            return Response(e.code, e.headers, e.read())

    def get(self, path: str, params: Optional[Mapping[str, Any]] = None,
            headers: Optional[Mapping[str, str]] = None, timeout: float = 10.0) -> Response:
        return self.request("GET", path, params=params, headers=headers, timeout=timeout)

    def post(self, path: str, params: Optional[Mapping[str, Any]] = None,
             headers: Optional[Mapping[str, str]] = None,
             body: Union[None, bytes, str, Mapping[str, Any]] = None,
             timeout: float = 10.0) -> Response:
        return self.request("POST", path, params=params, headers=headers, body=body,
                            timeout=timeout)

    def metrics(self, params: Optional[Mapping[str, Any]] = None,
                headers: Optional[Mapping[str, str]] = None) -> Response:
        return self.get("/server/metrics", params=params, headers=headers)

    # --------------------------------------------------------------- logs
    def log_text(self) -> str:
        return read_text(self.log_path)

    def log_tail(self, lines: int = 40) -> str:
        text = read_text(self.log_path) + read_text(self.stdout_path)
        return "\n".join(text.splitlines()[-lines:])
