"""Clocks a test moves by hand: the one thing faked."""

from __future__ import annotations

import asyncio


class FakeTime:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class HeldTime(FakeTime):
    """A FakeTime that stands still until the test lets it run: whoever sleeps on it waits
    for `run()`. What happened before then happened without the clock moving at all."""

    def __init__(self) -> None:
        super().__init__()
        self._running = asyncio.Event()

    def run(self) -> None:
        self._running.set()

    async def sleep(self, seconds: float) -> None:
        await self._running.wait()
        await super().sleep(seconds)
