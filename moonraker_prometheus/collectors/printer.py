"""Every Klipper printer object, served from the state Klippy's subscription pushes.

Klippy answers object queries only on its 250 ms status timer, so a scrape never asks
Klippy anything: at every `klippy_ready` the collector discovers the objects, subscribes
to exactly the fields the catalogue needs, and keeps the pushed state.

Rendering is cached at three levels: the text of each (object, family) entry, dropped only
when a push changes one of the fields that entry reads; each family's block (its header
and its entries' lines), rebuilt when one of its entries is; and the whole body, joined
again from the blocks when any block is. Moonraker hands every subscriber the pushes of
*all* host subscriptions, so pushes for objects or fields outside the plan change nothing.
"""
from __future__ import annotations

import asyncio
import logging
import time
from itertools import count
from typing import (TYPE_CHECKING, Any, Dict, FrozenSet, List, Optional, Sequence, Set,
                    Tuple, Union)

from ..catalogue.build import family_metrics
from ..catalogue.printer import BINDINGS
from ..catalogue.spec import Field, Metric, ObjectBinding
from ..exposition import Family, header
from .base import Collector, RenderCache
from .host import Host

if TYPE_CHECKING:
    from moonraker.server import Server

Subscription = Dict[str, Optional[List[str]]]


class Entry:
    """One (object, family) pair: the samples the object gives the family."""

    __slots__ = ("obj", "metric", "instance", "field", "needs")

    def __init__(self, obj: str, metric: Metric, instance: Tuple[str, ...], fld: Field
                 ) -> None:
        self.obj = obj
        self.metric = metric
        self.instance = instance  # the instance label value, or () for unlabelled kinds
        self.field = fld
        levels = fld.top_levels
        # fields whose change re-renders the entry (its own and its context objects')
        self.needs: Optional[FrozenSet[str]] = None if levels is None else frozenset(
            (*levels, *(name for _, name in fld.context)))

    def render(self, status: Optional[Dict[str, Any]]) -> str:
        """The entry's sample lines (no header); ValueError when the reader yields a
        different number of label values than the family declares."""
        if status is None:
            return ""
        family = Family(self.metric)
        instance = self.instance
        for extra, value in self.field.samples(status):
            family.add(value, *instance, *extra)
        return family.render_samples()


def sensor_owners(object_names: Sequence[str], config: Any,
                  bindings: Sequence[ObjectBinding]) -> Dict[str, str]:
    """Label values of sensor-driver objects: the label of the section that owns each.

    `config` is configfile.config (section -> option -> raw text). Klipper names a driver
    object after the last word of its section (`[temperature_sensor Raspberry Pi]` with
    `sensor_type: temperature_host` creates `temperature_host Pi`); the owner is the one
    section with that last word and a sensor_type of the driver's kind (or, failing that,
    the one section with that last word and any sensor_type). Returns {object: label
    value} for every driver whose owner is found; others keep their own name.
    """
    if not isinstance(config, dict):
        return {}
    kinds = [b.kind for b in bindings]
    typed: Dict[str, List[Tuple[str, str]]] = {}  # last word -> [(section, sensor_type)]
    for section, options in config.items():
        if isinstance(options, dict) and isinstance(options.get("sensor_type"), str):
            typed.setdefault(section.split()[-1], []).append(
                (section, options["sensor_type"].strip().lower()))
    owners: Dict[str, str] = {}
    for obj in object_names:
        kind = next((k for k in kinds if k.sensor_types and k.matches(obj)), None)
        if kind is None:
            continue
        candidates = typed.get(kind.instance(obj), [])
        exact = [section for section, stype in candidates if stype in kind.sensor_types]
        owner = exact if exact else [section for section, _ in candidates]
        if len(owner) != 1:
            continue
        section = owner[0]
        owner_kind = next((k for k in kinds if k.label and not k.sensor_types
                           and k.matches(section)), None)
        if owner_kind is not None:
            owners[obj] = owner_kind.instance(section)
        elif " " in section:
            owners[obj] = section.split(" ", 1)[1]
        else:
            owners[obj] = section
    return owners


