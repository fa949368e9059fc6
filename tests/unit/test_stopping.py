"""The bound on a server's teardown (tests/support/stopping.py): a stop that hangs fails its
test, naming where it waits; a stop that ends is awaited as it is."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.stopping import stop_within


async def test_a_stop_that_hangs_fails_naming_where_it_waits() -> None:
    async def waits_for_ever() -> None:
        await asyncio.Event().wait()

    with pytest.raises(pytest.fail.Exception) as failed:
        await stop_within(waits_for_ever(), "the stuck server", seconds=0.05)
    assert "the stuck server did not stop within 0s" in str(failed.value)
    assert "waits_for_ever" in str(failed.value)


async def test_a_stop_that_ends_is_awaited_and_its_error_raised() -> None:
    stopped: list[str] = []

    async def stops() -> None:
        stopped.append("yes")

    async def breaks() -> None:
        raise RuntimeError("closing failed")

    await stop_within(stops(), "a server")
    assert stopped == ["yes"]
    with pytest.raises(RuntimeError, match="closing failed"):
        await stop_within(breaks(), "a server")
