"""Merging bodies into one valid exposition, and the Merger that scrapes a group of sources.

Rules: one HELP/TYPE per family (first HELP wins); a family whose type conflicts with the
earlier one is dropped from the later source; duplicate series (same name and label set, in
any order, empty labels ignored) are dropped after the first (a histogram or summary series
is dropped whole); a family named like a member of a histogram/summary
(`x_sum`, `x_count`, `x_bucket`) is dropped because Go's parser would fold it into `x`;
families are written in name order, samples in source order. Everything dropped is counted.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import (Awaitable, Callable, Dict, Hashable, Iterator, List, Mapping, Optional,
                    Sequence, Set, Tuple, Union)

from ..exposition import escape_label_value
from . import reasons
from .expfmt import ParsedFamily, Rewriter, full_identity, parse, render
from .health import FAMILIES as HEALTH_FAMILIES
from .health import Health
from .sources import Fetched, FetchError, Source
from .sources.base import CauseLog, Params, consume_outcome

log = logging.getLogger(__name__)
# Seconds within which Merger.collect() answers (its sources' fetches and the merge) when its
# caller names no deadline. The component passes [prometheus] scrape_timeout
# (options.DEFAULT_SCRAPE_DEADLINE_S), the standalone server web.scrape_timeout
# (spec.DEFAULT_STANDALONE_SCRAPE_DEADLINE_S); each source's own fetch is bounded by its
# `timeout` option (spec.DEFAULT_FETCH_TIMEOUT_S) too.
DEFAULT_COLLECT_DEADLINE_S = 10.0
_MEMBERS = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
_SIMPLE = ("counter", "gauge", "untyped")
_SPECIAL_LABEL = {t: re.compile(r'(?<=[{,])%s="[^"]*",?' % label)
                  for t, label in (("histogram", "le"), ("summary", "quantile"))}
# The sidecar's own health families: a backend's series there never replace the sidecar's.
_RESERVED = {f.name: f.type for f in HEALTH_FAMILIES}


def _group_key(fam: ParsedFamily, ident: str) -> str:
    """One histogram/summary series: its identity without `le`/`quantile` and name suffix."""
    brace = ident.find("{")
    if brace < 0:
        return ""
    special = _SPECIAL_LABEL[fam.type or ""]
    return special.sub("", ident[brace:]).replace(",}", "}")


class MergeState:
    """Families merged so far, and what each source contributed or lost (by reason).

    Series are compared by identity (name and label set; label order and empty labels do
    not count), so the first of two equal series is kept. `sources` are the exporter names
    the sidecar reports health for: in its health families, a backend's series carrying one
    of these names is dropped (`duplicate_series`), so the sidecar's own always win.
    """

    def __init__(self, sources: Sequence[str] = (), gc_deferred: bool = False) -> None:
        self._health_tags = tuple('exporter_name="%s"' % escape_label_value(n) for n in sources)
        self.families: Dict[str, ParsedFamily] = {}
        self.origin: Dict[str, str] = {}
        self.samples: Dict[str, int] = {}
        self.dropped: Dict[str, Dict[str, int]] = {}
        self._keys: Dict[str, Set[str]] = {}  # series per family, built when first needed
        self._sources: Dict[str, Set[str]] = {}  # sources contributing to each family
        self._untagged: Set[str] = set()  # families with samples not tagged exporter_name
        self._whole: Set[str] = set()  # families whose identities are all full_identity()
        self._gc_deferred = gc_deferred  # close() resumes cyclic GC: see _merge_sources()

    def _drop(self, source: str, reason: str, n: int) -> None:
        if n:
            d = self.dropped.setdefault(source, {})
            d[reason] = d.get(reason, 0) + n

    def add(self, source: str, rw: Rewriter, bodies: Sequence[Union[bytes, str]]) -> None:
        """Merges one source's bodies (one per file for globs) after what is already here."""
        for body in bodies:
            parsed = parse(body, rw)
            for reason, n in parsed.dropped.items():
                self._drop(source, reason, n)
            for fam in parsed.families.values():
                if fam.count:
                    self._add_family(source, fam, rw.tags)
        rw.rotate()

    def _add_family(self, source: str, fam: ParsedFamily, tagged: bool) -> None:
        if fam.name in _RESERVED and source and not self._keep_reserved(source, fam):
            return
        have = self.families.get(fam.name)
        if have is None:
            self.families[fam.name] = fam
            self.origin[fam.name] = source
            self._sources[fam.name] = {source}
            if not tagged:
                self._untagged.add(fam.name)
            self.samples[source] = self.samples.get(source, 0) + fam.count
            return
        if have.type != fam.type and not (
                (not have.typed or not fam.typed) and have.type in _SIMPLE
                and fam.type in _SIMPLE):
            self._drop(source, reasons.TYPE_CONFLICT, fam.count)
            return
        if fam.typed and not have.typed:
            have.type, have.typed = fam.type, True
        if have.help is None:
            have.help = fam.help
        contributors = self._sources[fam.name]
        if tagged and fam.name not in self._untagged and source not in contributors:
            # Every sample here carries a distinct exporter_name: no series can repeat.
            contributors.add(source)
            self._keys.pop(fam.name, None)
            self.samples[source] = self.samples.get(source, 0) + fam.count
            have.extend(fam)
            return
        contributors.add(source)
        if not tagged:
            self._untagged.add(fam.name)
        have.identities()
        ids = fam.identities()
        if fam.name in self._untagged:
            # A tagged source's identities keep its own labels in front (see parse); where an
            # untagged source meets others, every identity is made whole.
            if fam.name not in self._whole:
                self._whole.add(fam.name)
                have.ids = [full_identity(i) for i in have.identities()]
                self._keys.pop(fam.name, None)
            ids = [full_identity(i) for i in ids]
        keys = self._keys.get(fam.name)
        if keys is None:
            keys = self._keys[fam.name] = set(have.identities())
        lines = fam.lines()
        pairs: Iterator[Tuple[str, str]] = zip(lines, ids)
        if have.type in _MEMBERS:
            # A series clashing anywhere is dropped whole, so no histogram is left half-merged.
            clash = {_group_key(have, i) for i in ids if i in keys}
            if clash:
                kept = [(x, i) for x, i in zip(lines, ids)
                        if _group_key(have, i) not in clash]
                self._drop(source, reasons.DUPLICATE_SERIES, len(lines) - len(kept))
                pairs = iter(kept)
        added = 0
        for line, ident in pairs:
            if ident in keys:
                self._drop(source, reasons.DUPLICATE_SERIES, 1)
                continue
            keys.add(ident)
            have.add(line, ident)
            added += 1
        self.samples[source] = self.samples.get(source, 0) + added

    def _keep_reserved(self, source: str, fam: ParsedFamily) -> bool:
        """Removes from a backend's health-named family the series the sidecar reports
        itself; False if nothing is left. A family of another type is dropped whole."""
        if fam.type != _RESERVED[fam.name] and (fam.typed or fam.type not in _SIMPLE):
            self._drop(source, reasons.TYPE_CONFLICT, fam.count)
            return False
        tags = self._health_tags
        kept = [not any("{" + t + "," in i or "," + t + "," in i or "{" + t + "}" in i
                        or "," + t + "}" in i for t in tags) for i in fam.identities()]
        before = fam.count
        fam.keep(kept)
        self._drop(source, reasons.DUPLICATE_SERIES, before - fam.count)
        return fam.count > 0

    def drop_member_clashes(self) -> None:
        """Drops families named like a member of a histogram/summary (`x_sum` next to `x`)."""
        for fam in list(self.families.values()):
            for suffix in _MEMBERS.get(fam.type or "", ()):
                other = self.families.get(fam.name + suffix)
                if other is not None and other is not fam:
                    src = self.origin[other.name]
                    self._drop(src, reasons.NAME_CONFLICT, other.count)
                    self.samples[src] = self.samples.get(src, 0) - other.count
                    del self.families[other.name]

    def render(self) -> str:
        return render(self.families[name] for name in sorted(self.families))

    def close(self) -> None:
        """Drops the merged families and series, then resumes cyclic GC, which
        _merge_sources() left deferred for this state; once (later calls, and calls on a
        state made with GC not deferred, do nothing)."""
        if self._gc_deferred:
            self._gc_deferred = False
            self.families, self._keys, self._sources = {}, {}, {}
            _resume_gc()


