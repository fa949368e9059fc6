"""The timeline's batch writes (`Database.run_in_transaction`) skip the pool's ping on
PostgreSQL: a connection the server dropped is found by the write itself, which is then tried
once more on a fresh connection, so a database restart costs no event its 200."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from tests.support.ci import missing
from tests.support.databases import PG_URL, migrate, pg_schema_url


@pytest.fixture
def pg() -> Iterator[Database]:
    if not PG_URL:
        missing("WARROOM_TEST_DATABASE_URL is not set, so PostgreSQL is not tested here")
    for url in pg_schema_url(PG_URL):
        migrate(url)
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
