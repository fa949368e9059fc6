"""Real databases for the tests: migrated SQLite files, and fresh PostgreSQL schemas when
WARROOM_TEST_DATABASE_URL names a server."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from storage.db import DIRECT_APPLICATION_NAME, DIRECT_CONNECTIONS, Database
from storage.migrate import upgrade
from tests.support.ci import missing
from tests.support.waiting import wait_until

PG_URL = os.environ.get("WARROOM_TEST_DATABASE_URL")


def pg_schema_url(base: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def migrate(url: str) -> None:
    """Bring the database at `url` to the latest schema."""
    db = Database(url)
    try:
        upgrade(db.engine)
    finally:
        db.close()


def migrated_pg_url(
    reason: str = "WARROOM_TEST_DATABASE_URL is not set, so PostgreSQL is not tested here",
) -> Iterator[str]:
    """A migrated, empty PostgreSQL schema for one test, dropped afterwards; without a server
    configured, `missing(reason)`."""
    if not PG_URL:
        missing(reason)
    for url in pg_schema_url(PG_URL):
        migrate(url)
        yield url


def direct_backends(db: Database) -> set[int]:
    """The server processes of the timeline's direct connections (Database.write_directly)."""
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                "AND datname = current_database()"
            ),
            {"name": DIRECT_APPLICATION_NAME},
        )
        return {int(pid) for (pid,) in rows}


async def opened_direct_backends(db: Database) -> set[int]:
    """`direct_backends` once the pool has opened every one (it opens them in the background)."""
    await wait_until(
        lambda: len(direct_backends(db)) == DIRECT_CONNECTIONS, 60, "the direct connections"
    )
    return direct_backends(db)


@contextmanager
def timeline_writes_failing(sqlite_url: str) -> Iterator[None]:
    """Every timeline insert into the SQLite file fails (as on a full disk) inside the block."""
    database = make_url(sqlite_url).database
    assert database is not None
    with closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "CREATE TRIGGER disk_full BEFORE INSERT ON timeline_event"
            " BEGIN SELECT RAISE(ABORT, 'disk full'); END"
        )
    try:
        yield
    finally:
        with closing(sqlite3.connect(database)) as connection, connection:
            connection.execute("DROP TRIGGER disk_full")
