"""A dead, slow, oversize or garbage backend never fails the scrape: the rest is served in time."""
from __future__ import annotations

import asyncio
import gc
import gzip
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from moonraker_prometheus.sidecar import merge
from moonraker_prometheus.sidecar.expfmt import Rewriter
from simulator import until
from tests.sidecar.support import (assert_no_duplicates, collect, make_spec, merger_for,
                                   promtool_check, series_ids)

GOOD = b"# HELP good_total Fine.\n# TYPE good_total counter\ngood_total{k=\"v\"} 1\n"


def value(text: str, name: str, **labels: str) -> float:
    want = set(labels.items())
    for sname, lbls in series_ids(text):
        if sname == name and want <= set(lbls):
            for line in text.splitlines():
                if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in want):
                    return float(line.rsplit(" ", 1)[1])
    raise AssertionError("%s%s not in output" % (name, labels))


def test_every_kind_of_bad_backend_leaves_the_good_one_served(backend):
    backend.body("/good", GOOD)
    backend.body("/slow", GOOD, delay=3)
    backend.body("/garbage", b"<html>oops</html>\n\x00\x01 binary\ngood_total 1\n{}\n")
    backend.body("/huge", b"x 1\n" * 100000)
    backend.body("/latin1", b"ok 1\nbad{v=\"caf\xe9\"} 1\n")
    backend.body("/error", b"boom", status=500)
    specs = [
        make_spec("good", "http", url=backend.url("/good")),
        make_spec("down", "http", url="http://127.0.0.1:9/metrics", timeout=1),
        make_spec("slow", "http", url=backend.url("/slow"), timeout=0.5),
        make_spec("garbage", "http", url=backend.url("/garbage")),
        make_spec("huge", "http", url=backend.url("/huge"), max_bytes=10000),
        make_spec("latin1", "http", url=backend.url("/latin1")),
        make_spec("error", "http", url=backend.url("/error")),
    ]
    started = time.monotonic()
    out = collect(merger_for(*specs), timeout=3)
    assert time.monotonic() - started < 2.5
    promtool_check(out)
    assert_no_duplicates(series_ids(out))
    assert 'good_total{exporter_name="good",k="v"} 1' in out
    up = {n: value(out, "klipper_exporter_source_up", exporter_name=n)
          for n in ("good", "down", "slow", "garbage", "huge", "latin1", "error")}
    assert up == {"good": 1, "down": 0, "slow": 0, "garbage": 1, "huge": 0, "latin1": 1,
                  "error": 0}
    errors = "klipper_exporter_source_errors_total"
    assert value(out, errors, exporter_name="down", reason="connect") == 1
    assert value(out, errors, exporter_name="slow", reason="timeout") == 1
    assert value(out, errors, exporter_name="huge", reason="oversize") == 1
    assert value(out, errors, exporter_name="error", reason="http_status") == 1
    dropped = "klipper_exporter_merge_dropped_total"
    assert value(out, dropped, exporter_name="garbage", reason="invalid_line") == 3
    assert value(out, dropped, exporter_name="latin1", reason="invalid_utf8") == 1
    assert 'good_total{exporter_name="garbage"} 1' in out
    assert 'ok{exporter_name="latin1"} 1' in out
    assert "<html>" not in out and "caf" not in out


def test_a_backend_slower_than_the_scrape_deadline_is_cut_off(backend):
    backend.body("/good", GOOD)
    backend.body("/slow", GOOD, delay=3)
    specs = [make_spec("good", "http", url=backend.url("/good")),
             make_spec("slow", "http", url=backend.url("/slow"), timeout=10)]
    started = time.monotonic()
    out = collect(merger_for(*specs), timeout=1.0)
    assert time.monotonic() - started < 1.0
    assert 'exporter_name="good"' in out
    assert 'klipper_exporter_source_errors_total{exporter_name="slow",reason="timeout"} 1' in out


def test_gzip_bodies_are_decoded_and_the_limit_counts_decoded_bytes(backend):
    backend.body("/gz", gzip.compress(GOOD), headers={"Content-Encoding": "gzip"})
    backend.body("/bomb", gzip.compress(b"y 1\n" * 500000), headers={"Content-Encoding": "gzip"})
    out = collect(merger_for(make_spec("gz", "http", url=backend.url("/gz")),
                             make_spec("bomb", "http", url=backend.url("/bomb"),
                                       max_bytes=100000)))
    assert 'good_total{exporter_name="gz",k="v"} 1' in out
    assert 'errors_total{exporter_name="bomb",reason="oversize"} 1' in out
    assert "Accept-Encoding" in backend.requests[0][1]


def test_missing_file_is_reported_not_fatal(tmp_path):
    out = collect(merger_for(make_spec("nofile", "file", path=str(tmp_path / "none*.prom"))))
    assert 'errors_total{exporter_name="nofile",reason="missing"} 1' in out
    promtool_check(out)


