"""War-room membership on real databases: who may see a private incident outside its room."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from storage import members as member_store
from storage.db import Database
from storage.models import Incident
from tests.support.stored import stored_incident

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def make_incident(db: Database, *, private: bool) -> int:
    """An incident, private or not."""
    return stored_incident(db, declared_at=T0, title="Badge reader breach", private=private)


def test_members_come_and_go_and_decide_who_sees_a_private_incident(db: Database) -> None:
    private = make_incident(db, private=True)
    public = make_incident(db, private=False)
    with db.unit_of_work() as session:
        member_store.add_members(session, incident_id=private, user_ids=["U0ANA", "U0BO"], at=T0)
        # Noted twice (an invitation, then Slack's join event): once.
        member_store.add_members(session, incident_id=private, user_ids=["U0BO", ""], at=T0)
    with db.unit_of_work() as session:
        assert member_store.members(session, incident_id=private) == {"U0ANA", "U0BO"}
        member_store.remove_member(session, incident_id=private, user_id="U0BO")
    with db.unit_of_work() as session:
        hidden = session.get_one(Incident, private)
        shown = session.get_one(Incident, public)
        assert hidden.is_private and not shown.is_private
        assert member_store.private_incidents_of(session, user_id="U0ANA") == {private}
        assert member_store.private_incidents_of(session, user_id="U0BO") == set()
        see = member_store.may_see
        assert see(session, incident=hidden, user_id="U0ANA", admins=[])
        assert not see(session, incident=hidden, user_id="U0BO", admins=[])
        assert see(session, incident=hidden, user_id="U0ROOT", admins=["U0ROOT"])
        assert see(session, incident=shown, user_id="U0BO", admins=[])
