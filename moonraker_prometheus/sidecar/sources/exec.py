"""Commands: run on scrape (concurrent scrapes share one run) or periodically (cached).

The argv comes from configuration only (never from a scrape); a shell only if configured.
Each run gets its own session (process group). When a run ends, whatever the direct child
did (exited, backgrounded a process, timed out), the whole group is killed, the child is
awaited (reaped) and its pipes closed. stderr is logged, bounded.
"""
from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from typing import List, Optional

from ..spec import (ARGV, DURATION, FLAG, MAX_INTERVAL, MIN_INTERVAL, Option, SourceSpec,
                    SpecError)
from .base import CauseLog, Fetched, FetchError, Params, Source, consume_outcome

log = logging.getLogger(__name__)
STDERR_LOG_BYTES = 4096


async def _read_bounded(stream: asyncio.StreamReader, limit: int, kept: List[bytes],
                        drain: bool) -> bool:
    """Reads into `kept` (at most `limit` bytes) until EOF; True if there was more.

    On overflow it stops (stdout: the run is failed) or keeps draining (stderr, so the child
    never blocks on a full pipe). `kept` stays readable if the task is cancelled.
    """
    size = 0
    over = False
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return over
        if size + len(chunk) > limit:
            over = True
            if not drain:
                return True
            chunk = chunk[:max(0, limit - size)]
        size += len(chunk)
        if chunk:
            kept.append(chunk)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)  # start_new_session: the group id is the child's pid
    except (ProcessLookupError, PermissionError):
        pass


async def run_command(name: str, argv: List[str], timeout: float, max_bytes: int,
                      causes: Optional[CauseLog] = None) -> bytes:
    """Runs argv once; stdout on exit status 0, else FetchError (timeout/oversize/exit/spawn).

    stderr (its first 4 KiB) is logged through `causes`: once, until it changes.
    """
    deadline = time.monotonic() + timeout
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True, close_fds=True)
    except OSError as e:
        raise FetchError("spawn", str(e)) from None
    assert proc.stdout is not None and proc.stderr is not None
    stdout: List[bytes] = []
    stderr: List[bytes] = []
    out_task = asyncio.ensure_future(_read_bounded(proc.stdout, max_bytes, stdout, False))
    err_task = asyncio.ensure_future(_read_bounded(proc.stderr, STDERR_LOG_BYTES, stderr, True))
    try:
        done, _ = await asyncio.wait({out_task}, timeout=timeout)
        if not done:
            raise FetchError("timeout", "killed after %g s" % timeout)
        if out_task.result():
            raise FetchError("oversize", "stdout above %d bytes" % max_bytes)
        try:
            status = await asyncio.wait_for(proc.wait(), max(0.0, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            raise FetchError("timeout", "closed stdout, still running after %g s"
                             % timeout) from None
        if status != 0:
            raise FetchError("exit_status", "exited with %d" % status)
        await asyncio.wait({err_task}, timeout=0.05)  # let stderr reach EOF if it is about to
        return b"".join(stdout)
    finally:
        # Always, even if the direct child already exited: a process it left in the
        # background (`sleep 600 &`) is still in the group. The group id cannot be reused
        # while any member lives.
        _kill_group(proc.pid)
        for task in (out_task, err_task):
            task.cancel()
        # Close our pipe ends first: a paused or still-held pipe would keep wait() pending.
        # (Process has no public handle on them; the protocol closes the transport once the
        # child has exited and both pipes are closed.)
        transport = proc._transport  # type: ignore[attr-defined]
        for fd in (1, 2):
            pipe = transport.get_pipe_transport(fd)
            if pipe is not None:
                pipe.close()
        await proc.wait()  # always reap
        if causes is not None:
            causes.note("exporter %s stderr" % name,
                        b"".join(stderr).decode("utf-8", "replace").rstrip())


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
        if self._last is None:
            raise self._last_error or FetchError("no_data")
        age = time.monotonic() - self._last_time
        if age > self.spec.max_age:
            # no age in the message: it is logged once per distinct cause
            raise FetchError("stale", "last good run older than max_age (%g s)"
                             % self.spec.max_age)
        return Fetched([self._last], cache_age=age, errors=failed)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
