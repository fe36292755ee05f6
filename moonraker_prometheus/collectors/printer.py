"""Every Klipper printer object, served from the state Klippy's subscription pushes.

Klippy answers object queries only on its 250 ms status timer, so a scrape never asks
Klippy anything: at every `klippy_ready` the collector discovers the objects, subscribes
to exactly the fields the catalogue needs, and keeps the pushed state. Rendering is
cached until the next push changes one of those objects.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from ..catalogue.printer import BINDINGS
from ..catalogue.spec import Field, Metric, ObjectBinding
from ..exposition import escape_label_value, format_value, header
from .base import Collector

if TYPE_CHECKING:
    from moonraker.server import Server

# (object name, rendered instance label pair or "", field)
Entry = Tuple[str, str, Field]
Plan = List[Tuple[Metric, List[Entry]]]
Subscription = Dict[str, Optional[List[str]]]


def build_plan(object_names: Sequence[str],
               bindings: Sequence[ObjectBinding]) -> Tuple[Plan, Subscription]:
    """Match Klippy's objects against the catalogue.

    Returns, per family in declaration order, the (object, field) pairs that feed it, and
    the subscription that asks Klippy for exactly those fields.
    """
    by_name: Dict[str, Tuple[Metric, List[Entry]]] = {}
    subscription: Subscription = {}
    for binding in bindings:
        kind = binding.kind
        matched = [o for o in object_names if kind.matches(o)]
        for obj in matched:
            instance = ""
            if kind.label:
                instance = f'{kind.label}="{escape_label_value(kind.instance(obj))}"'
            for fld in binding.fields:
                metric, entries = by_name.setdefault(fld.metric.name, (fld.metric, []))
                entries.append((obj, instance, fld))
                _want(subscription, obj, fld.top_level)
    return list(by_name.values()), subscription


def _want(subscription: Subscription, obj: str, top_level: Optional[str]) -> None:
    if top_level is None:
        subscription[obj] = None
        return
    fields = subscription.setdefault(obj, [])
    if fields is not None and top_level not in fields:
        fields.append(top_level)


def render_plan(plan: Plan, status: Dict[str, Dict[str, Any]]) -> str:
    out: List[str] = []
    for metric, entries in plan:
        lines: List[str] = []
        extra_keys = metric.labels[1:] if entries and entries[0][1] else metric.labels
        for obj, instance, fld in entries:
            obj_status = status.get(obj)
            if obj_status is None:
                continue
            for extra, value in fld.samples(obj_status):
                pairs = [instance] if instance else []
                pairs.extend(
                    f'{k}="{escape_label_value(str(v))}"' for k, v in zip(extra_keys, extra)
                )
                labels = "{" + ",".join(pairs) + "}" if pairs else ""
                lines.append(f"{metric.name}{labels} {format_value(value)}\n")
        if lines:
            out.append(header(metric))
            out.extend(lines)
    return "".join(out)


class PrinterCollector(Collector):
    """Klipper printer objects, from the subscription state; absent unless Klippy is ready."""

    name = "printer"
    metrics = tuple({m.name: m for b in BINDINGS for m in b.metrics()}.values())

    def __init__(self, server: "Server", bindings: Sequence[ObjectBinding] = BINDINGS) -> None:
        super().__init__(server)
        self.bindings = bindings
        self._plan: Plan = []
        self._status: Dict[str, Dict[str, Any]] = {}
        self._cache: Optional[str] = None
        self._callback_registered = False
        server.register_event_handler("server:klippy_ready", self._on_klippy_ready)
        server.register_event_handler("server:klippy_disconnect", self._on_klippy_disconnect)

    async def _on_klippy_ready(self) -> None:
        apis = self.server.lookup_component("klippy_apis")
        objects = await apis.get_object_list(default=None)
        if objects is None:
            logging.warning("prometheus: Klippy did not list its objects; printer metrics off")
            return
        plan, subscription = build_plan(objects, self.bindings)
        callback = None if self._callback_registered else self._on_status_update
        status = await apis.subscribe_objects(subscription, callback, default=None)
        if status is None:
            logging.warning("prometheus: subscription to Klippy objects failed")
            return
        self._callback_registered = True
        self._plan = plan
        self._status = {obj: dict(status.get(obj) or {}) for obj in subscription}
        self._cache = None
        logging.info(
            f"prometheus: {len(subscription)} Klippy objects feed {len(plan)} families")

    def _on_klippy_disconnect(self) -> None:
        # klippy_apis drops subscription callbacks on disconnect; we re-subscribe at ready.
        self._callback_registered = False
        self._plan = []
        self._status = {}
        self._cache = None

    def _on_status_update(self, status: Dict[str, Any], _eventtime: float) -> None:
        changed = False
        for obj, fields in status.items():
            current = self._status.get(obj)
            if current is not None and isinstance(fields, dict):
                current.update(fields)
                changed = True
        if changed:
            self._cache = None

    def render(self) -> str:
        if not self.server.lookup_component("klippy_connection").is_ready():
            return ""  # no stale printer values while Klippy is down, shut down or in error
        if self._cache is None:
            self._cache = render_plan(self._plan, self._status)
        return self._cache
