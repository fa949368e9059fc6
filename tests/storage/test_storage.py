"""Storage against real databases: a SQLite file always, PostgreSQL when
WARROOM_TEST_DATABASE_URL names one. Each unit of work here stands for one Slack request."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from sqlalchemy import text as sql
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage import users as user_store
from storage.db import Database
from storage.models import Incident, SlackUser, TimelineEvent

T = TypeVar("T")

T0 = datetime(2024, 3, 10, 14, 2, 0, 123456, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def in_unit(db: Database, work: Callable[[Session], T]) -> T:
    """Run `work` in a unit of work of its own, committed when it returns."""
    with db.unit_of_work() as session:
        return work(session)


def make_incident(db: Database, title: str = "Checkout API returning 500s") -> int:
    def _create(session: Session) -> int:
        number = incident_store.next_incident_number(session)
        incident = incident_store.create_incident(
            session,
            number=number,
            title=title,
            severity="sev2",
            declared_at=T0,
            declared_by_id="U0ANA",
            declared_by_name="Ana",
            origin_channel_id="C0GENERAL",
        )
        assert incident.id is not None
        return incident.id

    return in_unit(db, _create)


def add(db: Database, incident_id: int, **fields: Any) -> bool:
    """One add_event in its own unit of work, with defaults for what the test does not name."""
    values: dict[str, Any] = {"kind": "message", "at": T0, **fields}
    return in_unit(db, lambda s: timeline_store.add_event(s, incident_id=incident_id, **values))


def timeline(db: Database, incident_id: int) -> list[TimelineEvent]:
    with db.reading() as session:
        return list(timeline_store.events_for(session, incident_id=incident_id))


def on_replicas(url: str, count: int, work: Callable[[Database], T]) -> list[T]:
    """Run `work` on `count` threads released together, each with a Database (engine, pool)
    of its own, as separate replicas would."""
    start = threading.Barrier(count)

    def _replica() -> T:
        database = Database(url)
        try:
            start.wait()
            return work(database)
        finally:
            database.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return [f.result() for f in [pool.submit(_replica) for _ in range(count)]]


# -- incident numbers ---------------------------------------------------------------------


def test_incident_numbers_are_sequential(db: Database) -> None:
    numbers = [in_unit(db, incident_store.next_incident_number) for _ in range(5)]
    assert numbers == [1, 2, 3, 4, 5]


def test_an_incident_number_is_never_reused(db: Database) -> None:
    make_incident(db)
    latest = make_incident(db)
    in_unit(db, lambda s: s.delete(s.get_one(Incident, latest)))
    with db.reading() as session:
        assert session.exec(select(col(Incident.number))).all() == [1]

    # Numbers come from a counter, not from the highest number still stored.
    assert in_unit(db, incident_store.next_incident_number) == 3


def test_a_rolled_back_declaration_hands_out_no_number(db: Database) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        assert incident_store.next_incident_number(session) == 1
        raise RuntimeError("channel creation failed")
    assert in_unit(db, incident_store.next_incident_number) == 1


def test_concurrent_replicas_never_share_a_number(db: Database) -> None:
    def take_25(replica: Database) -> list[int]:
        return [in_unit(replica, incident_store.next_incident_number) for _ in range(25)]

    taken = [n for numbers in on_replicas(db.url, 4, take_25) for n in numbers]
    assert sorted(taken) == list(range(1, 101))
    assert in_unit(db, incident_store.next_incident_number) == 101  # and it carries on


# -- timeline events -------------------------------------------------------------------------


def test_the_same_dedupe_key_stores_one_event(db: Database) -> None:
    incident_id = make_incident(db)
    assert add(db, incident_id, text="first delivery", dedupe_key="message:C1:1700000100.000200")
    assert not add(db, incident_id, text="redelivery", dedupe_key="message:C1:1700000100.000200")

    [event] = timeline(db, incident_id)
    assert event.text == "first delivery"


def test_a_duplicate_inside_one_unit_of_work_is_skipped(db: Database) -> None:
    incident_id = make_incident(db)

    def _twice(session: Session) -> list[bool]:
        return [
            timeline_store.add_event(
                session, incident_id=incident_id, kind="note", at=T0, dedupe_key="k"
            )
            for _ in range(2)
        ]

    assert in_unit(db, _twice) == [True, False]
    assert len(timeline(db, incident_id)) == 1


def test_events_without_a_dedupe_key_are_all_kept(db: Database) -> None:
    incident_id = make_incident(db)
    assert add(db, incident_id, kind="reminder", text="update due")
    assert add(db, incident_id, kind="reminder", text="update due")
    assert len(timeline(db, incident_id)) == 2


def test_concurrent_redeliveries_store_one_event(db: Database) -> None:
    incident_id = make_incident(db)

    def deliver(replica: Database) -> bool:
        return add(replica, incident_id, dedupe_key="event:Ev0SAME")

    assert sorted(on_replicas(db.url, 4, deliver)) == [False, False, False, True]
    assert len(timeline(db, incident_id)) == 1


def test_events_come_back_in_time_order(db: Database) -> None:
    incident_id, other_incident = make_incident(db), make_incident(db, "Another one")
    for minutes, text in [(3, "third"), (1, "first"), (2, "second"), (1, "first, later id")]:
        add(db, incident_id, at=T0 + timedelta(minutes=minutes), text=text)
    add(db, other_incident, at=T0, text="not this incident's")

    assert [e.text for e in timeline(db, incident_id)] == [
        "first",
        "first, later id",
        "second",
        "third",
    ]


@pytest.mark.parametrize(
    "at",
    [
        T0,
        datetime(2024, 3, 10, 9, 2, 0, 123456, tzinfo=timezone(timedelta(hours=-5))),
        datetime(2024, 3, 10, 19, 32, 0, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
    ids=["utc", "new-york", "india"],
)
def test_times_come_back_as_aware_utc(db: Database, at: datetime) -> None:
    incident_id = make_incident(db)
    add(db, incident_id, at=at)

    [event] = timeline(db, incident_id)
    assert event.at == T0  # the same instant, to the microsecond
    assert event.at.tzinfo is not None and event.at.utcoffset() == timedelta(0)
    with db.reading() as session:
        incident = session.get_one(Incident, incident_id)
    assert incident.declared_at == T0 and incident.declared_at.utcoffset() == timedelta(0)


def test_a_naive_time_is_refused(db: Database) -> None:
    incident_id = make_incident(db)
    with pytest.raises(StatementError, match="naive datetime"):
        add(db, incident_id, at=datetime(2024, 3, 10, 14, 2))
    assert timeline(db, incident_id) == []


def test_data_round_trips(db: Database) -> None:
    incident_id = make_incident(db)
    data = {"subtype": "file_share", "files": [{"id": "F1", "name": "graph.png"}], "n": 1}
    add(db, incident_id, data=data, text="é ✓ 🔥")
    [event] = timeline(db, incident_id)
    assert (event.data, event.text) == (data, "é ✓ 🔥")


def test_a_batch_stores_what_one_by_one_stores(db: Database) -> None:
    """The batch insert takes its own road to the driver: its rows must read back, and sort,
    exactly like rows written one at a time."""
    incident_id = make_incident(db)
    new_york = datetime(2024, 3, 10, 9, 2, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    data = {"subtype": "file_share", "files": [{"id": "F1", "name": "graph.png"}]}
    add(db, incident_id, at=T0, text="one by one", dedupe_key="single", data=data)
    batch = [
        {
            "incident_id": incident_id,
            "kind": "message",
            "at": new_york,  # the same instant as T0
            "text": "é ✓ 🔥",
            "slack_ts": "1700000000.000200",
            "thread_ts": "1700000000.000100",
            "data": data,
            "dedupe_key": "batched",
        },
        {"incident_id": incident_id, "kind": "note", "at": T0, "dedupe_key": "single"},
    ]
    new = in_unit(db, lambda s: timeline_store.add_events(s, batch))

    assert new == {"batched"}  # the second row's key was taken already
    single, batched = timeline(db, incident_id)  # same instant: in the order written
    assert (single.text, batched.text) == ("one by one", "é ✓ 🔥")
    assert batched.at == single.at == T0 and batched.at.utcoffset() == timedelta(0)
    assert batched.data == single.data == data
    assert batched.thread_at == datetime(2023, 11, 14, 22, 13, 20, 100, tzinfo=UTC)
    # Stored alike too (SQLite keeps text, which sorts as written): not merely read back alike.
    with db.reading() as session:
        stored = session.execute(
            sql("SELECT at FROM timeline_event WHERE incident_id = :i ORDER BY id"),
            {"i": incident_id},
        ).scalars()
        assert len(set(stored)) == 1


def test_message_text_is_the_latest_text_of_that_message(db: Database) -> None:
    incident_id = make_incident(db)
    add(db, incident_id, slack_ts="1.1", text="original", dedupe_key="m")
    add(db, incident_id, kind="message_edited", slack_ts="1.1", text="edited", dedupe_key="e")
    add(db, incident_id, kind="note", slack_ts="1.1", text="not a message")

    with db.reading() as session:
        assert timeline_store.message_text(session, incident_id=incident_id, slack_ts="1.1") == (
            "edited"
        )
        assert timeline_store.message_text(session, incident_id=incident_id, slack_ts="9.9") is None


def test_fill_actor_name_names_only_the_unnamed(db: Database) -> None:
    incident_id = make_incident(db)
    add(db, incident_id, actor_id="U0BO", text="unnamed")
    add(db, incident_id, actor_id="U0BO", actor_name="Bobby", text="named already")
    add(db, incident_id, actor_id="U0CY", text="someone else")

    in_unit(db, lambda s: timeline_store.fill_actor_name(s, actor_id="U0BO", name="Bo"))

    names = {e.text: e.actor_name for e in timeline(db, incident_id)}
    assert names == {"unnamed": "Bo", "named already": "Bobby", "someone else": None}


def test_rows_read_stay_readable_after_the_read(db: Database) -> None:
    incident_id = make_incident(db)
    add(db, incident_id, text="still here")
    with db.reading() as session:
        incident = session.get_one(Incident, incident_id)
        events = list(timeline_store.events_for(session, incident_id=incident_id))
    assert (incident.number, [e.text for e in events]) == (1, ["still here"])


# -- cached Slack users -----------------------------------------------------------------------


def test_save_user_inserts_then_updates(db: Database) -> None:
    later = T0 + timedelta(days=1)
    in_unit(db, lambda s: user_store.save_user(s, user_id="U0BO", name="Bo", handle="Bo", at=T0))
    in_unit(
        db,
        lambda s: user_store.save_user(
            s, user_id="U0BO", name="Bo Diddley", handle="BoD", at=later
        ),
    )

    with db.reading() as session:
        [user] = session.exec(select(SlackUser)).all()
        assert (user.id, user.name, user.handle, user.updated_at) == (
            "U0BO",
            "Bo Diddley",
            "bod",
            later,
        )
        assert user_store.user_name(session, user_id="U0BO") == "Bo Diddley"
        assert user_store.user_name(session, user_id="U0NOBODY") is None
        found = user_store.user_by_handle(session, handle="BOD")
        assert found is not None and found.id == "U0BO"
        assert user_store.user_by_handle(session, handle="bo") is None  # the old handle is gone
