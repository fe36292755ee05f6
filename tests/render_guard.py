"""Prove a collector's render() reads memory only: no file, socket or process, no stall.

`assert_renders_from_memory(render)` calls `render()` while a Python audit hook
(`sys.addaudithook`, PEP 578) records the I/O events the interpreter raises (open, socket,
subprocess, os.* process and directory calls, time.sleep on 3.11+), and fails on any of
them, or when the fastest of `attempts` calls took longer than `bound` seconds (a sleep or
a blocking call that raises no audit event). An audit hook cannot be removed, so one hook
is installed once and records only while a check runs.
"""
from __future__ import annotations

import sys
import time
from typing import Any, Callable, List, Optional, Tuple

FORBIDDEN_PREFIXES = (
    "open", "socket.", "subprocess.", "os.system", "os.exec", "os.spawn", "os.posix_spawn",
    "os.fork", "os.listdir", "os.scandir", "os.walk", "os.remove", "os.rename", "shutil.",
    "sqlite3.", "urllib.", "http.", "ftplib.", "smtplib.", "time.sleep", "pty.", "ctypes.",
)
# Well above any collector's render on a loaded 2-core machine (they take microseconds to
# a few milliseconds), well below a 50 ms stall.
DEFAULT_BOUND = 0.025

_recording: Optional[List[Tuple[str, Any]]] = None
_installed = False


def _hook(event: str, args: Any) -> None:
    events = _recording
    if events is not None and event.startswith(FORBIDDEN_PREFIXES):
        events.append((event, args))


def _install() -> None:
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True


def record_io(func: Callable[[], Any]) -> Tuple[Any, List[Tuple[str, Any]], float]:
    """Call `func`; return (its result, the forbidden events it raised, seconds taken)."""
    global _recording
    _install()
    events: List[Tuple[str, Any]] = []
    _recording = events
    start = time.perf_counter()
    try:
        result = func()
    finally:
        elapsed = time.perf_counter() - start
        _recording = None
    return result, events, elapsed


def assert_renders_from_memory(make_render: Callable[[], Callable[[], str]],
                               bound: float = DEFAULT_BOUND, attempts: int = 3) -> str:
    """`make_render()` gives a fresh render function (a new collector: nothing cached).

    Fails on any I/O event in any attempt, or when every attempt took longer than `bound`.
    Returns the text of the last render.
    """
    fastest = float("inf")
    text = ""
    for _ in range(attempts):
        render = make_render()
        text, events, elapsed = record_io(render)
        assert not events, f"render() did I/O: {events[:5]}"
        assert isinstance(text, str), type(text)
        fastest = min(fastest, elapsed)
        if fastest <= bound:
            break
    assert fastest <= bound, (
        f"render() took {fastest * 1000:.1f} ms at best (bound {bound * 1000:.0f} ms): it "
        f"blocks the event loop")
    return text
