"""Per-channel pacing (a token bucket per channel) on an injected clock: a burst at once, then
the rate; channels apart; posts in arrival order, each holding its channel until it is done;
urgent posts ahead of routine ones waiting (but not ahead of their own incident's)."""

from __future__ import annotations

import asyncio

import pytest

from bot.slack import pacing
from bot.slack.pacing import ChannelPacer, Lane
from tests.support.clocks import FakeTime, HeldTime


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


async def queue_up(
    pacer: ChannelPacer, posted: list[str], name: str, lane: Lane, incident_id: int | None = None
) -> asyncio.Task[None]:
    """Start a post into C0ANNOUNCE and let it reach the pacer (its turn, or the queue)."""

    async def post() -> None:
        async with pacer.turn("C0ANNOUNCE", lane=lane, incident_id=incident_id):
            posted.append(name)

    task = asyncio.create_task(post())
    await asyncio.sleep(0)
    return task


async def test_an_urgent_post_goes_before_the_routine_ones_waiting() -> None:
    # A flood: fifty announcements of new incidents queue up for the announcement channel,
    # then a customer update of another incident. The clock stands still until all are queued.
    held = HeldTime()
    pacer = ChannelPacer(burst=3, rate=1.0, clock=held.clock, sleep=held.sleep)
    posted: list[str] = []
    tasks = [
        await queue_up(pacer, posted, f"announce {n}", Lane.ROUTINE, incident_id=100 + n)
        for n in range(50)
    ]
    # The burst went at once; the fourth holds the turn waiting for the clock; the rest wait.
    assert posted == ["announce 0", "announce 1", "announce 2"]
    assert pacer.waiting("C0ANNOUNCE") == 46
    tasks.append(await queue_up(pacer, posted, "update", Lane.URGENT, incident_id=7))
    held.run()
    await asyncio.gather(*tasks)
    # Only the post that already held the turn went before it.
    assert posted[:5] == ["announce 0", "announce 1", "announce 2", "announce 3", "update"]
    assert posted[5:] == [f"announce {n}" for n in range(4, 50)]


async def test_an_urgent_post_lets_its_own_incidents_waiting_posts_go_first() -> None:
    held = HeldTime()
    pacer = ChannelPacer(burst=1, rate=1.0, clock=held.clock, sleep=held.sleep)
    posted: list[str] = []
    tasks = [
        await queue_up(pacer, posted, f"announce INC-{n}", Lane.ROUTINE, incident_id=n)
        for n in range(1, 6)
    ]
    # INC-4's update: INC-4's announcement (still waiting) goes first, the others after.
    tasks.append(await queue_up(pacer, posted, "update INC-4", Lane.URGENT, incident_id=4))
    tasks.append(await queue_up(pacer, posted, "reminder", Lane.URGENT))
    held.run()
    await asyncio.gather(*tasks)
    assert posted == [
        "announce INC-1",
        "announce INC-2",  # held the turn when the update came
        "announce INC-4",
        "update INC-4",
        "reminder",
        "announce INC-3",
        "announce INC-5",
    ]


async def test_a_post_cancelled_while_it_waits_gives_up_its_place() -> None:
    held = HeldTime()
    pacer = ChannelPacer(burst=1, rate=1.0, clock=held.clock, sleep=held.sleep)
    posted: list[str] = []
    first = await queue_up(pacer, posted, "first", Lane.ROUTINE)
    second = await queue_up(pacer, posted, "second", Lane.ROUTINE)
    third = await queue_up(pacer, posted, "third", Lane.URGENT)
    # "first" posted; "second" holds the turn, waiting for the clock; "third" waits for it.
    assert pacer.waiting("C0ANNOUNCE") == 1
    third.cancel()
    await asyncio.sleep(0)
    assert pacer.waiting("C0ANNOUNCE") == 0
    held.run()
    await asyncio.gather(first, second)
    assert third.cancelled()
    assert posted == ["first", "second"]
    # And the channel is free again afterwards.
    assert await pacer.wait_turn("C0ANNOUNCE") == pytest.approx(1.0)