class Plan:
    """Which objects feed which families, and what to ask Klippy for."""

    def __init__(self, object_names: Sequence[str], bindings: Sequence[ObjectBinding],
                 instances: Optional[Dict[str, str]] = None) -> None:
        """`instances` overrides the label value of some objects (see sensor_owners)."""
        self.entries: List[Entry] = []
        self.families: List[Tuple[str, List[int]]] = []  # (header, entry indexes)
        self.family_of: List[int] = []  # entry index -> index in families
        self.subscription: Subscription = {}
        self.by_object: Dict[str, List[int]] = {}
        family_index: Dict[str, int] = {}
        metrics = {m.name: m for m in family_metrics(bindings)}
        for binding in bindings:
            kind = binding.kind
            for obj in object_names:
                if not kind.matches(obj):
                    continue
                instance: Tuple[str, ...] = ()
                if kind.label:
                    instance = ((instances or {}).get(obj) or kind.instance(obj),)
                for fld in binding.fields:
                    name = fld.metric.name
                    if name not in family_index:
                        family_index[name] = len(self.families)
                        self.families.append((header(metrics[name]), []))
                    index = len(self.entries)
                    self.entries.append(Entry(obj, fld.metric, instance, fld))
                    self.family_of.append(family_index[name])
                    self.families[family_index[name]][1].append(index)
                    self.by_object.setdefault(obj, []).append(index)
                    self._want(obj, fld.top_levels)
                    for other, other_field in fld.context:
                        if other in object_names and other != obj:
                            self.by_object.setdefault(other, []).append(index)
                            self._want(other, (other_field,))

    def _want(self, obj: str, levels: Optional[Tuple[str, ...]]) -> None:
        if levels is None:
            self.subscription[obj] = None
            return
        fields = self.subscription.setdefault(obj, [])
        if fields is not None:
            for level in levels:
                if level not in fields:
                    fields.append(level)