# glibc keeps what a merge freed at the top of its heaps; malloc_trim(0) after each merge
# hands it back (bench_memory: RSS added by a 20,000-sample source 23.1 -> 18.6 MiB).
_malloc_trim: Optional[Callable[[int], int]]
try:
    _malloc_trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None
HAS_MALLOC_TRIM = _malloc_trim is not None  # glibc: a merge's malloc_trim does something


def _trim() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)


# Cyclic GC is deferred while a merge's state lives: from the start of _merge_sources() to
# MergeState.close(). The merge allocates many short-lived tracked objects (regex matches,
# lists, families), so collections would run in the worker while it holds the GIL and stall
# the event loop; run while the state is alive, they would also walk its thousands of
# families (2-4 ms) and move them into the older generations, whose full collection then
# walks every object of the process (12-14 ms in bench_merge's stall test, more in
# Moonraker). Once the state is dropped, whatever collection the next allocation starts finds
# little. The merge creates no reference cycles, so nothing waits on the collector.
# Concurrent merges are counted; the first one in disables, the last one out restores.
_gc_lock = threading.Lock()
_gc_users = 0
_gc_was_enabled = False


def _defer_gc() -> None:
    global _gc_users, _gc_was_enabled
    with _gc_lock:
        if _gc_users == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_users += 1


