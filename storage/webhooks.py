"""Webhook deliveries: enqueued in the transaction that commits their timeline event, so a
rolled-back event sends nothing and a committed one is never lost; claimed before each post
so two replicas never post the same delivery at once."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete as sa_delete
from sqlalchemy import func
from sqlalchemy import insert as sa_insert
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from storage.models import Incident, TimelineEvent, WebhookDelivery
from storage.sql import claim_row

DELIVERED = "delivered"
_AT_ONCE = datetime(2000, 1, 1, tzinfo=UTC)
GIVEN_UP = "given_up"


@dataclass(frozen=True)
class Subscription:
    """What one configured webhook wants: its place in the config, URL, kinds, and privacy."""

    index: int
    url: str
    kinds: frozenset[str]
    include_private: bool


# Per engine (per Database): the storage layer has no config, but every timeline insert
# goes through add_events on some engine, and must enqueue in its own transaction.
_SUBSCRIPTIONS: weakref.WeakKeyDictionary[Engine, tuple[Subscription, ...]] = (
    weakref.WeakKeyDictionary()
)


def subscribe(engines: Iterable[Engine], subscriptions: Sequence[Subscription]) -> None:
    """Make every timeline event committed through these engines (a Database's `engines`:
    its units of work and its batch writes) owe these webhooks a delivery."""
    for engine in engines:
        _SUBSCRIPTIONS[engine] = tuple(subscriptions)


def subscribed_kinds(engine: Engine) -> frozenset[str]:
    """The kinds some webhook wants of the events written through `engine` (empty: none)."""
    subscriptions = _SUBSCRIPTIONS.get(engine, ())
    return frozenset().union(*(s.kinds for s in subscriptions))


def _incident_view(incident: Incident, event: TimelineEvent) -> dict[str, Any]:
    # The event may be written before its incident row is updated in the same transaction:
    # what the event says it changed wins.
    data = event.data or {}
    view = {
        "id": f"INC-{incident.number}",
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "private": incident.is_private,
    }
    if event.kind == "status_changed" and data.get("to"):
        view["status"] = data["to"]
    if event.kind == "severity_changed" and data.get("to"):
        view["severity"] = data["to"]
    if event.kind == "resolved":
        view["status"] = "resolved"
    return view


def _entry_view(event: TimelineEvent) -> dict[str, Any]:
    at = event.at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    actor = {"id": event.actor_id, "name": event.actor_name} if event.actor_id else None
    return {"at": at, "kind": event.kind, "actor": actor, "text": event.text, "data": event.data}


def enqueue_for_events(connection: Connection, event_ids: Sequence[int]) -> int:
    """Owe each subscribed webhook the events `event_ids` (new rows of this transaction);
    how many deliveries were enqueued."""
    subscriptions = _SUBSCRIPTIONS.get(connection.engine, ())
    if not subscriptions or not event_ids:
        return 0
    events = TimelineEvent.__table__  # type: ignore[attr-defined]
    incidents = Incident.__table__  # type: ignore[attr-defined]
    found = (
        connection.execute(
            sa_select(
                events,
                incidents.c.number,
                incidents.c.title,
                incidents.c.severity,
                incidents.c.status,
                incidents.c.is_private,
            )
            .join(incidents, incidents.c.id == events.c.incident_id)
            .where(events.c.id.in_(list(event_ids)))
            .order_by(events.c.id)
        )
        .mappings()
        .all()
    )
    rows: list[dict[str, Any]] = []
    for found_row in found:
        event = TimelineEvent(**{c.name: found_row[c.name] for c in events.c})
        incident = Incident(
            id=event.incident_id,
            number=found_row["number"],
            title=found_row["title"],
            severity=found_row["severity"],
            status=found_row["status"],
            is_private=found_row["is_private"],
        )
        for subscription in subscriptions:
            if event.kind not in subscription.kinds:
                continue
            if incident.is_private and not subscription.include_private:
                continue
            delivery_id = str(uuid.uuid4())
            payload = {
                "event": event.kind,
                "delivery": delivery_id,
                "incident": _incident_view(incident, event),
                "entry": _entry_view(event),
            }
            rows.append(
                {
                    "delivery_id": delivery_id,
                    "webhook": subscription.index,
                    "url": subscription.url,
                    "incident_id": event.incident_id,
                    "event_id": event.id,
                    "kind": event.kind,
                    "payload": payload,
                    "created_at": event.at,
                    # Due at once: the sender's clock decides from the first failure on.
                    "next_attempt_at": _AT_ONCE,
                    "attempts": 0,
                }
            )
    if rows:
        connection.execute(sa_insert(WebhookDelivery.__table__), rows)  # type: ignore[attr-defined]
    return len(rows)


def owed(session: Session, *, limit: int = 200) -> Sequence[WebhookDelivery]:
    """Up to `limit` deliveries not yet delivered or given up, oldest first."""
    return session.exec(
        select(WebhookDelivery)
        .where(col(WebhookDelivery.finished_at).is_(None))
        .order_by(col(WebhookDelivery.id))
        .limit(limit)
    ).all()


def claim(
    session: Session, *, row_id: int, by: str, now: datetime, lease: timedelta
) -> WebhookDelivery | None:
    """Take an owed delivery for one attempt unless another sender holds an unexpired claim
    (one conditional UPDATE, as the outbox claims its messages)."""
    return claim_row(
        session,
        WebhookDelivery,
        row_id=row_id,
        done=WebhookDelivery.finished_at,
        by=by,
        now=now,
        lease=lease,
    )


def finish(session: Session, *, row_id: int, outcome: str, at: datetime, error: str | None) -> None:
    """Mark a delivery delivered or given up, counting the attempt that decided it."""
    delivery = session.get_one(WebhookDelivery, row_id)
    delivery.attempts += 1
    delivery.outcome = outcome
    delivery.finished_at = at
    delivery.last_error = error[:200] if error else delivery.last_error
    delivery.claimed_by = delivery.claimed_until = None
    session.add(delivery)
    session.flush()


def retry_later(
    session: Session, *, row_id: int, failed_at: datetime, at: datetime, error: str
) -> None:
    """Count an attempt that failed at `failed_at`, and owe the delivery again from `at`."""
    delivery = session.get_one(WebhookDelivery, row_id)
    delivery.attempts += 1
    delivery.first_failed_at = delivery.first_failed_at or failed_at
    delivery.next_attempt_at = at
    delivery.last_error = error[:200]
    delivery.claimed_by = delivery.claimed_until = None
    session.add(delivery)
    session.flush()


def prune_delivered(session: Session, *, finished_before: datetime) -> int:
    """Delete deliveries delivered before `finished_before`; how many. Given-up ones are kept
    for an operator to look into (and the given-up count never falls)."""
    table = WebhookDelivery.__table__  # type: ignore[attr-defined]
    result = session.connection().execute(
        sa_delete(table).where(table.c.outcome == DELIVERED, table.c.finished_at < finished_before)
    )
    return int(result.rowcount or 0)


def count_by_outcome(session: Session) -> list[tuple[str, int]]:
    """How many deliveries are pending, delivered and given up, as (outcome, count)."""
    outcome = func.coalesce(col(WebhookDelivery.outcome), "pending")
    rows = session.exec(select(outcome, func.count()).group_by(outcome))
    return [(str(name), int(count)) for name, count in rows]
