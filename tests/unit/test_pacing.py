"""Per-channel pacing (a token bucket per channel) on an injected clock: a burst at once, then
the rate; channels apart; posts in arrival order, each holding its channel until it is done."""

from __future__ import annotations

import asyncio

import pytest

from bot.slack import pacing
from bot.slack.pacing import ChannelPacer
from tests.support.clocks import FakeTime


def fake_pacer(fake: FakeTime, *, burst: int = 3, rate: float = 1.0) -> ChannelPacer:
    return ChannelPacer(burst=burst, rate=rate, clock=fake.clock, sleep=fake.sleep)


async def test_a_burst_goes_at_once_then_one_post_a_second() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    waits = [await pacer.wait_turn("C1") for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 1, 1, 1])
    assert fake.now == pytest.approx(1003.0)


async def test_an_idle_channel_gets_its_burst_back_but_no_more() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    for _ in range(3):
        await pacer.wait_turn("C1")
    fake.now += 60  # quiet for a minute: the bucket refills to the burst, not to 60
    waits = [await pacer.wait_turn("C1") for _ in range(4)]
    assert waits == pytest.approx([0, 0, 0, 1])


async def test_channels_are_paced_apart() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    for _ in range(3):
        await pacer.wait_turn("C1")
    assert await pacer.wait_turn("C2") == 0
    assert await pacer.wait_turn("C1") == pytest.approx(1)


async def test_waiting_posts_take_turns_in_the_order_they_came() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake, burst=2, rate=2.0)
    done: list[tuple[int, float]] = []

    async def post(n: int) -> None:
        await pacer.wait_turn("C1")
        done.append((n, fake.now - 1000.0))

    await asyncio.gather(*(post(n) for n in range(6)))
    assert [n for n, _ in done] == list(range(6))
    assert [at for _, at in done] == pytest.approx([0, 0, 0.5, 1.0, 1.5, 2.0])


async def test_a_post_holds_its_channel_until_it_is_done() -> None:
    fake = FakeTime()
    pacer = fake_pacer(fake)
    order: list[str] = []
    slack_answers = asyncio.Event()

    async def held_up() -> None:
        async with pacer.turn("C1"):
            order.append("first asked")
            await slack_answers.wait()  # a 429 being waited out, say
            order.append("first done")

    async def next_post() -> None:
        async with pacer.turn("C1"):
            order.append("second")

    first = asyncio.create_task(held_up())
    await asyncio.sleep(0)
    second = asyncio.create_task(next_post())
    await asyncio.sleep(0)
    assert order == ["first asked"]
    slack_answers.set()
    await asyncio.gather(first, second)
    assert order == ["first asked", "first done", "second"]


async def test_idle_channels_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pacing, "REMEMBERED_CHANNELS", 3)
    fake = FakeTime()
    waited: list[float] = []
    pacer = ChannelPacer(clock=fake.clock, sleep=fake.sleep, on_wait=waited.append)
    for n in range(10):
        await pacer.wait_turn(f"C{n}")
        fake.now += 5
    assert pacer.channels <= 3
    assert waited == [0.0] * 10
