"""Posting webhook deliveries from the background: each owed delivery is claimed, POSTed with
its signature, and marked delivered, retried later with backoff, or given up. Deliveries to
one webhook about one incident go in order: a later one waits while an earlier is owed."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import aiohttp

from bot.config import WebhookConfig
from bot.webhooks.signing import signature
from storage import webhooks as webhook_store
from storage.db import Database
from storage.models import WebhookDelivery

log = logging.getLogger(__name__)

SEND_EVERY_SECONDS = 10
TIMEOUT = aiohttp.ClientTimeout(total=10)
# Longer than one POST can take: no other replica tries the same delivery meanwhile.
SEND_LEASE = timedelta(minutes=2)
GIVE_UP_AFTER = timedelta(days=1)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=1)
# Client errors worth retrying: a timeout and a rate limit; any other 4xx is given up at once.
_RETRIED_4XX = {408, 429}
# Delivered rows are kept a week (a receiver's operator can still ask what was sent), pruned
# at most hourly.
KEEP_DELIVERED = timedelta(days=7)
PRUNE_EVERY = timedelta(hours=1)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: 30 s, doubling, at most an hour."""
    wait: timedelta = FIRST_RETRY * (2 ** max(attempts - 1, 0))
    return min(wait, LONGEST_RETRY)


def subscriptions(webhooks: Sequence[WebhookConfig]) -> list[webhook_store.Subscription]:
    """What the configured webhooks want, as storage enqueues it."""
    return [
        webhook_store.Subscription(
            index=index,
            url=hook.url,
            kinds=frozenset(hook.events),
            include_private=hook.include_private,
        )
        for index, hook in enumerate(webhooks)
    ]


class WebhookSender:
    """Sends owed deliveries, once each across replicas, and counts the outcomes."""

    def __init__(
        self,
        *,
        db: Database,
        webhooks: Sequence[WebhookConfig],
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.webhooks = list(webhooks)
        self.clock = clock
        self.sender_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = asyncio.Lock()
        self._pruned_at: datetime | None = None
        webhook_store.subscribe(db.engines, subscriptions(self.webhooks))

    async def flush(self) -> None:
        """Try every owed delivery that is due, in order per webhook and incident."""
        if not self.webhooks:
            return
        async with self._lock:  # one flush at a time in this process
            await self._prune()
            owed = await self.db.run(lambda s: list(webhook_store.owed(s)))
            if not owed:
                return
            blocked: set[tuple[int, int]] = set()
            async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
                for delivery in owed:
                    key = (delivery.webhook, delivery.incident_id)
                    if key in blocked:
                        continue
                    if not await self._try(http, delivery):
                        blocked.add(key)  # a later one must not overtake it

    async def _try(self, http: aiohttp.ClientSession, delivery: WebhookDelivery) -> bool:
        """One attempt, if due and claimed; True when the delivery is finished."""
        now = self.clock()
        if delivery.next_attempt_at > now:
            return False
        row_id = delivery.id
        assert row_id is not None
        hook = self._hook(delivery)
        if hook is None:
            await self._finish(row_id, webhook_store.GIVEN_UP, "webhook no longer configured")
            return True
        mine = await self.db.run(
            lambda s: webhook_store.claim(
                s, row_id=row_id, by=self.sender_id, now=datetime.now(UTC), lease=SEND_LEASE
            )
        )
        if mine is None:
            return False  # another replica has it, or it was finished meanwhile
        body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
        timestamp = int(now.timestamp())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "warroom-webhooks",
            "X-Warroom-Event": delivery.kind,
            "X-Warroom-Delivery": delivery.delivery_id,
            "X-Warroom-Timestamp": str(timestamp),
            "X-Warroom-Signature": signature(hook.secret, timestamp, body),
        }
        retry: bool
        try:
            async with http.post(hook.url, data=body, headers=headers) as response:
                status = response.status
            error = f"HTTP {status}"
            if 200 <= status < 300:
                await self._finish(row_id, webhook_store.DELIVERED, None)
                return True
            retry = status >= 500 or status in _RETRIED_4XX
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error, retry = f"{type(exc).__name__}: {exc}"[:200], True
        log.warning("webhook delivery %s not delivered: %s", delivery.delivery_id, error)
        first_failed = delivery.first_failed_at or now
        if not retry or now - first_failed >= GIVE_UP_AFTER:
            await self._finish(row_id, webhook_store.GIVEN_UP, error)
            return True
        wait = backoff(delivery.attempts + 1)
        await self.db.run(
            lambda s: webhook_store.retry_later(
                s, row_id=row_id, failed_at=now, at=now + wait, error=error
            )
        )
        return False

    async def _prune(self) -> None:
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        pruned = await self.db.run(
            lambda s: webhook_store.prune_delivered(s, finished_before=now - KEEP_DELIVERED)
        )
        if pruned:
            log.info("pruned %d webhook deliveries delivered over a week ago", pruned)

    def _hook(self, delivery: WebhookDelivery) -> WebhookConfig | None:
        if delivery.webhook < len(self.webhooks):
            hook = self.webhooks[delivery.webhook]
            if hook.url == delivery.url:
                return hook
        return None

    async def _finish(self, row_id: int, outcome: str, error: str | None) -> None:
        now = self.clock()
        await self.db.run(
            lambda s: webhook_store.finish(s, row_id=row_id, outcome=outcome, at=now, error=error)
        )