def _resume_gc() -> None:
    global _gc_users
    with _gc_lock:
        _gc_users -= 1
        if _gc_users == 0 and _gc_was_enabled:
            gc.enable()


def _merge_sources(local: Optional[Tuple[Rewriter, str]],
                   parts: Sequence[Tuple[str, Rewriter, List[bytes]]],
                   sources: Sequence[str] = (), defer_gc: bool = True) -> MergeState:
    """The merged state of our own text (`local`) and each source's bodies. With `defer_gc`,
    cyclic GC stays deferred until the state's close() (_finish() closes it; so must
    whoever abandons it)."""
    if defer_gc:
        _defer_gc()
    state = MergeState(sources, gc_deferred=defer_gc)
    try:
        if local is not None:
            state.add("", local[0], [local[1]])
        for name, rw, bodies in parts:
            state.add(name, rw, bodies)
        state.drop_member_clashes()
    except BaseException:
        state.close()
        raise
    return state


def _finish(state: MergeState, rw: Rewriter, health_text: str, defer_gc: bool = True,
            trim: bool = True) -> str:
    """The exposition of `state` and the health families (`health_text`); closes the state.
    `defer_gc` (as given to _merge_sources): the young generation is collected at the end;
    `trim`: glibc's malloc_trim(0) runs last."""
    try:
        for name in _RESERVED:  # the sidecar's HELP, not a backend's
            fam = state.families.get(name)
            if fam is not None:
                fam.help = None
        state.add("", rw, [health_text])
        text = state.render()
    finally:
        state.close()
    if defer_gc and gc.isenabled():
        # What the merge kept (a first scrape's templates: thousands of tracked objects) is
        # collected here, as the merge's last step: 2-4 ms with the GIL held, like one of
        # its slices, instead of at the event loop's next allocation, where it came on top
        # of a slice. On a steady-state scrape the young generation is all but empty.
        gc.collect(0)
    if trim:
        _trim()
    return text


def _close_abandoned(job: "Future[MergeState]") -> None:
    """Closes the state of a merge no _finish() will take (done callback of its job)."""
    if not job.cancelled() and job.exception() is None:
        job.result().close()


def rewriter_for(source: Source) -> Rewriter:
    spec = source.spec
    labels = [("exporter_name", spec.name)] + sorted(spec.labels.items())
    return Rewriter(labels, honor_labels=spec.honor_labels, rewrite=not spec.no_rewrite,
                    keep=spec.keep_re, drop=spec.drop_re)


def _freeze(params: Optional[Params]) -> Tuple:
    if not params:
        return ()
    return tuple(sorted((k, (v,) if isinstance(v, str) else tuple(v)) for k, v in params.items()))


LocalText = Union[str, Callable[[], Union[str, Awaitable[str]]], None]


