"""A bound on a fixture's teardown: a server that does not stop fails its test, naming what
every asyncio task was waiting on, instead of holding the whole run until CI's budget runs out."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable

import pytest

# The server's own stop is bounded by shutdown_grace (20 s) plus aiohttp's wait for requests in
# flight; three times that is a hang, not a slow machine.
STOP_WITHIN_SECONDS = 90.0


def task_stacks() -> str:
    """Where every task of the running loop is waiting, one stack each."""
    out = io.StringIO()
    for task in asyncio.all_tasks():
        out.write(f"--- {task.get_name()}: {task.get_coro()!r}\n")
        task.print_stack(file=out)
    return out.getvalue()


async def stop_within(
    stopping: Awaitable[None], what: str, seconds: float = STOP_WITHIN_SECONDS
) -> None:
    """Await `stopping`; past `seconds`, fail with the tasks' stacks (taken before the stop is
    cancelled, so that they show where it hung)."""
    task = asyncio.ensure_future(stopping)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if done:
        task.result()
        return
    stacks = task_stacks()
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    pytest.fail(f"{what} did not stop within {seconds:.0f}s; the tasks were at:\n{stacks}")