class PrinterState:
    """The subscribed state and the rendered text cached per entry."""

    def __init__(self, plan: Plan, status: Dict[str, Any]) -> None:
        self.plan = plan
        self.wanted: Dict[str, Optional[Set[str]]] = {
            obj: (None if fields is None else set(fields))
            for obj, fields in plan.subscription.items()}
        self.status: Dict[str, Dict[str, Any]] = {}
        for obj in plan.subscription:
            self.status[obj] = {}
            self._merge(obj, status.get(obj))
        self.texts: List[Optional[str]] = [None] * len(plan.entries)
        self.blocks: List[str] = [""] * len(plan.families)
        self.stale_blocks: Set[int] = set(range(len(plan.families)))
        self.body = RenderCache()
        # Moonraker's cached status dict per object, as last merged (held, so compared by
        # identity without any risk of id reuse)
        self.seen: Dict[str, Any] = {}

    def _merge(self, obj: str, fields: Any) -> Optional[Set[str]]:
        """Merge pushed fields of `obj`; return the wanted ones that changed value."""
        if not isinstance(fields, dict):
            return None
        current = self.status[obj]
        wanted = self.wanted[obj]
        changed: Set[str] = set()
        for key, value in fields.items():
            if wanted is not None and key not in wanted:
                continue
            if key in current and current[key] == value:
                continue
            current[key] = value
            changed.add(key)
        return changed

    def update(self, pushed: Dict[str, Any]) -> bool:
        """Apply a push; True when anything this plan renders changed."""
        dirty = False
        for obj, fields in pushed.items():
            if obj not in self.status:
                continue  # another subscriber's object
            changed = self._merge(obj, fields)
            if not changed:
                continue
            for index in self.plan.by_object[obj]:
                needs = self.plan.entries[index].needs
                if needs is None or not needs.isdisjoint(changed):
                    self.texts[index] = None
                    self.stale_blocks.add(self.plan.family_of[index])
                    dirty = True
        if dirty:
            self.body.invalidate()
        return dirty

    def sync(self, cache: Dict[str, Dict[str, Any]]) -> None:
        """Catch up with Moonraker's subscription cache where it replaced an object's dict.

        When any component subscribes, Moonraker answers it with a fresh status, stores it
        as a *new* dict in its cache and pushes the differences to every subscriber except
        the host transport that all components share: a change made in that window reaches
        the cache but no callback. Pushes update the cached dicts in place, so a dict we
        have not seen yet is exactly such a replacement (a few identity checks per scrape).
        """
        seen = self.seen
        for obj in self.status:
            current = cache.get(obj)
            if current is not None and seen.get(obj) is not current:
                seen[obj] = current
                self.update({obj: current})

    def _status_for(self, entry: Entry) -> Optional[Dict[str, Any]]:
        """The status an entry reads: its object's, plus its context fields."""
        own = self.status.get(entry.obj)
        context = entry.field.context
        if not context or own is None:
            return own
        merged = dict(own)
        for other, name in context:
            other_status = self.status.get(other)
            if other_status is not None and name in other_status:
                merged[f"{other}.{name}"] = other_status[name]
        return merged

    def stale(self) -> bool:
        """Whether a push changed entries since the last render."""
        return bool(self.stale_blocks)

    def render_ahead(self, deadline_ns: int) -> None:
        """Rebuilds stale family blocks ahead of render(), one at a time, until
        `time.perf_counter_ns()` passes `deadline_ns` (at least one block). A block whose
        entry raises stays stale."""
        stale = self.stale_blocks
        while stale:
            f = next(iter(stale))
            self._render_block(f)
            stale.discard(f)
            if time.perf_counter_ns() >= deadline_ns:
                return

    def render(self) -> str:
        """The plan's families; only entries whose fields changed are re-rendered."""
        return self.body.text(None, self._render)

    def _render(self) -> str:
        for f in self.stale_blocks:
            self._render_block(f)
        self.stale_blocks.clear()
        return "".join(self.blocks)

    def _render_block(self, f: int) -> None:
        """Family `f`'s block: its header and its entries' lines (re-rendered where a push
        dropped them), or "" when no entry has a sample."""
        texts = self.texts
        entries = self.plan.entries
        head, indexes = self.plan.families[f]
        parts = []
        for i in indexes:
            text = texts[i]
            if text is None:
                entry = entries[i]
                text = texts[i] = entry.render(self._status_for(entry))
            if text:
                parts.append(text)
        self.blocks[f] = head + "".join(parts) if parts else ""


