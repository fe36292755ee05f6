"""File sources: each match the source cannot read (a folder, FIFO, socket, device, dangling
symlink, no permission) is reported with its reason, as node_exporter's textfile collector
reports its files; none is skipped in silence, and none is waited on."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from typing import Iterator, List

from tests.scrape import parse, value
from tests.sidecar.support import make_spec, merger_for, promtool_check

WRITE_ONLY = "/sys/bus/cpu/uevent"  # sysfs, write-only: reading it is refused even to root


def _socket(path: str) -> None:
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)  # the socket file stays after close


# name in the textfile folder -> (how to make it, reason, what the log line says)
UNREADABLE = {
    "folder.prom": (os.mkdir, "not_regular", "a directory, not a regular file"),
    "pipe.prom": (os.mkfifo, "not_regular", "a named pipe (FIFO), not a regular file"),
    "socket.prom": (_socket, "not_regular", "a socket, not a regular file"),
    "null.prom": (lambda p: os.symlink("/dev/null", p), "not_regular",
                  "a character device, not a regular file"),
    "dangling.prom": (lambda p: os.symlink("gone.txt", p), "missing", "dangling symlink"),
    "writeonly.prom": (lambda p: os.symlink(WRITE_ONLY, p), "permission",
                       "Permission denied"),
}


def textfile_folder(path) -> None:
    """A folder with one good textfile and every kind of match that cannot be read."""
    (path / "good.prom").write_text("# TYPE jobs gauge\njobs 1\n")
    for name, (make, _, _) in UNREADABLE.items():
        make(str(path / name))
    (path / "folder.prom" / "inner.prom").write_text("inner 1\n")  # not read: no recursion


@contextlib.contextmanager
def fifo_writer_after(fifo: str, delay: float = 2.0) -> Iterator[List[float]]:
    """From `delay` seconds on, opens `fifo` for writing whenever a reader waits in open()
    (a non-blocking open succeeds only then) and closes it at once: a source that opened
    the FIFO reads EOF instead of hanging the test. Yields the times it had to."""
    released: List[float] = []
    stop = threading.Event()

    def release() -> None:
        stop.wait(delay)
        while not stop.wait(0.05):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # ENXIO: nobody is waiting to read it
                continue
            released.append(time.monotonic())

    thread = threading.Thread(target=release, daemon=True)
    thread.start()
    try:
        yield released
    finally:
        stop.set()
        thread.join()


def assert_reports_every_unreadable_match(text: str, path, scrapes: int) -> None:
    promtool_check(text)
    series = parse(text)
    assert value(series, "jobs", exporter_name="tf") == 1
    assert value(series, "klipper_exporter_source_up", exporter_name="tf") == 1
    assert "inner" not in text
    for name, (_, reason, _) in UNREADABLE.items():
        assert value(series, "klipper_exporter_source_file_error", exporter_name="tf",
                     file=str(path / name), reason=reason) == 1, name
        assert 'file="%s"' % (path / name) not in "".join(
            x for x in text.splitlines() if x.startswith("klipper_exporter_source_file_mtime"))
    for reason, files in (("not_regular", 4), ("missing", 1), ("permission", 1)):
        assert value(series, "klipper_exporter_source_errors_total", exporter_name="tf",
                     reason=reason) == files * scrapes


def test_every_match_it_cannot_read_is_reported_with_its_reason_once(tmp_path, caplog):
    assert os.path.exists(WRITE_ONLY)
    textfile_folder(tmp_path)
    merger = merger_for(make_spec("tf", "file", path=str(tmp_path / "*.prom")))

    async def two_scrapes():
        try:
            return [await merger.collect(None, timeout=5) for _ in range(2)]
        finally:
            await merger.close()

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="moonraker_prometheus.sidecar"), \
            fifo_writer_after(str(tmp_path / "pipe.prom")) as released:
        out = asyncio.run(two_scrapes())[1]
    assert released == []  # the FIFO was never opened, so never waited on
    assert time.monotonic() - started < 2
    assert_reports_every_unreadable_match(out, tmp_path, scrapes=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(UNREADABLE), warnings  # once per file, not per scrape
    for name, (_, reason, what) in UNREADABLE.items():
        assert any(name in w and "(%s)" % reason in w and what in w for w in warnings), name


def test_a_source_whose_only_match_is_a_folder_is_down_and_says_why(tmp_path):
    (tmp_path / "only.prom").mkdir()
    merger = merger_for(make_spec("tf", "file", path=str(tmp_path / "only.prom")))

    async def scrape():
        try:
            return await merger.collect(None, timeout=5)
        finally:
            await merger.close()

    series = parse(asyncio.run(scrape()))
    assert value(series, "klipper_exporter_source_up", exporter_name="tf") == 0
    assert value(series, "klipper_exporter_source_file_error", exporter_name="tf",
                 file=str(tmp_path / "only.prom"), reason="not_regular") == 1
    assert value(series, "klipper_exporter_source_errors_total", exporter_name="tf",
                 reason="not_regular") == 1
    assert value(series, "klipper_exporter_source_errors_total", exporter_name="tf",
                 reason="missing") is None
