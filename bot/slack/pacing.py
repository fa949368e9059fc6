"""Per-channel pacing of posts: Slack takes about one message a second into a channel, with short
bursts, and answers faster posting with 429s. Posts waiting for a channel go in lanes: an urgent
one (a customer update, a reminder, an escalation) never waits behind routine ones (the
announcements of a flood of other incidents)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

POST_BURST = 3
POSTS_PER_SECOND = 1.0
# Channels whose bucket is full again are forgotten once this many are remembered.
REMEMBERED_CHANNELS = 1000
# Slack's Tier 3 methods (conversations.history, conversations.replies): about 50 calls a
# minute per method and workspace, with short bursts allowed.
TIER3_PER_MINUTE = 50
TIER3_BURST = 5
_ROUNDING = 1e-9


class Lane(IntEnum):
    """Which waiting post takes a channel's next turn: the lowest lane first, then the oldest."""

    # What the outbox owes: customer updates, reminders, escalations, alert notes.
    URGENT = 0
    # Everything else: war-room headers, announcements of new incidents.
    ROUTINE = 1


@dataclass
class _Waiter:
    lane: Lane
    incident_id: int | None
    granted: asyncio.Future[None]


@dataclass
class _Bucket:
    tokens: float
    updated: float
    # One post holds the channel's turn at a time, its retries included.
    busy: bool = False
    # Posts waiting for the turn, in arrival order (lanes decide who goes first).
    waiting: list[_Waiter] = field(default_factory=list)
    # Posts holding or waiting for the turn: a bucket in use is never forgotten.
    users: int = 0


class ChannelPacer:
    """A token bucket per channel: `burst` posts at once, then `rate` posts a second; waiting
    posts take turns by lane, and in arrival order within a lane."""

    def __init__(
        self,
        *,
        burst: int = POST_BURST,
        rate: float = POSTS_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self.on_wait = on_wait
        self._buckets: dict[str, _Bucket] = {}

    async def wait_turn(
        self, channel_id: str, *, lane: Lane = Lane.ROUTINE, incident_id: int | None = None
    ) -> float:
        """Wait until `channel_id` may take another post; the seconds waited."""
        async with self.turn(channel_id, lane=lane, incident_id=incident_id) as waited:
            return waited

    @asynccontextmanager
    async def turn(
        self, channel_id: str, *, lane: Lane = Lane.ROUTINE, incident_id: int | None = None
    ) -> AsyncIterator[float]:
        """Hold `channel_id`'s turn for one post, its retries included; yields the seconds
        waited for the rate. Within a lane, posts land in the order they were asked for, even
        when one of them waits out a 429; an urgent post goes before routine ones waiting,
        except those of its own incident (its announcement comes before its update)."""
        bucket = self._bucket(channel_id)
        waited = 0.0
        bucket.users += 1
        try:
            await self._acquire(bucket, lane, incident_id)
            try:
                while True:
                    self._refill(bucket)
                    # Within rounding of a whole token: with a rate like 50/60 a second, the
                    # refill can stop a hair short of 1.0, and the wait for it round to nothing.
                    if bucket.tokens >= 1 - _ROUNDING:
                        bucket.tokens -= 1
                        break
                    delay = (1 - bucket.tokens) / self.rate
                    await self.sleep(delay)
                    waited += delay
                if self.on_wait is not None:
                    self.on_wait(waited)
                yield waited
            finally:
                self._release(bucket)
        finally:
            bucket.users -= 1

    def waiting(self, channel_id: str) -> int:
        """How many posts wait for `channel_id`'s turn now."""
        bucket = self._buckets.get(channel_id)
        return len(bucket.waiting) if bucket else 0

    async def _acquire(self, bucket: _Bucket, lane: Lane, incident_id: int | None) -> None:
        if not bucket.busy and not bucket.waiting:
            bucket.busy = True
            return
        if lane == Lane.URGENT and incident_id is not None:
            # What its own incident has queued already goes first, still in arrival order.
            for waiter in bucket.waiting:
                if waiter.incident_id == incident_id:
                    waiter.lane = Lane.URGENT
        waiter = _Waiter(lane, incident_id, asyncio.get_running_loop().create_future())
        bucket.waiting.append(waiter)
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter in bucket.waiting:
                bucket.waiting.remove(waiter)
            elif waiter.granted.done() and not waiter.granted.cancelled():
                self._release(bucket)  # given the turn as it was cancelled: pass it on
            raise

    def _release(self, bucket: _Bucket) -> None:
        while bucket.waiting:
            ahead = min(range(len(bucket.waiting)), key=lambda i: (bucket.waiting[i].lane, i))
            waiter = bucket.waiting.pop(ahead)
            if not waiter.granted.done():
                waiter.granted.set_result(None)
                return
        bucket.busy = False

    def _refill(self, bucket: _Bucket) -> None:
        now = self.clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now

    def _bucket(self, channel_id: str) -> _Bucket:
        bucket = self._buckets.get(channel_id)
        if bucket is None:
            if len(self._buckets) >= REMEMBERED_CHANNELS:
                self._forget_idle()
            bucket = _Bucket(tokens=float(self.burst), updated=self.clock())
            self._buckets[channel_id] = bucket
        return bucket

    def _forget_idle(self) -> None:
        """Drop channels nobody is waiting on whose bucket has filled up again."""
        for channel_id, bucket in list(self._buckets.items()):
            if bucket.users:
                continue
            self._refill(bucket)
            if bucket.tokens >= self.burst:
                del self._buckets[channel_id]

    @property
    def channels(self) -> int:
        """How many channels' buckets are remembered."""
        return len(self._buckets)


def tier3_pacer(**kwargs: Any) -> ChannelPacer:
    """A pacer for Slack's Tier 3 methods: one bucket per method (the key is its name), about
    50 calls a minute after a burst of a few."""
    return ChannelPacer(burst=TIER3_BURST, rate=TIER3_PER_MINUTE / 60, **kwargs)
