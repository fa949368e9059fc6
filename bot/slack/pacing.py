"""Per-channel pacing of posts: Slack takes about one message a second into a channel, with short
bursts, and answers faster posting with 429s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

POST_BURST = 3
POSTS_PER_SECOND = 1.0
# Channels whose bucket is full again are forgotten once this many are remembered.
REMEMBERED_CHANNELS = 1000


@dataclass
class _Bucket:
    tokens: float
    updated: float
    # Posts into one channel take turns in arrival order, so they land in the order asked.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Posts holding or waiting for the turn: a bucket in use is never forgotten (between one
    # post's release and the next waiter waking, the lock alone looks free).
    users: int = 0


class ChannelPacer:
    """A token bucket per channel: `burst` posts at once, then `rate` posts a second."""

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

    async def wait_turn(self, channel_id: str) -> float:
        """Wait until `channel_id` may take another post; the seconds waited."""
        async with self.turn(channel_id) as waited:
            return waited

    @asynccontextmanager
    async def turn(self, channel_id: str) -> AsyncIterator[float]:
        """Hold `channel_id`'s turn for one post, its retries included; yields the seconds
        waited. Posts into a channel land in the order they were asked for, even when one of
        them waits out a 429."""
        bucket = self._bucket(channel_id)
        waited = 0.0
        bucket.users += 1
        try:
            async with bucket.turn:
                while True:
                    self._refill(bucket)
                    if bucket.tokens >= 1:
                        bucket.tokens -= 1
                        break
                    delay = (1 - bucket.tokens) / self.rate
                    await self.sleep(delay)
                    waited += delay
                if self.on_wait is not None:
                    self.on_wait(waited)
                yield waited
        finally:
            bucket.users -= 1

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
