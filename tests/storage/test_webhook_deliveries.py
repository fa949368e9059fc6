"""Webhook deliveries are enqueued in the transaction of their timeline event: committed
together, rolled back together, and only for the kinds and incidents subscribed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from storage import timeline as timeline_store
from storage import webhooks as webhook_store
from storage.db import Database
from storage.models import WebhookDelivery
from tests.support.stored import stored_incident

AT = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    webhook_store.subscribe(
        database.engines,
        [
            webhook_store.Subscription(
                index=0,
                url="https://hooks.example.com/a",
                kinds=frozenset({"declared", "resolved"}),
                include_private=False,
            )
        ],
    )
    yield database
    database.close()


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.reading() as session:
        return list(session.exec(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_a_subscribed_event_owes_a_delivery_with_its_incident(db: Database) -> None:
    incident_id = stored_incident(db, declared_at=AT)
    with db.unit_of_work() as session:
        timeline_store.add_event(session, incident_id=incident_id, kind="note", at=AT, text="x")
        timeline_store.add_event(
            session, incident_id=incident_id, kind="resolved", at=AT, text="done"
        )
    [owed] = deliveries(db)
    assert owed.kind == "resolved" and owed.url == "https://hooks.example.com/a"
    assert owed.payload["event"] == "resolved" and owed.payload["delivery"] == owed.delivery_id
    assert owed.payload["incident"]["id"] == "INC-1"
    assert owed.payload["incident"]["status"] == "resolved"
    assert owed.payload["entry"]["text"] == "done"
    assert owed.payload["entry"]["at"] == "2026-12-04T07:00:00Z"


def test_a_rolled_back_event_owes_nothing(db: Database) -> None:
    incident_id = stored_incident(db, declared_at=AT)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        timeline_store.add_event(session, incident_id=incident_id, kind="resolved", at=AT)
        raise RuntimeError("the decision failed after the event was written")
    assert deliveries(db) == []


def test_a_private_incident_owes_nothing_unless_included(db: Database) -> None:
    incident_id = stored_incident(db, declared_at=AT, private=True)
    with db.unit_of_work() as session:
        timeline_store.add_event(session, incident_id=incident_id, kind="resolved", at=AT)
    assert deliveries(db) == []


def test_one_sender_at_a_time_holds_a_delivery(db: Database) -> None:
    incident_id = stored_incident(db, declared_at=AT)
    with db.unit_of_work() as session:
        timeline_store.add_event(session, incident_id=incident_id, kind="declared", at=AT)
    [owed] = deliveries(db)
    assert owed.id is not None
    lease = timedelta(minutes=2)
    with db.unit_of_work() as session:
        mine = webhook_store.claim(session, row_id=owed.id, by="a", now=AT, lease=lease)
        assert mine is not None and mine.claimed_by == "a"
    with db.unit_of_work() as session:
        assert webhook_store.claim(session, row_id=owed.id, by="b", now=AT, lease=lease) is None
    with db.unit_of_work() as session:
        webhook_store.finish(
            session, row_id=owed.id, outcome=webhook_store.DELIVERED, at=AT, error=None
        )
    # Finished: nobody takes it again, even once the lease is long over.
    later = AT + timedelta(hours=1)
    with db.unit_of_work() as session:
        assert webhook_store.claim(session, row_id=owed.id, by="b", now=later, lease=lease) is None
        assert dict(webhook_store.count_by_outcome(session)) == {webhook_store.DELIVERED: 1}
