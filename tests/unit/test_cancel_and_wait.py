"""cancel_and_wait: the task it cancels ends; a cancellation of the caller is never swallowed
(a server's election loop that swallowed its own kept its stop waiting forever)."""

from __future__ import annotations

import asyncio

import pytest

from bot.tasks import cancel_and_wait


async def test_it_cancels_the_task_and_returns() -> None:
    task = asyncio.create_task(asyncio.Event().wait())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_task_that_swallowed_its_cancellation_is_cancelled_again() -> None:
    """As Python 3.11's wait_for can: the cancellation is lost and the loop goes on."""
    swallowed = asyncio.Event()

    async def loop_that_loses_one_cancellation() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()
        await asyncio.Event().wait()  # and goes on with its work

    task = asyncio.create_task(loop_that_loses_one_cancellation())
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # a hang here is caught by pytest-timeout, not a clock
    assert swallowed.is_set() and task.cancelled()


async def test_what_the_task_failed_with_is_raised() -> None:
    async def fails_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_when_cancelled())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="cleanup failed"):
        await cancel_and_wait(task)


async def test_a_cancelled_caller_is_cancelled_even_while_the_task_takes_its_time() -> None:
    finish = asyncio.Event()
    waiting = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await finish.wait()

    async def loop_that_stops_its_helper_then_sleeps() -> None:
        helper = asyncio.create_task(slow_to_stop())
        await asyncio.sleep(0)
        waiting.set()
        await cancel_and_wait(helper)
        # Reached only if the caller's own cancellation was swallowed.
        await asyncio.Event().wait()

    caller = asyncio.create_task(loop_that_stops_its_helper_then_sleeps())
    await waiting.wait()
    await asyncio.sleep(0)
    caller.cancel()
    finish.set()
    done, _ = await asyncio.wait({caller}, timeout=30)
    assert caller in done and caller.cancelled()


async def test_a_caller_already_on_its_way_out_finishes_its_cleanup() -> None:
    cleaned: list[str] = []

    async def server_with_cleanup() -> None:
        helper = asyncio.create_task(asyncio.Event().wait())
        try:
            await asyncio.Event().wait()
        finally:
            # As aiohttp's run_app cleans up in its cancelled main task: the rest still runs.
            await cancel_and_wait(helper)
            cleaned.append("after the helper")

    server = asyncio.create_task(server_with_cleanup())
    await asyncio.sleep(0)
    server.cancel()
    done, _ = await asyncio.wait({server}, timeout=30)
    assert server in done and server.cancelled()
    assert cleaned == ["after the helper"]
