"""The two things a merge does to Moonraker's whole process, and the switches that turn them
off ([prometheus] merge_defer_gc and merge_malloc_trim, passed to the Merger)."""
from __future__ import annotations

import asyncio
import gc
import threading
from typing import List

import pytest

from moonraker_prometheus.sidecar import Merger, build_source, merge
from tests.sidecar.support import make_spec

pytestmark = pytest.mark.unit

# Enough series that the merge allocates past the young generation's threshold many times.
BODY = "".join('many_total{i="%d"} %d\n' % (i, i) for i in range(20000))


def collect_twice(tmp_path, **switches) -> List[str]:
    (tmp_path / "a.prom").write_text(BODY)
    merger = Merger([build_source(make_spec("f", "file", path=str(tmp_path / "a.prom")))],
                    **switches)

    async def run() -> List[str]:
        try:
            return [await merger.collect("own 1\n", timeout=10) for _ in range(2)]
        finally:
            await merger.close()
    return asyncio.run(run())


@pytest.fixture
def gc_watch(monkeypatch):
    """gc.isenabled() seen at each step of each merge (our text, the source, the health
    families); the thread of every collection that started while a merge was open (from the
    start of _merge_sources() to its state's close()), and the generation of every one that
    started on the merge thread after close() and before the merge's malloc_trim."""
    enabled: List[bool] = []
    collections: List[str] = []
    at_end: List[int] = []
    merging, closed = [], []

    def merge_sources(*args, real=merge._merge_sources):
        merging.append(1)
        return real(*args)

    def add(state, *args, real=merge.MergeState.add):
        enabled.append(gc.isenabled())
        real(state, *args)

    def close(state, real=merge.MergeState.close):
        real(state)
        if merging:
            merging.pop()
            closed.append(1)

    def trim(real=merge._trim):
        closed.clear()
        real()

    def on_gc(phase, info):
        if phase == "start" and merging:
            collections.append(threading.current_thread().name)
        elif phase == "start" and closed and threading.current_thread().name.startswith(
                "prometheus-merge"):
            at_end.append(info["generation"])

    monkeypatch.setattr(merge, "_merge_sources", merge_sources)
    monkeypatch.setattr(merge.MergeState, "add", add)
    monkeypatch.setattr(merge.MergeState, "close", close)
    monkeypatch.setattr(merge, "_trim", trim)
    gc.callbacks.append(on_gc)
    yield enabled, collections, at_end
    gc.callbacks.remove(on_gc)


def test_a_merge_defers_cyclic_gc_process_wide_by_default(tmp_path, gc_watch):
    enabled, collections, at_end = gc_watch
    texts = collect_twice(tmp_path)
    assert all('many_total{exporter_name="f",i="19999"} 19999' in t for t in texts)
    assert enabled == [False] * 6  # two merges of three steps
    assert not any(name.startswith("prometheus-merge") for name in collections)
    assert at_end == [0, 0]  # what each merge left young is collected on its own thread
    assert gc.isenabled() and merge._gc_users == 0


def test_with_gc_deferral_off_a_merge_leaves_cyclic_gc_enabled_throughout(tmp_path, gc_watch):
    enabled, collections, at_end = gc_watch
    texts = collect_twice(tmp_path, defer_gc=False)
    assert all('many_total{exporter_name="f",i="19999"} 19999' in t for t in texts)
    assert enabled == [True] * 6
    # the collector ran on the merge thread while the merge allocated, and only then
    assert any(name.startswith("prometheus-merge") for name in collections)
    assert at_end == []
    assert gc.isenabled() and merge._gc_users == 0


@pytest.fixture
def trims(monkeypatch) -> List[int]:
    """Each call of glibc's malloc_trim by the merge, counted; the real call still runs."""
    if not merge.HAS_MALLOC_TRIM:
        pytest.skip("no glibc: the merge has no malloc_trim to call")
    calls: List[int] = []
    real = merge._malloc_trim

    def counted(pad: int) -> int:
        calls.append(pad)
        return real(pad)

    monkeypatch.setattr(merge, "_malloc_trim", counted)
    return calls


def test_every_merge_ends_with_malloc_trim_by_default(tmp_path, trims):
    collect_twice(tmp_path)
    assert trims == [0, 0]


def test_with_trim_off_no_merge_calls_malloc_trim(tmp_path, trims):
    texts = collect_twice(tmp_path, malloc_trim=False)
    assert all('many_total{exporter_name="f",i="0"} 0' in t for t in texts)
    assert trims == []
