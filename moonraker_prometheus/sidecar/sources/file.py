"""Textfiles (a path or a glob), re-read at every scrape in a worker thread.

Each file is its own body (two files may both declare a family) and reports its mtime. A
file that matches but cannot be read (a dangling symlink, no permission, above `max_bytes`,
an I/O error, or no regular file at all: a directory, FIFO, socket or device) costs only
itself: the others are served, the failure is reported per file
(`klipper_exporter_source_file_error`), counted (`errors_total`) and logged once per file and
reason, not at every scrape, as node_exporter's textfile collector reports its files.
Only regular files are opened (opening a FIFO would wait for a writer; opening a serial
device could reset the board behind it), and never in a way that can wait.
"""
from __future__ import annotations

import asyncio
import errno
import glob
import logging
import os
import stat
from typing import Dict, List, Optional, Tuple

from .. import reasons
from ..spec import PATH, Option, SourceSpec, SpecError
from .base import CauseLog, Fetched, FetchError, Params, Source

log = logging.getLogger(__name__)

Failure = Tuple[str, str]  # reason label value, detail for the log


_NOT_REGULAR = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
                (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                (stat.S_ISBLK, "a block device"))


class _Unreadable(Exception):
    """A matching file that is not served; `failure` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure[1])
        self.failure = failure


def _check_regular(mode: int) -> None:
    """_Unreadable("not_regular") unless `mode` (st_mode) is a regular file's."""
    if not stat.S_ISREG(mode):
        what = next((name for is_kind, name in _NOT_REGULAR if is_kind(mode)), "no file")
        raise _Unreadable((reasons.NOT_REGULAR, "%s, not a regular file" % what))


def _open_nonblocking(path: str, flags: int) -> int:
    """open()'s opener: should the path have become a FIFO since its stat, open does not
    wait for a writer (nor make a terminal ours)."""
    return os.open(path, flags | os.O_NONBLOCK | os.O_NOCTTY)


def _read_regular(path: str, max_bytes: int) -> Tuple[bytes, float]:
    """The content and mtime of the regular file at `path` (symlinks followed); _Unreadable
    for anything else, above `max_bytes`, or on an OSError."""
    try:
        _check_regular(os.stat(path).st_mode)
        with open(path, "rb", opener=_open_nonblocking) as f:
            st = os.fstat(f.fileno())
            _check_regular(st.st_mode)  # swapped since the stat
            data = f.read(max_bytes + 1)
    except OSError as e:
        raise _Unreadable(_failure(path, e)) from None
    if len(data) > max_bytes:
        raise _Unreadable((reasons.OVERSIZE, "above %d bytes" % max_bytes))
    return data, st.st_mtime


def _failure(path: str, error: OSError) -> Failure:
    if isinstance(error, FileNotFoundError) and os.path.islink(path):
        return reasons.MISSING, "dangling symlink to %s" % os.readlink(path)
    if isinstance(error, FileNotFoundError):
        return reasons.MISSING, "vanished while reading"
    if isinstance(error, PermissionError):
        return reasons.PERMISSION, error.strerror or "permission denied"
    name = errno.errorcode.get(error.errno or 0, "")
    return reasons.ERROR, ("%s (%s)" % (error.strerror, name)) if name else str(error)


def _read_all(pattern: str, max_bytes: int
              ) -> Tuple[List[bytes], Dict[str, float], Dict[str, Failure]]:
    """Bodies and mtimes of the readable files, and why each other matching file failed."""
    bodies: List[bytes] = []
    mtimes: Dict[str, float] = {}
    failed: Dict[str, Failure] = {}
    for path in sorted(glob.glob(pattern)):
        try:
            data, mtime = _read_regular(path, max_bytes)
        except _Unreadable as e:
            failed[path] = e.failure
            continue
        bodies.append(data)
        mtimes[path] = mtime
    return bodies, mtimes, failed


class FileSource(Source):
    """Textfiles: `path`, an absolute path or glob."""

    options = (Option("path", PATH, ""),)
    yaml_kinds = ("file",)

    @staticmethod
    def check(spec: SourceSpec) -> None:
        if not os.path.isabs(spec.path or ""):
            raise SpecError("path", "must be an absolute path or glob")

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._causes = CauseLog(log)
        self._failing: List[str] = []  # paths whose failure is logged

    async def fetch(self, params: Optional[Params] = None,
                    timeout: Optional[float] = None) -> Fetched:
        # Scrape params never reach the path: the pattern is configuration only.
        loop = asyncio.get_running_loop()
        bodies, mtimes, failed = await loop.run_in_executor(
            None, _read_all, self.spec.path, self.spec.max_bytes)
        self._log_changes(failed)
        if not mtimes and not failed:
            raise FetchError(reasons.MISSING, "no file matches %s" % self.spec.path)
        return Fetched(bodies, files=mtimes, errors=[r for r, _ in failed.values()],
                       file_errors={p: r for p, (r, _) in failed.items()})

    def _log_changes(self, failed: Dict[str, Failure]) -> None:
        """A warning when a file starts failing (or fails otherwise), a note when it reads
        again: once per file and reason, not at every scrape."""
        for path in sorted(set(self._failing) | set(failed)):
            reason, detail = failed.get(path, ("", ""))
            cause = "cannot read (%s): %s; serving the other files" % (reason, detail)
            self._causes.note("exporter %s: %s" % (self.name, path), cause if reason else "",
                              recovered="readable again")
        self._failing = sorted(failed)
