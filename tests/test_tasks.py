"""Ending background tasks (moonraker_prometheus.tasks): a cancellation is never swallowed."""
from __future__ import annotations

import asyncio

import pytest

from moonraker_prometheus.tasks import wait_ended, wait_event

pytestmark = pytest.mark.unit


def test_a_loop_cancelled_in_the_turn_its_event_is_set_ends():
    """A background loop waiting on an event is cancelled in the very loop turn the event
    is set (a target closed as its connection closes): it ends, where asyncio.wait_for
    before Python 3.12 returns the event's result and the loop goes on forever."""
    async def run() -> bool:
        event = asyncio.Event()
        rounds = []

        async def loop() -> None:
            while True:
                rounds.append(await wait_event(event, 10.0))
                event.clear()

        task = asyncio.get_running_loop().create_task(loop())
        await asyncio.sleep(0.01)
        event.set()
        task.cancel()
        await asyncio.wait_for(wait_ended(task), 2.0)
        return task.cancelled() and rounds == []

    assert asyncio.run(run())


def test_wait_event_says_whether_the_event_was_set_in_time():
    async def run() -> list:
        event = asyncio.Event()
        late = await wait_event(event, 0.01)
        asyncio.get_running_loop().call_later(0.01, event.set)
        return [late, await wait_event(event, 2.0)]

    assert asyncio.run(run()) == [False, True]


def test_a_caller_cancelled_while_it_waits_for_tasks_to_end_is_cancelled():
    """The caller of wait_ended is cancelled while a task it waits for is still ending:
    the caller ends cancelled (an `await task` inside `except CancelledError: pass`
    would return normally, and the caller go on), and the task is left to end."""
    async def run() -> list:
        ending = asyncio.get_running_loop().create_task(asyncio.sleep(0.2))
        caller = asyncio.get_running_loop().create_task(wait_ended(ending))
        await asyncio.sleep(0.01)
        caller.cancel()
        await asyncio.wait([caller])
        state = [caller.cancelled(), ending.done()]
        await ending
        return state

    assert asyncio.run(run()) == [True, False]


def test_wait_ended_retrieves_what_the_tasks_raised_and_skips_none():
    async def run() -> None:
        async def fails() -> None:
            raise ValueError("x")

        task = asyncio.get_running_loop().create_task(fails())
        await wait_ended(None, task, None)
        assert isinstance(task.exception(), ValueError)
        await wait_ended()

    asyncio.run(run())