def test_files_of_one_glob_merge_into_one_family_without_duplicates(tmp_path):
    (tmp_path / "a.prom").write_text("# HELP jobs Jobs.\n# TYPE jobs gauge\njobs{q=\"a\"} 1\n")
    (tmp_path / "b.prom").write_text("# TYPE jobs gauge\njobs{q=\"b\"} 2\njobs{q=\"a\"} 9\n")
    out = collect(merger_for(make_spec("tf", "file", path=str(tmp_path / "*.prom"))))
    promtool_check(out)
    assert out.count("# TYPE jobs gauge") == 1
    assert 'jobs{exporter_name="tf",q="a"} 1' in out and 'jobs{exporter_name="tf",q="b"} 2' in out
    assert 'dropped_total{exporter_name="tf",reason="duplicate_series"} 1' in out
    for name in ("a.prom", "b.prom"):
        assert 'file_mtime_seconds{exporter_name="tf",file="%s"}' % (tmp_path / name) in out


def test_a_backends_own_health_series_never_replace_the_sidecars(tmp_path):
    (tmp_path / "fake.prom").write_text(
        '# HELP klipper_exporter_source_up Fake.\n# TYPE klipper_exporter_source_up gauge\n'
        'klipper_exporter_source_up{exporter_name="tf"} 0\n'
        'klipper_exporter_source_up{exporter_name="inner"} 1\n'
        '# TYPE klipper_exporter_source_samples counter\n'
        'klipper_exporter_source_samples{exporter_name="other"} 5\n')
    out = collect(merger_for(make_spec("tf", "file", path=str(tmp_path / "*.prom"),
                                       no_rewrite=True)))
    promtool_check(out)
    assert 'klipper_exporter_source_up{exporter_name="tf"} 1' in out
    assert 'klipper_exporter_source_up{exporter_name="inner"} 1' in out
    assert "# HELP klipper_exporter_source_up 1 if" in out
    assert "# TYPE klipper_exporter_source_samples gauge" in out
    assert 'dropped_total{exporter_name="tf",reason="duplicate_series"} 1' in out
    assert 'dropped_total{exporter_name="tf",reason="type_conflict"} 1' in out


def test_unreadable_files_cost_only_themselves_and_are_reported_once(tmp_path, caplog):
    (tmp_path / "good.prom").write_text("# TYPE jobs gauge\njobs 1\n")
    os.symlink(str(tmp_path / "gone.txt"), str(tmp_path / "dangling.prom"))
    os.symlink("/proc/self/mem", str(tmp_path / "eio.prom"))  # open works, read fails: EIO
    (tmp_path / "big.prom").write_text("x 1\n" * 100)
    merger = merger_for(make_spec("tf", "file", path=str(tmp_path / "*.prom"), max_bytes=200))

    async def two_scrapes():
        try:
            return [await merger.collect(None, timeout=5) for _ in range(2)]
        finally:
            await merger.close()

    with caplog.at_level(logging.INFO, logger="moonraker_prometheus.sidecar"):
        out = asyncio.run(two_scrapes())[1]
    promtool_check(out)
    assert 'jobs{exporter_name="tf"} 1' in out
    assert value(out, "klipper_exporter_source_up", exporter_name="tf") == 1
    err = "klipper_exporter_source_file_error"
    assert value(out, err, file=str(tmp_path / "dangling.prom"), reason="missing") == 1
    assert value(out, err, file=str(tmp_path / "eio.prom"), reason="error") == 1
    assert value(out, err, file=str(tmp_path / "big.prom"), reason="oversize") == 1
    assert str(tmp_path / "good.prom") not in "".join(
        x for x in out.splitlines() if x.startswith(err))
    errors = "klipper_exporter_source_errors_total"
    assert value(out, errors, exporter_name="tf", reason="missing") == 2  # one per scrape
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3, warnings  # once per file and cause, not per scrape
    assert any("dangling.prom" in w and "dangling symlink" in w for w in warnings)
    assert any("eio.prom" in w and "Input/output error" in w for w in warnings)


def test_a_file_source_that_can_read_none_of_its_files_is_down(tmp_path):
    os.symlink(str(tmp_path / "gone.txt"), str(tmp_path / "only.prom"))
    out = collect(merger_for(make_spec("tf", "file", path=str(tmp_path / "only.prom"))))
    promtool_check(out)
    assert value(out, "klipper_exporter_source_up", exporter_name="tf") == 0
    assert value(out, "klipper_exporter_source_file_error", reason="missing") == 1
