"""Commands: run on scrape (concurrent scrapes share one run) or periodically (cached).

The argv comes from configuration only (never from a scrape); a shell only if configured.
Each run gets its own session (process group) and its own stdout and stderr pipes, read on
the event loop without blocking. A run ends when the command's own process exits, whatever
still holds its pipes: its output is what the pipe held at that moment (bounded by
`max_bytes`), without waiting for EOF. Then, whatever the command did (exited, backgrounded a
process, timed out), its whole group is killed, the command is reaped and the pipes closed.
A process that left the session (`setsid`) is not killed: it is not the run's any more, and
its writes to the closed pipes fail (EPIPE, SIGPIPE). stderr is logged, bounded.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import shutil
import signal
import struct
import termios
import time
from typing import Any, List, Optional, Set

from .. import reasons
from ...tasks import wait_ended
from ..spec import (ARGV, DURATION, FLAG, MAX_INTERVAL, MIN_INTERVAL, Option, SourceSpec,
                    SpecError)
from .base import CauseLog, Fetched, FetchError, Params, Source, consume_outcome

log = logging.getLogger(__name__)
STDERR_LOG_BYTES = 4096
READ_CHUNK = 65536


class _Pipe:
    """One output pipe of a run: the child writes `write_fd`; the event loop reads the other
    end (non-blocking, READ_CHUNK bytes per wake-up) and keeps its first `limit` bytes.

    Past the limit, a `drain` pipe (stderr) reads on and discards, so the child never blocks
    on it; otherwise (stdout) reading stops and `overflow` is set: the run is failed.
    """

    def __init__(self, limit: int, drain: bool) -> None:
        self.read_fd, self.write_fd = os.pipe()  # both close-on-exec (PEP 446)
        os.set_blocking(self.read_fd, False)
        self.limit = limit
        self.drain = drain
        self.kept: List[bytes] = []
        self.size = 0
        self.eof = False  # every writer closed it
        self.overflow: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._reading = False

    def start(self) -> None:
        """After the spawn: closes our copy of the write end and reads as data comes."""
        os.close(self.write_fd)
        self.write_fd = -1
        asyncio.get_running_loop().add_reader(self.read_fd, self._read, READ_CHUNK)
        self._reading = True

    def _read(self, n: int) -> int:
        """One non-blocking read of at most n bytes; the bytes read (0: nothing buffered,
        EOF or past the limit)."""
        try:
            chunk = os.read(self.read_fd, n)
        except BlockingIOError:
            return 0
        if not chunk:
            self.eof = True
            self._stop_reading()
            return 0
        if self.size + len(chunk) > self.limit:
            if not self.drain:
                self._stop_reading()
                self.overflow.set_result(None)
                return 0
            if self.size < self.limit:
                self.kept.append(chunk[:self.limit - self.size])
                self.size = self.limit
            return len(chunk)
        self.kept.append(chunk)
        self.size += len(chunk)
        return len(chunk)

    def take_buffered(self) -> None:
        """Reads what the pipe holds at this moment, without waiting for EOF (a process left
        in the background may keep the pipe open): bounded by what was buffered and by the
        limit, so it takes at most one pipe buffer's copy and never blocks."""
        if not self._reading:
            return
        # what can still be kept (stdout: one byte more, to see an overflow)
        room = self.limit - self.size + (0 if self.drain else 1)
        want = min(_buffered(self.read_fd), room)
        while want > 0:
            got = self._read(want)
            if not got:
                return
            want -= got

    def data(self) -> bytes:
        return b"".join(self.kept)

    def _stop_reading(self) -> None:
        if self._reading:
            asyncio.get_running_loop().remove_reader(self.read_fd)
            self._reading = False

    def close(self) -> None:
        """Stops reading and closes both ends (a writer left over then gets EPIPE)."""
        self._stop_reading()
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1


