"""Work that runs after Slack has its ack: tracked so that shutdown and tests can wait for it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

OnError = Callable[[Exception], Awaitable[None]]


# A cancellation can be lost inside a task: Python 3.11's `asyncio.wait_for` drops one that
# arrives just as its inner call finishes, and the task goes on (an election loop did, and held
# its server's stop forever). The task is asked again at this interval until it ends.
RECANCEL_EVERY_S = 1.0


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait for it to end, cancelling it again while it goes on; raises what
    it failed with. A cancellation of the caller that arrives while it waits is passed on (to
    the task too), never swallowed: a loop that swallowed its own would never stop. (One the
    caller is already handling, say in a `finally` on its way out, is not raised again.)"""
    while not task.done():
        task.cancel()
        try:
            await asyncio.wait({task}, timeout=RECANCEL_EVERY_S)
        except asyncio.CancelledError:
            task.cancel()
            raise
    if not task.cancelled():
        task.result()


class BackgroundTasks:
    """Work that runs after Slack has its answer; each failure is logged, and `join` awaits all."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, work: Coroutine[Any, Any, None], *, on_error: OnError | None = None) -> None:
        """Run `work` soon; a failure goes to `on_error` (then the log), never into the void."""

        async def _guarded() -> None:
            try:
                await work
            except Exception as exc:
                log.exception("background work failed")
                if on_error is not None:
                    try:
                        await on_error(exc)
                    except Exception:
                        log.exception("reporting a background failure failed too")

        task = asyncio.get_running_loop().create_task(_guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """How many spawned tasks have not finished yet."""
        return len(self._tasks)

    async def join(self) -> None:
        """Wait until no background work is left, including work spawned while waiting."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def cancel(self) -> None:
        """Cancel the background work left (shutdown's bound has passed) and wait for it to end."""
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class InFlight:
    """Requests being handled now, so that shutdown can wait for their acks (Socket Mode: the
    socket must stay open until every listener under way has answered)."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def __enter__(self) -> None:
        self._count += 1
        self._idle.clear()

    def __exit__(self, *_exc: object) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def idle(self) -> None:
        """Wait until nothing is in flight (the caller bounds the wait)."""
        await self._idle.wait()
