"""The back-fill's queries on real databases: which war rooms, from when, and the recorded
text of each message."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlmodel import Session

from storage import backfill as backfill_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.backfill import RecordedText
from storage.db import Database

T = TypeVar("T")
T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def in_unit(db: Database, work: Callable[[Session], T]) -> T:
    with db.unit_of_work() as session:
        return work(session)


def make_incident(db: Database, *, channel: str | None, resolved_at: datetime | None = None) -> int:
    def _create(session: Session) -> int:
        number = incident_store.next_incident_number(session)
        incident = incident_store.create_incident(
            session,
            number=number,
            title=f"incident {number}",
            severity="sev2",
            declared_at=T0,
            declared_by_id="U0ANA",
            declared_by_name="Ana",
            origin_channel_id="C0GENERAL",
        )
        incident.channel_id = channel
        if resolved_at is not None:
            incident.status = "resolved"
            incident.resolved_at = resolved_at
        session.add(incident)
        session.flush()
        assert incident.id is not None
        return incident.id

    return in_unit(db, _create)


def add(db: Database, incident_id: int, **fields: Any) -> None:
    values: dict[str, Any] = {"kind": "message", "at": T0, **fields}
    in_unit(db, lambda s: timeline_store.add_event(s, incident_id=incident_id, **values))


def test_open_and_lately_resolved_war_rooms_are_back_filled(db: Database) -> None:
    make_incident(db, channel="C1")
    make_incident(db, channel=None)  # no war room yet
    make_incident(db, channel="C3", resolved_at=T0 - timedelta(days=1))
    make_incident(db, channel="C4", resolved_at=T0 - timedelta(days=9))
    with db.reading() as session:
        found = backfill_store.incidents_to_backfill(session, resolved_since=T0 - timedelta(days=7))
        assert [i.number for i in found] == [1, 3]


def test_the_newest_message_and_the_threads_replied_to(db: Database) -> None:
    incident = make_incident(db, channel="C1")
    with db.reading() as session:
        assert backfill_store.newest_message_at(session, incident_id=incident, before=T0) is None
    add(db, incident, at=T0 - timedelta(minutes=5), slack_ts="1.0", dedupe_key="m1")
    add(
        db, incident, at=T0 - timedelta(minutes=3), slack_ts="2.0", thread_ts="0.5", dedupe_key="m2"
    )
    add(db, incident, kind="note", at=T0 - timedelta(minutes=1), dedupe_key="n1")
    add(db, incident, at=T0 + timedelta(minutes=1), slack_ts="3.0", dedupe_key="m3")
    with db.reading() as session:
        newest = backfill_store.newest_message_at(session, incident_id=incident, before=T0)
        assert newest == T0 - timedelta(minutes=3), "notes and messages since `before` do not count"
        assert backfill_store.threads_active_since(
            session, incident_id=incident, since=T0 - timedelta(minutes=4)
        ) == ["0.5"]
        assert backfill_store.threads_active_since(session, incident_id=incident, since=T0) == []


def test_the_recorded_text_is_the_latest_edit(db: Database) -> None:
    incident = make_incident(db, channel="C1")
    edited_at = T0 + timedelta(minutes=2)
    add(db, incident, slack_ts="1.0", text="hi", dedupe_key="m1")
    add(db, incident, slack_ts="2.0", text="yo", dedupe_key="m2")
    add(
        db,
        incident,
        kind="message_edited",
        slack_ts="2.0",
        text="yo!",
        at=edited_at,
        dedupe_key="e2b",
    )
    add(
        db,
        incident,
        kind="message_edited",
        slack_ts="2.0",
        text="yo?",
        at=T0 + timedelta(minutes=1),
        dedupe_key="e2a",
    )
    add(db, incident, kind="key_event", slack_ts="1.0", text="marked", dedupe_key="k1")
    with db.reading() as session:
        found = backfill_store.recorded_texts(
            session, incident_id=incident, slack_ts=["1.0", "2.0", "3.0"], posted_since=T0
        )
        assert found == {"1.0": RecordedText("hi", None), "2.0": RecordedText("yo!", edited_at)}
        # Read from later on, only entries from then on are looked at.
        later = backfill_store.recorded_texts(
            session,
            incident_id=incident,
            slack_ts=["1.0", "2.0"],
            posted_since=T0 + timedelta(minutes=2),
        )
        assert later == {"2.0": RecordedText("yo!", edited_at)}
