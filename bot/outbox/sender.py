"""Posting what the bot owes Slack. Each owed message was committed to the outbox with the
decision that made it; the sender claims it when its channel's turn comes, posts it, and marks
it sent. A failure leaves it owed for the next flush."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import SlackCallError
from bot.slack.gateway import SlackGateway
from bot.slack.pacing import Lane
from storage import outbox as outbox_store
from storage.db import Database

log = logging.getLogger(__name__)

FLUSH_EVERY_SECONDS = 15
# How long a sender holds an owed message: longer than the Web API client can spend on one post
# with its retries (10 s timeouts, Retry-After waits), so no other replica posts it meanwhile.
# A sender that dies holding one leaves it owed for this long, then the next flush posts it.
SEND_LEASE = timedelta(minutes=5)


class OutboxSender:
    """Posts owed messages, once each across replicas, and keeps track of posts under way."""

    def __init__(
        self, *, db: Database, gateway: SlackGateway, clock: Callable[[], datetime]
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.clock = clock
        # Who holds an outbox claim: unique per process, readable in the table.
        self.sender_id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._sending: set[int] = set()
        self._posting: set[asyncio.Task[None]] = set()

    def send_later(self, message_ids: Iterable[int]) -> None:
        """Post these after the caller returns, in order, tracked until they finish."""
        self._track(self._send_all(list(message_ids)))

    async def send(self, message_id: int) -> None:
        """Post one owed message and mark it sent; a failure leaves it for the next flush."""
        if message_id in self._sending:
            return
        self._sending.add(message_id)
        try:
            await self._send(message_id)
        finally:
            self._sending.discard(message_id)

    async def flush(self, still_wanted: Callable[[], bool]) -> None:
        """Send what is still owed, while `still_wanted()` holds. Shielded and tracked like
        every other post: stopping the scheduler cancels its jobs, and a post cancelled
        between Slack's answer and the mark that it was sent would be sent again."""
        await asyncio.shield(self._track(self._flush(still_wanted)))

    async def drain(self) -> None:
        """Wait for the posts under way; whatever is still owed waits in the outbox."""
        await asyncio.gather(*self._posting, return_exceptions=True)

    @property
    def posting(self) -> int:
        """How many tracked posts (and flushes) are under way."""
        return len(self._posting)

    async def cancel(self) -> None:
        """Stop the posts under way (shutdown's bound has passed) and wait until they have
        given their messages back: they stay owed, for the next flush here or elsewhere."""
        posting = list(self._posting)
        for task in posting:
            task.cancel()
        await asyncio.gather(*posting, return_exceptions=True)

    def _track(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)
        return task

    async def _send_all(self, message_ids: list[int]) -> None:
        for message_id in message_ids:
            await self.send(message_id)

    async def _flush(self, still_wanted: Callable[[], bool]) -> None:
        pending = await self.db.run(lambda s: [m.id for m in outbox_store.pending(s)])
        for message_id in pending:
            if not still_wanted():
                return  # stopping or stepping down: the post under way finished; the rest wait
            if message_id is not None:
                await self.send(message_id)

    async def _send(self, message_id: int) -> None:
        message = await self.db.run(lambda s: outbox_store.unsent(s, message_id=message_id))
        if message is None:
            return  # sent already
        claimed = False

        async def claim() -> bool:
            # Taken when the channel's turn has come, not before the wait for it: the lease
            # then covers the post and its retries only. Wall-clock time, not the injected
            # clock: the lease is about processes, read alike by every replica.
            nonlocal claimed
            mine = await self.db.run(
                lambda s: outbox_store.claim(
                    s,
                    message_id=message_id,
                    by=self.sender_id,
                    now=datetime.now(UTC),
                    lease=SEND_LEASE,
                )
            )
            claimed = mine is not None
            return claimed

        try:
            # Owed posts are the urgent ones (customer updates, reminders, escalations):
            # they never wait behind the announcements of other incidents.
            ts = await self.gateway.post_message_if(
                message.channel_id,
                message.text,
                still_wanted=claim,
                lane=Lane.URGENT,
                incident_id=message.incident_id,
            )
        except asyncio.CancelledError:
            if claimed:
                # Stopped while Slack had not answered: given back at once, so the next start
                # (or another replica) sends it without waiting out the lease. Slack may have
                # taken it after all: at least once, as after any failure.
                await asyncio.shield(
                    self.db.run(
                        lambda s: outbox_store.mark_failed(
                            s, message_id=message_id, error="stopped", by=self.sender_id
                        )
                    )
                )
            raise
        except Exception as exc:
            if not claimed:
                raise  # nothing was tried: the message is as it was
            # Whatever went wrong, the message stays owed (with why) and counts an attempt,
            # and the messages queued behind it in a flush are still tried.
            error = exc.reason if isinstance(exc, SlackCallError) else repr(exc)
            if isinstance(exc, SlackCallError | OSError | TimeoutError):
                log.warning("outbox message %s not sent yet: %s", message_id, error)
            else:
                log.exception("outbox message %s not sent: unexpected failure", message_id)
            await self.db.run(
                lambda s: outbox_store.mark_failed(
                    s, message_id=message_id, error=error, by=self.sender_id
                )
            )
            return
        if ts is None:
            return  # another sender holds it
        posted_ts, now = ts, self.clock()
        await self.db.run(
            lambda s: outbox_store.mark_posted(s, message_id=message_id, ts=posted_ts, at=now)
        )