class PrinterCollector(Collector):
    """Klipper printer objects, from the subscription state; absent unless Klippy is ready."""

    name = "printer"
    metrics = family_metrics(BINDINGS)
    # A push re-renders its objects' family blocks: ~0.4 ms on a live printer, all of them
    # on the first scrape after Klippy is ready (stale(), render_ahead()).
    renders_ahead = True

    def __init__(self, server: Union["Server", Host],
                 bindings: Sequence[ObjectBinding] = BINDINGS) -> None:
        super().__init__(server)
        self.bindings = bindings
        self._state: Optional[PrinterState] = None
        self._callback_registered = False
        self._generation = 0
        self._retrying: Optional["asyncio.Task[None]"] = None
        self.host.register_event_handler("server:klippy_ready", self._on_klippy_ready)
        self.host.register_event_handler("server:klippy_disconnect",
                                         self._on_klippy_disconnect)

    # Waits before trying a failed listing or subscription again (Klippy busy, or gone and
    # back): while Klippy stays ready the collector keeps trying, so the printer series do
    # not stay away (and Klippy's state "startup") until its next restart.
    RETRY_SECONDS: Tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)

    async def _on_klippy_ready(self) -> None:
        # Moonraker awaits every klippy_ready handler before it finishes connecting (and
        # before it reports a shutdown): one attempt here, the retries in a task of their own.
        self._stop_retrying()
        generation = self._generation
        failure = await self._subscribe(generation)
        if failure is not None and generation == self._generation:
            self._retrying = self.host.get_event_loop().create_task(
                self._retry(generation, failure))

    async def _retry(self, generation: int, failure: Optional[str]) -> None:
        """Tries _subscribe() again after each failure until it succeeds, Klippy is no
        longer ready or it went away (a disconnect cancels this task; one during an attempt
        changes `generation`); a warning per new cause, the same cause again only at debug
        level."""
        last: Optional[str] = None
        for attempt in count(1):
            delay = self.RETRY_SECONDS[min(attempt - 1, len(self.RETRY_SECONDS) - 1)]
            logging.log(logging.DEBUG if failure == last else logging.WARNING,
                        f"prometheus: {failure} ({self.name}); trying again in {delay:g} s")
            last = failure
            await asyncio.sleep(delay)  # a disconnect cancels it: Klippy is still here
            if not self.host.klippy_ready():
                return
            failure = await self._subscribe(generation)
            if generation != self._generation:
                return
            if failure is None:
                logging.info(f"prometheus: {self.name} subscribed at attempt {attempt + 1}")
                return

    async def _subscribe(self, generation: int) -> Optional[str]:
        """Lists Klippy's objects, subscribes to the plan's fields and keeps the state it
        answers (`objects/list`, `configfile.config` when a sensor needs its section's
        driver, `objects/subscribe`, through the host: Moonraker's klippy_apis in process);
        None when done or when Klippy went away meanwhile (`generation` changed), else
        what failed."""
        host = self.host
        objects = await host.get_object_list()
        if generation != self._generation:
            return None
        if objects is None:
            return "Klippy did not list its objects"
        instances: Dict[str, str] = {}
        if any(b.kind.sensor_types and b.kind.matches(o) for b in self.bindings
               for o in objects):
            # once per ready, never per scrape: which section owns each sensor driver
            result = await host.query_objects({"configfile": ["config"]})
            if generation != self._generation:
                return None
            configfile = result.get("configfile") if isinstance(result, dict) else None
            config = configfile.get("config") if isinstance(configfile, dict) else None
            instances = sensor_owners(objects, config, self.bindings)
        plan = Plan(objects, self.bindings, instances)
        if not plan.subscription:
            self._state = PrinterState(plan, {})
            return None
        callback = None if self._callback_registered else self._on_status_update
        status = await host.subscribe_objects(plan.subscription, callback)
        if generation != self._generation:
            return None
        if status is None:
            return "the subscription to Klippy's objects failed"
        if callback is not None:
            self._callback_registered = True
        self._state = PrinterState(plan, status)
        logging.info(
            f"prometheus: {len(plan.subscription)} Klippy objects feed "
            f"{len(plan.families)} {self.name} families")
        return None

    def _stop_retrying(self) -> None:
        if self._retrying is not None:
            self._retrying.cancel()
            self._retrying = None

    async def close(self) -> None:
        self._stop_retrying()

    def subscribed(self) -> bool:
        """Whether the printer objects' state is in hand (after each Klippy ready)."""
        return self._state is not None

    def _on_klippy_disconnect(self) -> None:
        # klippy_apis drops subscription callbacks on disconnect; we re-subscribe at ready.
        self._generation += 1
        self._stop_retrying()
        self._callback_registered = False
        self._state = None

    def _on_status_update(self, status: Dict[str, Any], _eventtime: float) -> None:
        state = self._state
        if state is not None:
            state.update(status)

    def stale(self) -> bool:
        state = self._state
        return state is not None and state.stale()

    def render_ahead(self, deadline_ns: int) -> None:
        state = self._state
        if state is not None:
            state.render_ahead(deadline_ns)

    def render(self) -> str:
        if not self.host.klippy_ready():
            return ""  # no stale printer values while Klippy is down, shut down or in error
        state = self._state
        if state is None:
            return ""
        cache = self.host.subscription_cache()
        if cache is not None:
            state.sync(cache)
        return state.render()
