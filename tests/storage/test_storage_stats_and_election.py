"""Storage read by /metrics (stored counts, on SQLite and PostgreSQL) and the scheduler
election's lock connection (PostgreSQL only), against real databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from sqlmodel import Session

from storage import election as election_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database
from tests.support.ci import missing
from tests.support.databases import PG_URL, pg_schema_url

Row = TypeVar("Row", tuple[str, str, int], tuple[str, int])

T0 = datetime(2024, 3, 10, 14, 2, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


def declare(db: Database, severity: str, status: str = "investigating") -> int:
    with db.unit_of_work() as session:
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title="Checkout API returning 500s",
            severity=severity,
            declared_at=T0,
            declared_by_id="U0ANA",
            declared_by_name="Ana",
            origin_channel_id="C0GENERAL",
        )
        incident.status = status
        session.flush()
        assert incident.id is not None
        return incident.id


def read(db: Database, query: Callable[[Session], list[Row]]) -> list[Row]:
    """What a count query returns, in a stable order (the database gives none)."""
    with db.reading() as session:
        return sorted(query(session))


# -- counts ----------------------------------------------------------------------------------


def test_incidents_are_counted_by_status_and_severity(db: Database) -> None:
    assert read(db, incident_store.count_by_status_and_severity) == []
    declare(db, "sev1")
    declare(db, "sev2")
    declare(db, "sev2")
    declare(db, "sev2", status="resolved")
    declare(db, "sev1", status="monitoring")

    assert read(db, incident_store.count_by_status_and_severity) == [
        ("investigating", "sev1", 1),
        ("investigating", "sev2", 2),
        ("monitoring", "sev1", 1),
        ("resolved", "sev2", 1),
    ]


def test_events_are_counted_by_kind_across_incidents(db: Database) -> None:
    assert read(db, timeline_store.count_by_kind) == []
    first, second = declare(db, "sev1"), declare(db, "sev2")
    with db.unit_of_work() as session:
        for incident_id, kind, key in [
            (first, "message", "m1"),
            (first, "message", "m2"),
            (second, "message", "m3"),
            (second, "message", "m3"),  # a redelivery: stored once, counted once
            (first, "note", None),
            (second, "status_changed", None),
        ]:
            timeline_store.add_event(
                session, incident_id=incident_id, kind=kind, at=T0, dedupe_key=key
            )

    assert read(db, timeline_store.count_by_kind) == [
        ("message", 3),
        ("note", 1),
        ("status_changed", 1),
    ]


# -- the election's lock (PostgreSQL) -------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL schema of its own (advisory locks need PostgreSQL)."""
    if not PG_URL:
        missing("WARROOM_TEST_DATABASE_URL is not set: the election's lock needs PostgreSQL")
    yield from pg_schema_url(PG_URL)


@pytest.fixture
async def holders() -> AsyncIterator[list[election_store.AdvisoryLockConnection]]:
    """Lock connections a test opens; whichever it leaves open are closed after it."""
    opened: list[election_store.AdvisoryLockConnection] = []
    yield opened
    for holder in opened:
        if not holder.closed:
            await holder.close()


async def connect(
    url: str, opened: list[election_store.AdvisoryLockConnection]
) -> election_store.AdvisoryLockConnection:
    holder = await election_store.connect(url, connect_timeout=2, idle_session_ms=10_000)
    opened.append(holder)
    return holder


async def wins_within(holder: election_store.AdvisoryLockConnection, seconds: float) -> bool:
    """Whether `holder` takes the lock within `seconds`: the server lets go of a closed
    session's locks once its backend has seen the connection end, not at once."""
    deadline = time.monotonic() + seconds
    while not await holder.try_lock():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def test_the_first_holder_wins_the_lock_until_it_closes(
    pg_url: str, holders: list[election_store.AdvisoryLockConnection]
) -> None:
    first = await connect(pg_url, holders)
    second = await connect(pg_url, holders)
    assert first.key == second.key

    assert await first.try_lock()
    assert not await second.try_lock()
    assert await first.try_lock(), "the holder's own session takes it again"
    assert not await second.try_lock()

    await first.close()
    assert first.closed
    assert await wins_within(second, 5)


async def test_holders_in_other_schemas_do_not_compete(
    pg_url: str, holders: list[election_store.AdvisoryLockConnection]
) -> None:
    assert PG_URL
    here = await connect(pg_url, holders)
    for other_url in pg_schema_url(PG_URL):
        elsewhere = await connect(other_url, holders)
        assert here.key != elsewhere.key
        assert await here.try_lock()
        assert await elsewhere.try_lock()
        await elsewhere.close()


async def test_the_lock_session_is_named_and_keyed_by_database_and_schema(
    pg_url: str, holders: list[election_store.AdvisoryLockConnection]
) -> None:
    holder = await connect(pg_url, holders)
    assert await holder.try_lock()
    db = Database(pg_url)
    try:
        with db.engine.connect() as connection:
            database, schema, version = connection.exec_driver_sql(
                "SELECT current_database(), current_schema(), "
                "current_setting('server_version_num')::int"
            ).one()
            # An advisory lock on a bigint key shows in pg_locks as its high and low halves.
            names = connection.exec_driver_sql(
                "SELECT a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s",
                {"key": holder.key},
            ).all()
    finally:
        db.close()
    assert holder.key == election_store.election_key(database, schema)
    assert names == [(election_store.APPLICATION_NAME,)]
    # idle_session_timeout came with PostgreSQL 14; before it the holder says so with None.
    assert holder.idle_session_ms == (10_000 if version >= 140000 else None)


async def test_a_closed_holder_fails_its_ping(
    pg_url: str, holders: list[election_store.AdvisoryLockConnection]
) -> None:
    holder = await connect(pg_url, holders)
    await holder.ping()
    assert not holder.closed
    await holder.close()
    assert holder.closed
    with pytest.raises(ConnectionError, match="lock connection closed"):
        await holder.ping()
