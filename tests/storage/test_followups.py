"""Follow-up storage on real databases: numbers across incidents, lists and counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from storage import followups as followup_store
from storage.db import Database
from storage.models import FollowUp
from tests.support.stored import stored_incident

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def make_incident(db: Database) -> int:
    """An incident to hang follow-ups on."""
    return stored_incident(db, declared_at=T0)


def add(db: Database, incident_id: int, text: str, **fields: object) -> int:
    with db.unit_of_work() as session:
        return followup_store.add_followup(
            session,
            incident_id=incident_id,
            text=text,
            at=T0,
            created_by_id="U0ANA",
            created_by_name="ana",
            **fields,  # type: ignore[arg-type]
        ).id


def test_numbers_run_across_incidents_and_a_rollback_takes_none(db: Database) -> None:
    first, second = make_incident(db), make_incident(db)
    assert add(db, first, "Add an alert on 5xx") == 1
    assert add(db, second, "Rotate the key") == 2
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        assert followup_store.next_followup_number(session) == 3
        raise RuntimeError("the command failed")
    assert add(db, first, "Write the runbook", owner_id="U0BO", due=date(2026, 12, 9)) == 3

    with db.reading() as session:
        stored = followup_store.get_followup(session, number=3)
        assert stored is not None
        assert (stored.owner_id, stored.due, stored.status) == ("U0BO", date(2026, 12, 9), "open")
        assert stored.created_at == T0
        listed = followup_store.followups_for_incident(session, incident_id=first)
        assert [f.id for f in listed] == [1, 3]
        assert [f.id for f in followup_store.unowned_open(session, incident_id=first)] == [1]


def test_lists_and_counts_filter_by_status_owner_and_due(db: Database) -> None:
    incident = make_incident(db)
    add(db, incident, "late", owner_id="U0BO", due=date(2026, 12, 1))
    add(db, incident, "on time", owner_id="U0BO", due=date(2026, 12, 20))
    add(db, incident, "someone else's", owner_id="U0CY", due=date(2026, 11, 1))
    with db.unit_of_work() as session:
        closed = session.get_one(FollowUp, 3)
        closed.status = "done"
        session.add(closed)

    today = date(2026, 12, 5)
    with db.reading() as session:
        assert [f.id for f in followup_store.find_followups(session, owner_id="U0BO")] == [1, 2]
        assert [f.id for f in followup_store.find_followups(session, status="done")] == [3]
        overdue = followup_store.find_followups(session, status="open", due_before=today)
        assert [f.id for f in overdue] == [1]
        assert sorted(followup_store.count_by_status(session)) == [("done", 1), ("open", 2)]
        assert followup_store.count_overdue(session, today=today) == 1