def _buffered(fd: int) -> int:
    """Bytes waiting in the pipe `fd` (FIONREAD; a system call that never blocks)."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


async def run_command(name: str, argv: List[str], timeout: float, max_bytes: int,
                      causes: Optional[CauseLog] = None) -> bytes:
    """Runs argv once; stdout on exit status 0, else FetchError (timeout/oversize/exit/spawn).

    The run ends when the process exits (`timeout` seconds at most: reason `timeout`), or
    when stdout passes `max_bytes` (`oversize`). stderr (its first 4 KiB) is logged through
    `causes`: once, until it changes.
    """
    out = _Pipe(max_bytes, drain=False)
    err = _Pipe(STDERR_LOG_BYTES, drain=True)
    proc: Optional[asyncio.subprocess.Process] = None
    try:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=out.write_fd,
                stderr=err.write_fd, start_new_session=True, close_fds=True)
        except OSError as e:
            raise FetchError(reasons.SPAWN, str(e)) from None
        out.start()
        err.start()
        # No pipe of asyncio's own: wait() ends when the process exits, open pipes or not.
        exited = asyncio.ensure_future(proc.wait())
        ends: Set["asyncio.Future[Any]"] = {exited, out.overflow}
        await asyncio.wait(ends, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not out.overflow.done() and not exited.done():
            raise FetchError(reasons.TIMEOUT, "killed after %g s: %s" % (
                timeout, "closed stdout, still running" if out.eof else "still running"))
        out.take_buffered()
        err.take_buffered()
        if out.overflow.done():
            raise FetchError(reasons.OVERSIZE, "stdout above %d bytes" % max_bytes)
        status = exited.result()
        if status != 0:
            raise FetchError(reasons.EXIT_STATUS, "exited with %d" % status if status > 0
                             else "killed by signal %d" % -status)
        return out.data()
    finally:
        # Always, even if the command already exited: a process it left in the background
        # (`sleep 600 &`) is still in the group. The group id cannot be reused while any
        # member lives.
        if proc is not None:
            _kill_group(proc.pid)
        out.close()
        err.close()
        if proc is not None:
            await proc.wait()  # always reap
        if causes is not None:
            causes.note("exporter %s stderr" % name,
                        err.data().decode("utf-8", "replace").rstrip())


def command_argv(spec: SourceSpec) -> List[str]:
    """The exact argv run; a shell only when `shell` was configured."""
    if spec.shell:
        return ["/bin/sh", "-c", spec.command[0]]
    return list(spec.command)


_COMMAND = (Option("command", ARGV, []), Option("shell", FLAG, False))


def _check_command(spec: SourceSpec) -> None:
    if not spec.command:
        raise SpecError("command", "must list the program and its arguments")
    if spec.shell:
        if len(spec.command) != 1:
            raise SpecError("command", "with shell: true, give one line of shell script")
        return
    prog = spec.command[0]
    found = shutil.which(prog) if not os.path.isabs(prog) else prog
    if not found or not os.access(found, os.X_OK):
        raise SpecError("command", "%r is not an executable program (found no %s)"
                        % (prog, "file" if os.path.isabs(prog) else "such program on PATH"))


class OnScrapeExec(Source):
    """A command run at each scrape (`command`, `shell`); scrapes arriving during a run
    share it."""

    options = _COMMAND
    yaml_kinds = ("exec",)
    check = staticmethod(_check_command)

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._running: Optional[asyncio.Future] = None
        self._causes = CauseLog(log)

    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        # The run is shared, so it keeps its own timeout; a scrape with less time left
        # stops waiting (the merger's deadline) and the run goes on for the others.
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(run_command(
                self.name, command_argv(self.spec), self.spec.timeout, self.spec.max_bytes,
                self._causes))
            self._running.add_done_callback(consume_outcome)
        # shield: a scraper giving up must not kill the run the others wait for
        return Fetched([await asyncio.shield(self._running)])

    async def close(self) -> None:
        if self._running is not None and not self._running.done():
            self._running.cancel()
            try:
                await self._running
            except (asyncio.CancelledError, FetchError):
                pass


class PeriodicExec(Source):
    """Runs every `interval`; serves the last good output until it is older than `max_age`
    (default: three intervals).

    Failed runs are counted (reported with the next fetch) while the cache is still served.
    """

    options = _COMMAND + (
        Option("interval", DURATION, 60.0, yaml="exec_interval", yaml_required=True),
        Option("max_age", DURATION),
    )
    yaml_kinds = ("exec_cached", "exec-cached")

    @staticmethod
    def check(spec: SourceSpec) -> None:
        _check_command(spec)
        if not MIN_INTERVAL <= spec.interval <= MAX_INTERVAL:
            raise SpecError("interval", "must be at least %g and at most %g seconds"
                            % (MIN_INTERVAL, MAX_INTERVAL))
        if spec.max_age is None:
            spec.max_age = 3 * spec.interval
        if not spec.interval <= spec.max_age <= 7 * MAX_INTERVAL:
            raise SpecError("max_age", "must be at least the interval (%g s) and at most %g s"
                            % (spec.interval, 7 * MAX_INTERVAL))

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._task: Optional[asyncio.Task] = None
        self._first: Optional[asyncio.Event] = None
        self._last: Optional[bytes] = None
        self._last_time = 0.0
        self._last_error: Optional[FetchError] = None
        self._failed: List[str] = []
        self._causes = CauseLog(log)

    def start(self) -> None:
        """Starts the periodic task (needs a running loop; the first fetch calls it)."""
        if self._task is None:
            self._first = asyncio.Event()
            self._task = asyncio.ensure_future(self._loop())

    async def _loop(self) -> None:
        spec = self.spec
        assert self._first is not None
        while True:
            started = time.monotonic()
            try:
                self._last = await run_command(self.name, command_argv(spec), spec.timeout,
                                               spec.max_bytes, self._causes)
                self._last_time = time.monotonic()
                self._last_error = None
                self._causes.note("exporter " + self.name, "", recovered="runs again")
            except FetchError as e:
                self._last_error = e
                self._failed.append(e.reason)
                self._causes.note("exporter " + self.name, "run failed: %s" % e)
            self._first.set()
            await asyncio.sleep(max(0.0, spec.interval - (time.monotonic() - started)))

    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        self.start()
        assert self._first is not None and self.spec.max_age is not None
        await self._first.wait()  # only the first scrape waits, for the first run
        failed, self._failed = self._failed, []
        if self._last is None:  # no run succeeded yet: the first (and each since) failed
            assert self._last_error is not None
            raise self._last_error
        age = time.monotonic() - self._last_time
        if age > self.spec.max_age:
            # no age in the message: it is logged once per distinct cause
            raise FetchError(reasons.STALE, "last good run older than max_age (%g s)"
                             % self.spec.max_age)
        return Fetched([self._last], cache_age=age, errors=failed)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await wait_ended(self._task)
            self._task = None
