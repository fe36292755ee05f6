"""Waiting in the package's background loops: for tasks to end (wait_ended) and for an
event with a time limit (wait_event), the one way to do each, neither swallowing a
cancellation of the waiter."""
from __future__ import annotations

import asyncio
from typing import Any, Optional


async def wait_ended(*tasks: Optional["asyncio.Future[Any]"]) -> None:
    """Waits until every one of `tasks` (None ones skipped) has ended, however: cancelled
    (by the caller, before), returned or raised, its exception retrieved and not raised.
    A cancellation of the caller while it waits is raised, as for any await (the
    `try: await task` / `except CancelledError: pass` this replaces swallowed it: a
    target closed while its connection was closing reconnected forever)."""
    waited = [t for t in tasks if t is not None]
    if not waited:
        return
    await asyncio.wait(waited)
    for task in waited:
        if not task.cancelled():
            task.exception()


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Waits until `event` is set or `timeout` seconds have passed: whether it is set.
    A cancellation of the caller is raised, as for any await: asyncio.wait_for (before
    Python 3.12) swallows one that comes in the loop turn the event is set, and a
    background loop cancelled so went on forever (its close() waiting for it)."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait([waiter], timeout=timeout)
    finally:
        waiter.cancel()
    return event.is_set()
