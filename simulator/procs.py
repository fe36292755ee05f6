"""Process bookkeeping shared by the Klippy and Moonraker managers.

Every process is started in its own session (process group) and recorded in
``LIVE`` so that finalizers and a session-level check can make sure nothing
survives a test run.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_ROOT = os.environ.get("MOONRAKER_PROMETHEUS_VENVS", os.path.join(REPO_ROOT, ".venv"))

# pid -> description of every harness process not yet reaped
LIVE: Dict[int, str] = {}


class HarnessError(RuntimeError):
    """A process of the harness failed to start or to become ready."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def spawn(argv: Sequence[str], description: str, log_path: str,
          cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None
          ) -> subprocess.Popen:
    """Start ``argv`` in a new process group; stdout/stderr go to ``log_path``."""
    out = open(log_path, "ab")
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, env=env,
                                start_new_session=True)
    finally:
        out.close()
    LIVE[proc.pid] = description
    return proc


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate(proc: Optional[subprocess.Popen], timeout: float = 5.0) -> Optional[int]:
    """SIGTERM the process group of ``proc``, then SIGKILL; reap; return exit code."""
    if proc is None:
        return None
    pgid = proc.pid  # start_new_session: pgid == pid
    try:
        if proc.poll() is None or _group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if proc.poll() is not None and not _group_alive(pgid):
                    break
                time.sleep(0.05)
            else:
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if proc.poll() is not None and not _group_alive(pgid):
            LIVE.pop(proc.pid, None)
    return proc.returncode


def survivors() -> List[str]:
    """Descriptions of harness processes (or their groups) still alive."""
    out = []
    for pid, desc in list(LIVE.items()):
        if _group_alive(pid):
            out.append("%s (pid %d)" % (desc, pid))
        else:
            LIVE.pop(pid, None)
    return out


def kill_all() -> None:
    """Last resort: SIGKILL every process group the harness started."""
    for pid in list(LIVE):
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        LIVE.pop(pid, None)


def read_text(path: str) -> str:
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""


def wait_for(predicate, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; return that value."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last_exc = None
        except HarnessError:
            raise  # a definite failure (process died, error state): stop polling
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last_exc = e
        if time.monotonic() >= deadline:
            msg = "timed out after %.1fs waiting for %s" % (timeout, what)
            if last_exc is not None:
                msg += " (last error: %r)" % (last_exc,)
            raise HarnessError(msg)
        time.sleep(interval)


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """wait_for() on the running event loop: returns once `condition()` is true, checking
    every millisecond (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)
