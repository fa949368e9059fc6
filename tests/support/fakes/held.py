"""The fake Slack Web API, able to keep its answer to a method until the test lets it go: for
tests that need something to happen while Slack has not answered yet. An order of events, not a
stopwatch: nothing here depends on how fast the machine is."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.demo.standin.slack_api import FakeSlack


class Hold:
    """One method's answers, kept back: `arrived` once a call came in, sent on `release()`."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def until_released(self) -> None:
        await self._released.wait()


class HeldSlack(FakeSlack):
    def __init__(self) -> None:
        super().__init__()
        self._holds: dict[str, Hold] = {}
        self._unheld: list[Hold] = []

    def hold(self, method: str) -> Hold:
        """Keep back the answers to `method` (faults and all) until the hold is released."""
        hold = self._holds[method] = Hold()
        return hold

    def unhold(self, method: str) -> None:
        """Answer `method` at once from now on; the calls held so far stay held (until
        `release_all`)."""
        if method in self._holds:
            self._unheld.append(self._holds.pop(method))

    def release_all(self) -> None:
        for hold in [*self._holds.values(), *self._unheld]:
            hold.release()

    async def _handle(self, request: web.Request) -> web.Response:
        hold = self._holds.get(request.match_info["method"])
        if hold is not None:
            await request.read()  # the body is kept for the answer, whenever it goes
            hold.arrived.set()
            await hold.until_released()
        return await super()._handle(request)
