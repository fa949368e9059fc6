"""Messages owed to Slack: written in the same transaction as the decision to send them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from storage.models import OutboxMessage
from storage.sql import claim_row

MAX_ATTEMPTS = 20


def enqueue(
    session: Session, *, channel_id: str, text: str, at: datetime, incident_id: int | None
) -> OutboxMessage:
    """Add a message the bot owes `channel_id`, and flush it (it gets its id)."""
    message = OutboxMessage(
        incident_id=incident_id, channel_id=channel_id, text=text, created_at=at
    )
    session.add(message)
    session.flush()
    return message


def pending(session: Session, *, limit: int = 100) -> Sequence[OutboxMessage]:
    """Up to `limit` messages not yet posted that have attempts left, oldest first."""
    return session.exec(
        select(OutboxMessage)
        .where(col(OutboxMessage.posted_at).is_(None))
        .where(OutboxMessage.attempts < MAX_ATTEMPTS)
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    ).all()


def unsent(session: Session, *, message_id: int) -> OutboxMessage | None:
    """The message if it has not been sent yet."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.posted_at is not None:
        return None
    return message


def claim(
    session: Session, *, message_id: int, by: str, now: datetime, lease: timedelta
) -> OutboxMessage | None:
    """Take an unsent message for sending, unless another sender holds an unexpired claim on
    it. One conditional UPDATE: on PostgreSQL a racing claim waits for this one's commit,
    re-reads the row and matches nothing, so only one process ever posts it."""
    return claim_row(
        session,
        OutboxMessage,
        row_id=message_id,
        done=OutboxMessage.posted_at,
        by=by,
        now=now,
        lease=lease,
    )


def mark_posted(session: Session, *, message_id: int, ts: str, at: datetime) -> None:
    """Note that Slack took the message (as `ts`) at `at`, and let go of its claim."""
    message = session.get_one(OutboxMessage, message_id)
    message.posted_at = at
    message.slack_ts = ts
    message.claimed_by = message.claimed_until = None
    session.add(message)
    session.flush()


def mark_failed(session: Session, *, message_id: int, error: str, by: str | None = None) -> None:
    """Count a failed attempt and give the message back (if `by` still holds it)."""
    message = session.get_one(OutboxMessage, message_id)
    message.attempts += 1
    message.last_error = error[:200]
    if by is not None and message.claimed_by == by:
        message.claimed_by = message.claimed_until = None
    session.add(message)
    session.flush()
