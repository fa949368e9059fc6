"""The timeline's batch writes: on the database threads (`Database.run_in_transaction`,
without the pool's ping on PostgreSQL) and past SQLAlchemy (`Database.write_directly`: the
event loop's own connections on PostgreSQL, the database thread's own on SQLite). Each is
committed when it returns or leaves nothing; on PostgreSQL a connection the server dropped is
found by the write itself, which is then tried once more on a fresh one, so a database restart
costs no event its 200."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from bot.incidents.people import People
from bot.slack.gateway import SlackGateway
from bot.tasks import BackgroundTasks
from bot.timeline.entries import Entry
from bot.timeline.service import TimelineService
from storage.db import Database, is_unreachable
from tests.support.ci import missing
from tests.support.databases import (
    PG_URL,
    direct_backends,
    migrated_pg_url,
    opened_direct_backends,
)
from tests.support.waiting import wait_until


@pytest.fixture
def pg() -> Iterator[Database]:
    for url in migrated_pg_url():
        db = Database(url)
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE note (id integer PRIMARY KEY)"))
        yield db
        db.close()


def backend_of(connection: Connection) -> int:
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


async def test_a_write_on_a_dropped_connection_is_made_once_on_a_fresh_one(pg: Database) -> None:
    first = await pg.run_in_transaction(backend_of)
    # What a server restart or failover does to every pooled connection.
    with pg.engine.begin() as admin:
        assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar()

    attempts: list[int] = []

    def _insert(connection: Connection) -> int:
        attempts.append(1)
        connection.execute(text("INSERT INTO note (id) VALUES (1)"))
        return backend_of(connection)

    second = await pg.run_in_transaction(_insert)
    assert second != first and len(attempts) == 2, "the dropped connection's try, then one more"
    with pg.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM note")).scalar_one() == 1


async def test_other_errors_are_not_tried_again(pg: Database) -> None:
    await pg.run_in_transaction(lambda c: c.execute(text("INSERT INTO note (id) VALUES (1)")))
    attempts: list[int] = []

    def _duplicate(connection: Connection) -> None:
        attempts.append(1)
        connection.execute(text("INSERT INTO note (id) VALUES (1)"))

    with pytest.raises(IntegrityError):
        await pg.run_in_transaction(_duplicate)
    assert attempts == [1]


# -- the event loop's own connections ---------------------------------------------------------


async def direct_backend(connection: psycopg.AsyncConnection[Any]) -> int:
    return connection.info.backend_pid


async def test_a_direct_write_on_dropped_connections_is_made_once_on_fresh_ones(
    pg: Database,
) -> None:
    await pg.open_direct_writes()
    try:
        before = await opened_direct_backends(pg)
        # A restart takes every connection, the idle one too (waiting until each has gone).
        with pg.engine.begin() as admin:
            for pid in before:
                admin.execute(text("SELECT pg_terminate_backend(:pid, 60000)"), {"pid": pid})

        attempts: list[int] = []

        async def _insert(connection: psycopg.AsyncConnection[Any]) -> int:
            attempts.append(1)
            await connection.execute("INSERT INTO note (id) VALUES (1)")
            return connection.info.backend_pid

        used = await pg.run_direct(_insert)
        assert len(attempts) == 2, "the dropped connection's try, then one more"
        assert used not in before
        with pg.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM note")).scalar_one() == 1
        # Autocommit: the row was committed by the statement, not left for a COMMIT.
        assert (await pg.run_direct(_insert_elsewhere_sees_it)) == 1
    finally:
        await pg.close_direct_writes()
    # A backend leaves pg_stat_activity a moment after its client has closed the connection.
    await wait_until(lambda: not direct_backends(pg), 30, "the direct connections to close")


async def _insert_elsewhere_sees_it(connection: psycopg.AsyncConnection[Any]) -> int:
    cursor = await connection.execute("SELECT count(*) FROM note")
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_other_direct_errors_are_not_tried_again(pg: Database) -> None:
    await pg.open_direct_writes()
    try:
        attempts: list[int] = []

        async def _duplicate(connection: psycopg.AsyncConnection[Any]) -> None:
            attempts.append(1)
            await connection.execute("INSERT INTO note (id) VALUES (1)")

        await pg.run_direct(_duplicate)
        with pytest.raises(psycopg.errors.UniqueViolation):
            await pg.run_direct(_duplicate)
        assert attempts == [1, 1]
    finally:
        await pg.close_direct_writes()


@pytest.fixture
async def direct(database_url: str) -> AsyncIterator[Database]:
    """A database with a `note` table, writing directly as the server does."""
    db = Database(database_url)
    with db.engine.begin() as connection:
        connection.execute(text("CREATE TABLE note (id integer PRIMARY KEY)"))
    await db.open_direct_writes()
    assert db.writes_directly
    yield db
    await db.close_direct_writes()
    assert not db.writes_directly
    db.close()


def insert_notes(db: Database, *ids: int) -> tuple[str, list[Any]]:
    marks = ", ".join(
        f"(${n})" if db.engine.dialect.name == "postgresql" else "(?)"
        for n in range(1, len(ids) + 1)
    )
    return f"INSERT INTO note (id) VALUES {marks} RETURNING id", list(ids)


def notes(db: Database) -> list[int]:
    with db.engine.connect() as connection:
        return list(connection.execute(text("SELECT id FROM note ORDER BY id")).scalars())


async def test_direct_writes_are_committed_when_they_return(direct: Database) -> None:
    found = await direct.write_directly([insert_notes(direct, 1, 2), insert_notes(direct, 3)])
    assert sorted(found) == [(1,), (2,), (3,)]
    assert notes(direct) == [1, 2, 3], "seen by another connection"


async def test_a_failed_direct_write_leaves_nothing_and_the_next_one_works(
    direct: Database,
) -> None:
    await direct.write_directly([insert_notes(direct, 1)])
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        await direct.write_directly([insert_notes(direct, 2), insert_notes(direct, 1)])
    assert notes(direct) == [1], "the batch's first statement was rolled back with it"
    await direct.write_directly([insert_notes(direct, 2)])
    assert notes(direct) == [1, 2]


async def test_sqlite_writes_directly_but_has_no_loop_connections(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        await db.open_direct_writes()
        assert db.writes_directly
        with pytest.raises(RuntimeError, match="not open"):
            await db.run_direct(direct_backend)
    finally:
        await db.close_direct_writes()
        db.close()


async def test_sqlite_in_memory_keeps_to_sqlalchemy() -> None:
    db = Database("sqlite://")
    try:
        await db.open_direct_writes()
        assert not db.writes_directly
    finally:
        await db.close_direct_writes()
        db.close()


# -- a database that cannot be reached ----------------------------------------------------------


class CountingDatabase(Database):
    """The real Database, counting the direct writes it is asked for."""

    writes = 0

    async def write_directly(self, statements: list[tuple[str, list[Any]]]) -> list[Any]:
        self.writes += 1
        return await super().write_directly(statements)


async def test_an_unreachable_database_fails_a_batch_at_once_not_entry_by_entry() -> None:
    """Each try waits out the connection timeout: the batch's events are all answered with the
    failure after one, not one more try per event while Slack waits."""
    if not PG_URL:
        missing("WARROOM_TEST_DATABASE_URL is not set, so PostgreSQL is not tested here")
    # Nothing listens on port 1: every connection is refused.
    db = CountingDatabase(str(make_url(PG_URL).set(port=1)))
    await db.open_direct_writes()
    timeline = TimelineService(
        db=db,
        people=People(db=db, gateway=SlackGateway(AsyncWebClient(token="xoxb-0"))),
        tasks=BackgroundTasks(),
    )
    # A war room the service has seen before (no read needed), as under load.
    timeline._incident_by_channel["C0ROOM"] = 1
    at = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
    entries = [
        Entry("C0ROOM", "message", at, f"message:C0ROOM:{n}", "U0BO", "Bo", f"update {n}")
        for n in range(6)
    ]
    try:
        results = await asyncio.gather(
            *(timeline.record(entry) for entry in entries), return_exceptions=True
        )
    finally:
        await db.close_direct_writes()
        db.close()
    assert all(is_unreachable(r) for r in results if isinstance(r, BaseException))
    assert all(isinstance(r, BaseException) for r in results), results
    assert db.writes <= 2, f"{db.writes} tries for {len(entries)} events"