class Merger:
    """Scrapes one group of sources concurrently and merges them (see the package docstring).

    `defer_gc`: cyclic GC is deferred process-wide while a merge's state lives, and the
    young generation collected on the merge thread at its end (see _defer_gc); False leaves
    the collector to Python. `malloc_trim`: glibc's malloc_trim(0) after each merge, which
    hands the freed heap top back to the system (no-op without glibc). Both are the
    [prometheus] options merge_defer_gc and merge_malloc_trim.
    """

    def __init__(self, sources: Sequence[Source], defer_gc: bool = True,
                 malloc_trim: bool = True) -> None:
        names = [s.name for s in sources]
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise ValueError("exporter names must be unique, repeated: %s" % ", ".join(dups))
        self.sources = list(sources)
        self.defer_gc, self.malloc_trim = defer_gc, malloc_trim
        self.health = Health(names)
        self._rewriters = {s.name: rewriter_for(s) for s in sources}
        self._local_rw = Rewriter(rewrite=False)  # the component's own text: as-is
        self._health_rw = Rewriter(rewrite=False)
        self._inflight: Dict[Tuple, asyncio.Future] = {}  # shared runs of collect()
        self._fetching: Dict[Tuple, asyncio.Future] = {}  # shared fetches of one source
        self._merging: Optional[asyncio.Lock] = None  # rewriters are used by one merge at a time
        # Every merge of this Merger runs on one thread of its own. glibc gives each thread
        # that allocates its own malloc arena and keeps what a merge's peak grew it to, so
        # merges spread over a shared pool's threads (Moonraker's executor) would keep that
        # peak once per thread (bench/bench_memory.py: ~8 MiB more for a 20,000-sample source).
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prometheus-merge")
        self._causes = CauseLog(log)  # failures logged once per distinct cause

    def start(self) -> None:
        """Starts periodic sources now (otherwise the first collect does)."""
        for s in self.sources:
            s.start()

    async def collect(self, local_text: LocalText = None,
                      timeout: float = DEFAULT_COLLECT_DEADLINE_S,
                      params: Optional[Mapping[str, Sequence[str]]] = None,
                      variant: Hashable = None) -> str:
        """The merged exposition, answered within `timeout` seconds.

        `local_text` is merged first, untouched: a string, or a function called once per run
        when the sources have answered (so it is as fresh as the merge), which returns a
        string or an awaitable of one (the component renders ahead). Calls with the same
        `params` and `variant` (what the caller's local text depends on, e.g. its module
        selection) while a run is in flight share that run and its local text.
        """
        key = (variant, _freeze(params))
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._run(local_text, timeout, params))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        # shield: one impatient scraper must not cancel the run the others share
        return await asyncio.shield(task)

    async def _run(self, local_text: LocalText, timeout: float,
                   params: Optional[Params]) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reserve = max(0.25, 0.1 * timeout)  # time kept for the merge
        budget = max(0.1, timeout - reserve)
        results = await asyncio.gather(*(self._fetch(s, budget, params) for s in self.sources))
        parts = [(s.name, self._rewriters[s.name], f.bodies)
                 for s, f in zip(self.sources, results) if f is not None]
        del results
        own = local_text() if callable(local_text) else local_text
        text = own if own is None or isinstance(own, str) else await own
        local = (self._local_rw, text) if text else None
        if self._merging is None:
            self._merging = asyncio.Lock()
        lock = self._merging
        # A merge of huge bodies on a slow host may outlast the deadline: the scrape then
        # gets our own text and the health series in time (merged sources marked down), and
        # the merge ends in the background, holding the lock (it owns the rewriters; the
        # series it validates make the next merges of the same sources faster).
        names = [name for name, _, _ in parts]
        try:
            await asyncio.wait_for(self._merging.acquire(),
                                   max(0.05, deadline - loop.time() - 0.1))
        except asyncio.TimeoutError:
            return self._late(text, names)
        job = self._worker.submit(_merge_sources, local, parts, list(self.health.sources),
                                  self.defer_gc)
        merging = asyncio.wrap_future(job)
        try:
            state = await asyncio.wait_for(asyncio.shield(merging),
                                           max(0.05, deadline - loop.time() - 0.1))
        except asyncio.TimeoutError:
            job.add_done_callback(_close_abandoned)
            merging.add_done_callback(lambda _f: lock.release())
            merging.add_done_callback(consume_outcome)
            return self._late(text, names)
        except BaseException:
            job.add_done_callback(_close_abandoned)
            self._merging.release()
            raise
        finishing: Optional[Future] = None
        try:
            del parts, local
            for s in self.sources:
                self.health.sources[s.name].samples = state.samples.get(s.name, 0)
                self.health.dropped(s.name, state.dropped.get(s.name, {}))
            if state.dropped.get(""):
                log.warning("own metrics text had invalid lines: %s", state.dropped[""])
            finishing = self._worker.submit(_finish, state, self._health_rw,
                                            self.health.render(), self.defer_gc,
                                            self.malloc_trim)
            # _finish() closes the state, unless it is cancelled before it starts
            finishing.add_done_callback(lambda f: state.close() if f.cancelled() else None)
            return await asyncio.wrap_future(finishing)
        finally:
            if finishing is None:
                state.close()
            self._merging.release()

    def _late(self, local_text: Optional[str], names: Sequence[str]) -> str:
        """The answer when merging missed the deadline: own text and health only.

        Both are written by `exposition` and share no family, so they are joined as they
        are, on the loop (microseconds): no worker thread, which the late merge may be
        starving of the GIL, stands between the scrape and its deadline.
        """
        for name in names:
            h = self.health.sources[name]
            h.up, h.samples = 0, 0
            self.health.error(name, reasons.TIMEOUT)
            self._causes.note("exporter " + name, "%s: merging its output missed the scrape "
                              "deadline (lower max_bytes or drop families)" % reasons.TIMEOUT)
        return (local_text or "") + self.health.render()

    async def _fetch(self, source: Source, budget: float,
                     params: Optional[Params]) -> Optional[Fetched]:
        """One source's bodies, or None; concurrent runs share one fetch per params."""
        key = (source.name, _freeze(params))
        shared = self._fetching.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self._fetch_once(source, budget, params))
            shared.add_done_callback(consume_outcome)
            self._fetching[key] = shared
            shared.add_done_callback(lambda _t: self._fetching.pop(key, None))
        return await asyncio.shield(shared)

    async def _fetch_once(self, source: Source, budget: float,
                          params: Optional[Params]) -> Optional[Fetched]:
        h = self.health.sources[source.name]
        started = time.monotonic()
        fetched: Optional[Fetched] = None
        cause = ""
        # The source gets a little less than the budget, so it ends on its own terms
        # (its own timeout) and the wait_for below is only a safety net.
        attempt = asyncio.ensure_future(source.fetch(params, max(0.05, budget - 0.05)))
        attempt.add_done_callback(consume_outcome)
        try:
            fetched = await asyncio.wait_for(asyncio.shield(attempt), budget)
        except FetchError as e:
            self.health.error(source.name, e.reason)
            cause = str(e)
        except asyncio.TimeoutError:
            self.health.error(source.name, reasons.TIMEOUT)
            cause = "%s: no answer within the scrape's %.3g s" % (reasons.TIMEOUT, budget)
        except Exception as e:  # a bug in one source must cost only that source
            self.health.error(source.name, reasons.ERROR)
            cause = "%s: %s: %s" % (reasons.ERROR, type(e).__name__, e)
            self._causes.note("exporter " + source.name, cause, exc_info=True)
        self._causes.note("exporter " + source.name, cause, recovered="answering again")
        h.duration = time.monotonic() - started
        # A file source whose every matching file failed has served nothing: down.
        h.up = 1 if fetched is not None and (fetched.bodies or not fetched.file_errors) else 0
        h.file_errors = fetched.file_errors if fetched is not None else {}
        if h.up:
            h.last_success = time.time()
        if fetched is not None:
            h.files = fetched.files
            h.cache_age = fetched.cache_age
            for reason in fetched.errors:
                self.health.error(source.name, reason)
        return fetched

    async def close(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        for s in self.sources:
            await s.close()
        # A late merge still running ends first (off the loop), as it would have to before
        # the loop's own executor shut down: its result must not reach a closed loop.
        await asyncio.get_running_loop().run_in_executor(None, self._worker.shutdown)