def _endless(sent: list, framing: str):
    """A route streaming `x 1` lines (up to 64 MiB), counting the bytes the client took.

    framing: "close" (no length: the body ends when the connection closes), "length" (a
    Content-Length of 64 MiB) or "chunked".
    """
    def route(h) -> None:
        h.send_response(200)
        if framing == "length":
            h.send_header("Content-Length", str(64 << 20))
        elif framing == "chunked":
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Connection", "close")
        h.end_headers()
        line = b"x 1\n" * 16384
        if framing == "chunked":
            line = b"%x\r\n%s\r\n" % (len(line), line)
        try:
            for _ in range((64 << 20) // len(line)):
                h.wfile.write(line)
                sent[0] += len(line)
        except OSError:
            pass
        h.close_connection = True
    return route


@pytest.mark.parametrize("framing", ["close", "length", "chunked"])
def test_an_oversize_body_is_not_read_past_the_limit_and_logged_once(backend, caplog, framing):
    sent = [0]
    backend.routes["/endless"] = _endless(sent, framing)
    merger = merger_for(make_spec("big", "http", url=backend.url("/endless"), max_bytes=1 << 20))

    async def run():
        outs = [await merger.collect(None, timeout=5) for _ in range(5)]
        await merger.close()
        return outs

    with caplog.at_level(logging.INFO):
        outs = asyncio.run(run())
    assert all('klipper_exporter_source_up{exporter_name="big"} 0' in o for o in outs)
    assert 'errors_total{exporter_name="big",reason="oversize"} 5' in outs[-1]
    # 5 fetches of 1 MiB each, plus what the sockets' buffers took before the close
    assert sent[0] < 5 * (1 << 20) + 5 * (8 << 20)
    logged = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.levelno for r in logged] == [logging.WARNING], [r.getMessage() for r in logged]
    assert "exporter big" in logged[0].getMessage() and "oversize" in logged[0].getMessage()
    assert not logged[0].exc_info


def test_concurrent_scrapes_share_one_fetch_whatever_their_local_text(backend):
    backend.body("/slow", GOOD, delay=0.5)
    merger = merger_for(make_spec("slow", "http", url=backend.url("/slow")))
    rendered = []

    def own() -> str:
        rendered.append(1)
        return "own_metric %d\n" % len(rendered)

    async def run():
        texts = await asyncio.gather(*(merger.collect("own_%d 1\n" % i, timeout=5)
                                       for i in range(10)))
        texts += await asyncio.gather(*(merger.collect(own, timeout=5) for _ in range(10)))
        await merger.close()
        return texts

    texts = asyncio.run(run())
    assert all('good_total{exporter_name="slow",k="v"} 1' in t for t in texts)
    assert len(backend.requests) == 2  # one per wave of ten concurrent scrapes
    assert rendered == [1]  # the local text is rendered once per shared run


def test_every_merge_of_a_merger_runs_on_its_own_thread_which_close_ends(tmp_path,
                                                                         monkeypatch):
    # One thread, so glibc keeps one malloc arena grown to a merge's peak, not one per
    # thread of the event loop's shared executor (bench/bench_memory.py measures the RSS).
    (tmp_path / "a.prom").write_bytes(GOOD)
    merger = merger_for(make_spec("f", "file", path=str(tmp_path / "a.prom")))
    threads = []

    def on_thread(step):
        def run(*args):
            threads.append(threading.current_thread())
            return step(*args)
        return run

    monkeypatch.setattr(merge, "_merge_sources", on_thread(merge._merge_sources))
    monkeypatch.setattr(merge, "_finish", on_thread(merge._finish))

    async def run():
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=4, thread_name_prefix="shared"))
        texts = [await merger.collect("own 1\n", timeout=5) for _ in range(3)]
        await merger.close()
        return texts

    texts = asyncio.run(run())
    assert all('good_total{exporter_name="f",k="v"} 1' in t for t in texts)
    assert len(threads) == 6 and len(set(threads)) == 1  # a merge and a finish per scrape
    assert not threads[0].name.startswith("shared")
    threads[0].join(5)
    assert not threads[0].is_alive()


