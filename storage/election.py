"""The scheduler election's lock: a session-level PostgreSQL advisory lock, held on a connection
of its own (autocommit, never pooled) so that it lives and dies with that connection. Who holds
it, and what to do about it, is the election's business (bot.reminders.leader)."""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

APPLICATION_NAME = "warroom-scheduler-election"


def election_key(database: str, schema: str) -> int:
    """The advisory lock key for one database and schema: the replicas of one deployment share
    it; deployments (or test runs) in other schemas of the same database do not."""
    name = f"warroom.scheduler:{database}.{schema}".encode()
    return int.from_bytes(hashlib.blake2b(name, digest_size=8).digest(), "big", signed=True)


def lock_conninfo(database_url: str) -> str:
    """A libpq URL for psycopg from the SQLAlchemy one (driver name dropped, options kept)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class AdvisoryLockConnection:
    """One connection that may hold the election's lock; closing it lets go of the lock."""

    def __init__(
        self, connection: psycopg.AsyncConnection[Any], *, key: int, idle_session_ms: int | None
    ) -> None:
        self._connection = connection
        self.key = key
        # The server's idle_session_timeout on this session; None before PostgreSQL 14.
        self.idle_session_ms = idle_session_ms

    @property
    def closed(self) -> bool:
        """True once the connection is closed, and with it the lock let go."""
        return self._connection.closed

    async def try_lock(self) -> bool:
        """Take the lock if nobody else holds it (True), without waiting."""
        cursor = await self._connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cursor.fetchone()
        return bool(row and row[0])

    async def ping(self) -> None:
        """One round trip on the connection; raises if it is closed or does not work."""
        if self._connection.closed:
            raise ConnectionError("lock connection closed")
        await self._connection.execute("SELECT 1")

    async def close(self) -> None:
        """Close the connection; the server releases the lock with the session."""
        await self._connection.close()


async def connect(
    database_url: str, *, connect_timeout: int, idle_session_ms: int
) -> AdvisoryLockConnection:
    """A fresh lock connection to the database and schema of `database_url`, with TCP
    keepalives, and a server that ends the session once idle `idle_session_ms` (PostgreSQL 14
    and later; before that the keepalives end a vanished session)."""
    connection = await psycopg.AsyncConnection.connect(
        lock_conninfo(database_url),
        autocommit=True,
        connect_timeout=connect_timeout,
        application_name=APPLICATION_NAME,
        keepalives=1,
        keepalives_idle=5,
        keepalives_interval=2,
        keepalives_count=3,
    )
    try:
        cursor = await connection.execute("SELECT current_database(), current_schema()")
        row = await cursor.fetchone()
        assert row is not None
        key = election_key(str(row[0]), str(row[1]))
        idle: int | None = idle_session_ms
        try:
            await connection.execute(f"SET idle_session_timeout = {int(idle_session_ms)}")
        except psycopg.errors.UndefinedObject:
            idle = None
    except BaseException:
        await connection.close()
        raise
    return AdvisoryLockConnection(connection, key=key, idle_session_ms=idle)
