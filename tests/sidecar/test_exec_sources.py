"""Commands: shared runs, group kills, reaping, bounded output, periodic cache and staleness."""
from __future__ import annotations

import asyncio
import logging
import sys
import time

import pytest

from moonraker_prometheus.sidecar import SpecError
from moonraker_prometheus.sidecar.sources import build_source
from simulator import until
from tests.scrape import parse, value
from tests.sidecar.support import (children_of_self, collect, make_spec,
                                   merger_for, open_fds, promtool_check, write_script)
from tests.sidecar.test_standalone import get, one_path, sidecar  # noqa: F401  (fixture)


def gone(pid: int) -> bool:
    """Dead: no such process, or a zombie now owned by init (not ours to reap)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def gone_soon(pid: int, within: float = 2.0) -> bool:
    """gone(), allowing for SIGKILL's delivery (the kill returns before the process dies)."""
    deadline = time.monotonic() + within
    while not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return gone(pid)


def test_hanging_script_is_killed_with_its_whole_process_group(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    script = write_script(str(tmp_path / "hang.sh"),
                          "sleep 60 &\necho $! > %s\necho 'partial 1'\nsleep 60\n" % pidfile)
    started = time.monotonic()
    out = collect(merger_for(make_spec("hang", "exec", command=[script], timeout=0.5)))
    assert time.monotonic() - started < 2
    assert 'errors_total{exporter_name="hang",reason="timeout"} 1' in out
    assert "partial" not in out
    assert gone(int(pidfile.read_text()))
    assert children_of_self() == []


def test_crashing_script_counts_exit_status_and_logs_its_stderr(tmp_path, caplog):
    script = write_script(str(tmp_path / "crash.sh"),
                          "echo 'half 1'\necho 'something broke' >&2\nexit 3\n")
    with caplog.at_level(logging.WARNING):
        out = collect(merger_for(make_spec("crash", "exec", command=[script])))
    assert 'errors_total{exporter_name="crash",reason="exit_status"} 1' in out
    assert "half" not in out
    assert any("something broke" in r.getMessage() for r in caplog.records)


def test_script_printing_garbage_keeps_only_valid_lines(tmp_path):
    script = write_script(str(tmp_path / "junk.sh"),
                          "echo 'Traceback (most recent call last):'\necho 'fine 1'\n"
                          "printf 'bad{x=\"\\377\"} 1\\n'\necho '# TYPE x bogus'\n")
    out = collect(merger_for(make_spec("junk", "exec", command=[script])))
    promtool_check(out)
    assert 'fine{exporter_name="junk"} 1' in out
    assert 'dropped_total{exporter_name="junk",reason="invalid_line"} 1' in out
    assert 'dropped_total{exporter_name="junk",reason="invalid_utf8"} 1' in out
    assert 'dropped_total{exporter_name="junk",reason="invalid_type"} 1' in out


def test_oversize_output_kills_the_script(tmp_path):
    script = write_script(str(tmp_path / "flood.sh"), "yes 'flood 1'\n")
    out = collect(merger_for(make_spec("flood", "exec", command=[script], max_bytes=100000)))
    assert 'errors_total{exporter_name="flood",reason="oversize"} 1' in out
    assert children_of_self() == []


def test_argv_is_passed_verbatim_without_a_shell(tmp_path):
    script = write_script(str(tmp_path / "args.sh"), 'echo "argc $#"\n')
    out = collect(merger_for(make_spec("args", "exec", command=[script, "a b", "$(id)", ";"])))
    assert 'argc{exporter_name="args"} 3' in out


def test_shell_only_when_configured(tmp_path):
    out = collect(merger_for(make_spec("sh", "exec", shell=True,
                                       command=["echo \"piped $((1+2))\" | cat"])))
    assert 'piped{exporter_name="sh"} 3' in out
    with pytest.raises(SpecError, match="command"):
        make_spec("x", "exec", command=["echo hi | cat"])


def test_fifty_concurrent_scrapes_share_one_run(tmp_path):
    counter = tmp_path / "runs"
    script = write_script(str(tmp_path / "count.sh"),
                          "echo run >> %s\nsleep 0.5\necho 'counted 1'\n" % counter)
    merger = merger_for(make_spec("count", "exec", command=[script]))
    source = merger.sources[0]

    async def run():
        outs = await asyncio.gather(*(merger.collect(None, timeout=5) for _ in range(50)))
        fetched = await asyncio.gather(*(source.fetch() for _ in range(50)))
        await merger.close()
        return outs, fetched

    outs, fetched = asyncio.run(run())
    assert all('counted{exporter_name="count"} 1' in o for o in outs)
    assert all(f.bodies == [b"counted 1\n"] for f in fetched)
    assert counter.read_text().count("run") == 2  # one run for the scrapes, one for fetches


def test_a_thousand_scrapes_leave_no_zombie_and_no_leaked_fd(tmp_path, backend):
    backend.body("/m", b"b 1\n")
    script = write_script(str(tmp_path / "fast.sh"), "echo 'fast 1'\n")
    (tmp_path / "f.prom").write_text("f 1\n")
    merger = merger_for(make_spec("fast", "exec", command=[script]),
                        make_spec("http", "http", url=backend.url("/m")),
                        make_spec("file", "file", path=str(tmp_path / "*.prom")))

    async def run():
        for _ in range(5):
            await merger.collect(None, timeout=5)
        before = open_fds()
        for _ in range(1000):
            out = await merger.collect(None, timeout=5)
        after = open_fds()
        await merger.close()
        return before, after, out

    before, after, out = asyncio.run(run())
    assert 'fast{exporter_name="fast"} 1' in out and 'b{exporter_name="http"} 1' in out
    assert after <= before
    assert children_of_self() == []


def test_periodic_exec_serves_cache_with_age_then_stops_when_stale(tmp_path):
    flag = tmp_path / "fail"
    script = write_script(str(tmp_path / "periodic.sh"),
                          "[ -e %s ] && exit 1\necho 'cached 1'\n" % flag)
    spec = make_spec("cron", "exec_periodic", command=[script], interval=1.0, max_age=1.5)
    merger = merger_for(spec)

    async def run():
        first = await merger.collect(None, timeout=5)
        flag.write_text("")
        await asyncio.sleep(1.2)
        degraded = await merger.collect(None, timeout=5)
        await asyncio.sleep(1.0)
        stale = await merger.collect(None, timeout=5)
        await merger.close()
        return first, degraded, stale

    first, degraded, stale = asyncio.run(run())
    assert 'cached{exporter_name="cron"} 1' in first
    assert 'cache_age_seconds{exporter_name="cron"}' in first
    assert 'cached{exporter_name="cron"} 1' in degraded
    assert 'errors_total{exporter_name="cron",reason="exit_status"}' in degraded
    assert "cached{" not in stale
    assert 'errors_total{exporter_name="cron",reason="stale"} 1' in stale
    assert 'klipper_exporter_source_up{exporter_name="cron"} 0' in stale
    assert children_of_self() == []


def test_periodic_interval_has_a_minimum_and_max_age_follows_it():
    with pytest.raises(SpecError, match="interval.*at least 1"):
        make_spec("busy", "exec_periodic", command=["/bin/true"], interval=0)
    with pytest.raises(SpecError, match="max_age"):
        make_spec("x", "exec_periodic", command=["/bin/true"], interval=10, max_age=5)
    assert make_spec("x", "exec_periodic", command=["/bin/true"], interval=10).max_age == 30


def test_unknown_program_is_a_config_error():
    with pytest.raises(SpecError, match="command"):
        build_source(make_spec("x", "exec", command=["no-such-program-here"]))


# Helpers a command leaves behind, each holding the run's stdout and stderr open; the pid
# of the helper is written to the file given as %s.
BACKGROUND_HELPERS = {
    "background_sleep": "sleep 600 & echo $! > %s",
    "forked_logger": "(while :; do echo tick >&2; sleep 0.1; done) & echo $! > %s",
}


@pytest.mark.parametrize("helper", sorted(BACKGROUND_HELPERS))
@pytest.mark.parametrize("kind", ["exec", "exec_periodic"])
def test_a_run_ends_when_the_command_exits_though_a_helper_holds_its_pipes(
        tmp_path, kind, helper, caplog):
    # The shell exits at once; the helper it started keeps stdout and stderr open. The run
    # ends at the shell's exit (not at EOF, not at the timeout), serves what the shell
    # wrote, logs its stderr, and kills the helper with the rest of the group.
    pidfile = tmp_path / "helper.pid"
    spec = make_spec("bg", kind, shell=True, timeout=5, command=[
        BACKGROUND_HELPERS[helper] % pidfile + "; echo 'warming up' >&2; echo my_metric 1"])
    merger = merger_for(spec)

    async def run():
        started = time.monotonic()
        out = await merger.collect(None, timeout=8)
        took = time.monotonic() - started
        await merger.close()
        return out, took

    with caplog.at_level(logging.WARNING):
        out, took = asyncio.run(run())
    assert took < 2
    assert 'my_metric{exporter_name="bg"} 1' in out
    assert 'klipper_exporter_source_up{exporter_name="bg"} 1' in out
    assert "klipper_exporter_source_errors_total{" not in out
    assert any("warming up" in r.getMessage() for r in caplog.records)
    assert gone_soon(int(pidfile.read_text()))
    assert children_of_self() == []


def test_a_helper_detached_with_setsid_does_not_hold_the_run_and_dies_writing_to_it(tmp_path):
    # setsid moves the helper to a session of its own: it is no longer the run's, and the
    # group kill does not reach it. It holds the run's stdout, but the run ends at the
    # command's exit and closes its end of the pipe: the helper's next write gets SIGPIPE.
    pidfile, go = tmp_path / "helper.pid", tmp_path / "go"
    spec = make_spec("detached", "exec", shell=True, timeout=5, command=[
        "setsid sh -c 'echo $$ > %s; until [ -e %s ]; do sleep 0.05; done; echo late 1' & "
        "until [ -s %s ]; do sleep 0.05; done; echo early 1" % (pidfile, go, pidfile)])
    try:
        started = time.monotonic()
        out = collect(merger_for(spec), timeout=8)
        assert time.monotonic() - started < 2
        assert 'early{exporter_name="detached"} 1' in out
        assert "klipper_exporter_source_errors_total{" not in out
        helper = int(pidfile.read_text())
        assert not gone(helper)
        go.write_text("")
        assert gone_soon(helper)
    finally:
        go.write_text("")  # a helper still there (a failed test) writes and ends too


BULK = """import fcntl, os, sys, time
fcntl.fcntl(1, 1031, 1 << 20)  # F_SETPIPE_SZ: a 1 MiB pipe, so the writes never wait
open(sys.argv[1], "w").close()
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
sys.stdout.write("".join('line{i="%d"} 1\\n' % i for i in range(40000)))
"""


def test_output_still_in_the_pipe_when_the_command_exits_is_served_whole(tmp_path):
    # The command fills a 1 MiB stdout pipe and exits while the event loop is busy. At the
    # exit most of its output is still in the pipe (the loop reads 64 KiB per wake-up); a
    # background sleep holds the pipe open, so no EOF comes. The run reads what the pipe
    # holds without waiting: all of it is served, and the byte limit still applies to it.
    (tmp_path / "bulk.py").write_text(BULK)
    script = write_script(str(tmp_path / "bulk.sh"),
                          'sleep 600 &\nexec %s %s "$@"\n' % (sys.executable, tmp_path / "bulk.py"))
    specs, ready, go = [], [], []
    for name, max_bytes in (("bulk", 16 << 20), ("capped", 100000)):
        ready.append(tmp_path / (name + ".ready"))
        go.append(tmp_path / (name + ".go"))
        specs.append(make_spec(name, "exec", command=[script, str(ready[-1]), str(go[-1])],
                               timeout=10, max_bytes=max_bytes))
    merger = merger_for(*specs)

    async def run():
        scrape = asyncio.ensure_future(merger.collect(None, timeout=15))
        await until(lambda: all(r.exists() for r in ready), timeout=10)
        for g in go:
            g.write_text("")
        time.sleep(1.0)  # a busy event loop: the commands write and exit meanwhile
        out = await scrape
        await merger.close()
        return out

    series = parse(asyncio.run(run()))
    assert value(series, "klipper_exporter_source_samples", exporter_name="bulk") == 40000
    assert value(series, "line", exporter_name="bulk", i="39999") == 1
    assert value(series, "klipper_exporter_source_errors_total", exporter_name="capped",
                 reason="oversize") == 1
    assert children_of_self() == []


def test_a_command_that_closes_stdout_but_keeps_running_times_out(tmp_path, caplog):
    # Closing stdout is not the end of the run: the exit status decides whether the output
    # is served, and a command still running has none yet.
    script = write_script(str(tmp_path / "closer.sh"), "echo 'early 1'\nexec >&-\nsleep 60\n")
    with caplog.at_level(logging.WARNING):
        out = collect(merger_for(make_spec("closer", "exec", command=[script], timeout=0.5)))
    assert 'errors_total{exporter_name="closer",reason="timeout"} 1' in out
    assert "early" not in out
    assert any("closed stdout, still running" in r.getMessage() for r in caplog.records)
    assert children_of_self() == []


def test_the_standalone_sidecar_ends_runs_when_the_command_exits(sidecar, tmp_path):
    pidfile = tmp_path / "helpers.pid"
    command = "sleep 600 & echo $! >> %s; echo my_metric 1" % pidfile
    s = sidecar(one_path({
        "exec": [{"name": "ex", "command": command, "shell": True}],
        "exec_cached": [{"name": "cached", "command": command, "shell": True,
                         "exec_interval": "1m"}]}))
    port = s.port()
    started = time.monotonic()
    status, _, body = get(port, "/metrics")
    assert time.monotonic() - started < 2
    text = body.decode()
    assert status == 200
    for name in ("ex", "cached"):
        assert 'my_metric{exporter_name="%s"} 1' % name in text
        assert 'klipper_exporter_source_up{exporter_name="%s"} 1' % name in text
    helpers = pidfile.read_text().split()
    assert len(helpers) == 2 and all(gone_soon(int(pid)) for pid in helpers)


def test_background_processes_of_a_successful_run_are_killed_on_exit(tmp_path):
    pidfile = tmp_path / "daemon.pid"
    spec = make_spec("daemon", "exec", shell=True, command=[
        "sleep 600 </dev/null >/dev/null 2>&1 & echo $! > %s; echo ok 1" % pidfile])
    out = collect(merger_for(spec))
    assert 'ok{exporter_name="daemon"} 1' in out
    assert gone_soon(int(pidfile.read_text()))


def test_a_failing_script_is_logged_once_per_cause_not_per_scrape(tmp_path, caplog):
    script = write_script(str(tmp_path / "fail.sh"), "echo 'disk gone' >&2\nexit 2\n")
    merger = merger_for(make_spec("fail", "exec", command=[script]))

    async def run():
        for _ in range(5):
            await merger.collect(None, timeout=5)
        await merger.close()

    with caplog.at_level(logging.INFO):
        asyncio.run(run())
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert len(messages) == 2, messages
    assert any("disk gone" in m for m in messages)
    assert any("exit_status" in m and "exporter fail" in m for m in messages)


def test_a_stale_periodic_source_is_logged_once(tmp_path, caplog):
    flag = tmp_path / "fail"
    script = write_script(str(tmp_path / "p.sh"), "[ -e %s ] && exit 1\necho 'c 1'\n" % flag)
    merger = merger_for(make_spec("cron", "exec_periodic", command=[script], interval=1.0,
                                  max_age=1.0))

    async def run():
        await merger.collect(None, timeout=5)
        flag.write_text("")
        await asyncio.sleep(1.5)
        outs = []
        for _ in range(3):
            outs.append(await merger.collect(None, timeout=5))
            await asyncio.sleep(1.1)
        await merger.close()
        return outs

    with caplog.at_level(logging.INFO):
        outs = asyncio.run(run())
    assert all('reason="stale"' in o for o in outs)
    stale = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
    assert len(stale) == 1, stale