def test_a_source_timeout_beyond_the_scrape_deadline_logs_no_error(backend, caplog):
    backend.body("/slow", GOOD, delay=3)
    merger = merger_for(make_spec("slow", "http", url=backend.url("/slow"), timeout=2))

    async def run():
        out = await merger.collect(None, timeout=1)
        await asyncio.sleep(2.5)  # past the source's own timeout
        await merger.close()
        return out

    with caplog.at_level(logging.DEBUG):
        out = asyncio.run(run())
    assert 'errors_total{exporter_name="slow",reason="timeout"} 1' in out
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_a_merge_that_would_miss_the_deadline_still_answers_in_time(backend):
    # 400,000 valid series: merging them (first scrape, every line validated) takes seconds
    body = "".join('big{i="%d"} %d\n' % (i, i) for i in range(400000)).encode()
    backend.body("/big", body)
    backend.body("/good", GOOD)
    merger = merger_for(make_spec("big", "http", url=backend.url("/big"), max_bytes=1 << 26),
                        make_spec("good", "http", url=backend.url("/good")))

    async def run():
        outs = []
        for _ in range(2):  # the second finds the first merge still running
            started = time.monotonic()
            outs.append((await merger.collect("own_metric 1\n", timeout=1.0),
                         time.monotonic() - started))
        await merger.close()
        return outs

    (out, elapsed), (second, elapsed2) = asyncio.run(run())
    assert gc.isenabled()  # the late merges closed their states, which nobody finished
    assert elapsed < 1.2 and elapsed2 < 1.2, (elapsed, elapsed2)
    promtool_check(out)
    assert "own_metric 1" in second
    assert "own_metric 1" in out
    assert 'klipper_exporter_source_up{exporter_name="big"} 0' in out
    assert 'errors_total{exporter_name="big",reason="timeout"} 1' in out
    assert 'big{' not in out


def test_cyclic_gc_stays_deferred_from_a_merge_until_its_state_is_closed():
    # A collection while the state lives would walk its families and age them into the
    # generations whose full collection walks the whole process (bench_merge: 12-14 ms
    # stalls of the event loop).
    assert gc.isenabled()
    state = merge._merge_sources(None, [("a", Rewriter([("exporter_name", "a")]), [GOOD])])
    assert not gc.isenabled()
    text = merge._finish(state, Rewriter(rewrite=False), "")
    assert gc.isenabled() and state.families == {}
    assert 'good_total{exporter_name="a",k="v"} 1' in text
    # the young objects the merge kept were collected on its thread, not the event loop's
    assert gc.get_count()[0] < 50
    state.close()  # once only: a second close must not resume what another merge defers
    other = merge._merge_sources(None, [])
    state.close()
    assert not gc.isenabled()
    other.close()
    assert gc.isenabled()


def big_merger(backend, lines: int = 100000):
    body = "".join('big{i="%d"} %d\n' % (i, i) for i in range(lines)).encode()
    backend.body("/big", body)
    return merger_for(make_spec("big", "http", url=backend.url("/big"), max_bytes=1 << 26))


def assert_gc_resumed() -> None:
    assert gc.isenabled() and merge._gc_users == 0


def test_closing_a_merger_mid_merge_closes_the_merge_state(backend):
    merger = big_merger(backend)

    async def run():
        scrape = asyncio.ensure_future(merger.collect(None, timeout=30))
        await until(lambda: merge._gc_users > 0)  # merging
        await merger.close()  # cancels the run, then waits for the merge's thread to end
        await asyncio.wait([scrape], timeout=5)
        return scrape.cancelled()

    assert asyncio.run(run())
    assert_gc_resumed()


def test_a_merge_that_raises_resumes_cyclic_gc(monkeypatch):
    def broken(*args):
        raise RuntimeError("a bug in one source's merge")

    monkeypatch.setattr(merge.MergeState, "drop_member_clashes", broken)
    with pytest.raises(RuntimeError):
        merge._merge_sources(None, [("a", Rewriter([("exporter_name", "a")]), [GOOD])])
    assert_gc_resumed()


def test_a_run_that_fails_between_merge_and_finish_closes_the_merge_state(backend,
                                                                          monkeypatch):
    merger = big_merger(backend, lines=10)

    def broken(*args):
        raise RuntimeError("a bug in the health update")

    monkeypatch.setattr(merger.health, "dropped", broken)

    async def run():
        with pytest.raises(RuntimeError):
            await merger.collect(None, timeout=5)
        await merger.close()

    asyncio.run(run())
    assert_gc_resumed()


def test_a_finish_cancelled_before_it_started_closes_the_merge_state(backend, monkeypatch):
    merger = big_merger(backend, lines=10)
    busy, release = threading.Event(), threading.Event()

    def merge_then_occupy_the_worker(*args):
        state = real_merge(*args)
        merger._worker.submit(lambda: (busy.set(), release.wait(10)))  # _finish queues behind
        return state

    real_merge = merge._merge_sources
    monkeypatch.setattr(merge, "_merge_sources", merge_then_occupy_the_worker)
    finished = []
    monkeypatch.setattr(merge, "_finish", lambda *args: finished.append(args))

    async def run():
        scrape = asyncio.ensure_future(merger.collect(None, timeout=30))
        await until(busy.is_set)
        await asyncio.sleep(0.2)  # the run hands _finish to the busy worker meanwhile
        for run_task in list(merger._inflight.values()):
            run_task.cancel()
        await asyncio.wait([scrape], timeout=5)
        release.set()
        await merger.close()

    asyncio.run(run())
    assert finished == []  # cancelled before it started: the run's callback closed the state
    assert_gc_resumed()
