"""The one stand-in Moonraker server for unit tests (no Moonraker process).

`FakeServer(components)` answers what the collectors ask a Moonraker `Server`:
`lookup_component`, `register_event_handler` (kept in `handlers`, one list per event;
`fire()` calls them), `get_event_loop`, `get_app_args`, `get_api_version`, and the
`components`, `failed_components` and `warnings` attributes. `FakeConnection` and
`FakeApis` stand in for `klippy_connection` and `klippy_apis`; `printer_components()`
gives both. `until(condition)` waits on the running event loop until a condition holds.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Dict, List, Optional


class FakeLoop:
    def create_task(self, coro: Any) -> "asyncio.Task[Any]":
        return asyncio.get_event_loop().create_task(coro)

    async def run_in_thread(self, func: Callable[..., Any], *args: Any) -> Any:
        return func(*args)


class FakeServer:
    def __init__(self, components: Dict[str, Any], warnings: Optional[Dict[str, str]] = None,
                 failed: Optional[List[str]] = None, version: Optional[str] = "v0.11.0") -> None:
        self.components = dict(components)
        self.failed_components = failed or []
        self.warnings = warnings if warnings is not None else {}
        self.handlers: Dict[str, List[Callable[..., Any]]] = {}
        self.version = version

    def lookup_component(self, name: str, default: Any = None) -> Any:
        return self.components.get(name, default)

    def register_event_handler(self, event: str, callback: Callable[..., Any]) -> None:
        self.handlers.setdefault(event, []).append(callback)

    def fire(self, event: str, *args: Any) -> List[Any]:
        """Call every handler of `event`; returns what they returned (coroutines too)."""
        return [handler(*args) for handler in self.handlers.get(event, [])]

    def get_event_loop(self) -> FakeLoop:
        return FakeLoop()

    def get_app_args(self) -> Dict[str, Any]:
        return {"software_version": self.version}

    def get_api_version(self) -> Any:
        return (1, 5, 0)


class FakeConnection:
    """klippy_connection: ready or not, and Moonraker's subscription cache."""

    def __init__(self) -> None:
        self.ready = True
        self.cache: Dict[str, Dict[str, Any]] = {}

    def is_ready(self) -> bool:
        return self.ready

    def get_subscription_cache(self) -> Dict[str, Dict[str, Any]]:
        return self.cache


class FakeApis:
    """klippy_apis: an object list and a status; records subscriptions and callbacks."""

    def __init__(self, objects: List[str], status: Dict[str, Any]) -> None:
        self.objects, self.status = objects, status
        self.callbacks: List[Any] = []
        self.subscriptions: List[Dict[str, Any]] = []

    async def get_object_list(self, default=None):
        return list(self.objects)

    async def subscribe_objects(self, objects, callback=None, default=None):
        self.subscriptions.append(dict(objects))
        if callback is not None:
            self.callbacks.append(callback)
        return {k: dict(v) for k, v in self.status.items()}


def printer_components(apis: FakeApis) -> Dict[str, Any]:
    return {"klippy_apis": apis, "klippy_connection": FakeConnection()}


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> None:
    """Returns once `condition()` is true, checking every millisecond on the running loop
    (AssertionError after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.001)
