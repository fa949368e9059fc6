"""Waiting on something outside the test's control (another process, the database server):
polled until it holds, failing with what was awaited once `within` seconds have passed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(
    condition: Callable[[], object], within: float, what: str, *, every: float = 0.05
) -> None:
    """Return once `condition()` is true; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(every)
