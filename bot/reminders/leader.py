"""Which replica runs the scheduler. On PostgreSQL, the one holding a session-level advisory lock
on a connection of its own; the others try again every few seconds. The lock lives and dies with
that connection: a replica that is killed lets go of it at once, and a replica that loses the
connection stops scheduling before anyone else can have it. On SQLite (one process by design)
the process always leads."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from bot.reminders.scheduler import Clocks
from storage.db import Database, is_sqlite

log = logging.getLogger(__name__)

LEADER = "leader"
FOLLOWER = "follower"
DEFAULT_ELECTION_EVERY = 1.0
# The server ends a lock session idle this long (ms floor): a leader cut off from the database
# without a word loses the lock then, after it has fenced itself (see _hold).
MIN_IDLE_SESSION_MS = 10_000
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


class SchedulerElection:
    """Runs the clocks while this process is elected, and stops them the moment it is not."""

    def __init__(
        self,
        *,
        db: Database,
        clocks: Clocks,
        every: float = DEFAULT_ELECTION_EVERY,
        on_elected: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.db = db
        self.clocks = clocks
        self.every = every
        # Leader-only chores run on each election (resuming war rooms a crash left unopened).
        self.on_elected = on_elected
        # A leader that cannot confirm its lock connection within this long stops scheduling.
        self.ping_timeout = max(2.0, 2 * every)
        self.leading = False
        self.elected_at: float | None = None
        self.key: int | None = None
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._campaign_task: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def role(self) -> str:
        return LEADER if self.leading else FOLLOWER

    async def start(self) -> None:
        """Lead at once on SQLite; on PostgreSQL try now (a lone replica leads before it
        serves), then keep trying in the background."""
        if is_sqlite(self.db.url):
            await self.clocks.start()
            await self._elected()
            return
        await self._round()
        self._campaign_task = asyncio.get_running_loop().create_task(self._campaign())

    async def stop(self) -> None:
        """Stop campaigning and scheduling, let go of the lock for the next replica, then let
        the posts under way finish: another replica may lead while they do (each owed post
        is claimed, each reminder checked against its row), rather than wait on them."""
        if self._campaign_task is not None:
            self._campaign_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._campaign_task
            self._campaign_task = None
        await self.clocks.step_down()
        self.leading = False
        await self._let_go()
        await self.clocks.stop()

    async def _campaign(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self._round()

    async def _round(self) -> None:
        try:
            if self.leading:
                await self._hold()
            else:
                await self._try_to_lead()
        except Exception as exc:
            # The database may be down or restarting: try again next round.
            log.warning("scheduler election: %s: %s", type(exc).__name__, exc)
            if not self.leading:
                # A leader keeps its lock through a failed sync; only the ping decides.
                await self._let_go()

    async def _try_to_lead(self) -> None:
        connection = await self._connect()
        cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (self.key,))
        row = await cursor.fetchone()
        if not row or not row[0]:
            return
        try:
            await self.clocks.start()
        except BaseException:
            await self.clocks.step_down()
            await self._let_go()
            raise
        await self._elected()

    async def _elected(self) -> None:
        self.leading = True
        self.elected_at = time.monotonic()
        log.info("scheduler election: this replica leads and runs the scheduler")
        if self.on_elected is not None:
            await self.on_elected()

    async def _hold(self) -> None:
        """Check that the lock's connection is alive; if it is not (or does not answer in
        time) stop scheduling first, and only then deal with the connection."""
        connection = self._connection
        ping = asyncio.get_running_loop().create_task(self._ping(connection))
        done, _ = await asyncio.wait({ping}, timeout=self.ping_timeout)
        failure = "no answer" if not done else _failure(ping)
        if failure is not None:
            log.warning("scheduler election: lock connection lost (%s): stepping down", failure)
            self.leading = False
            self.elected_at = None
            await self.clocks.step_down()
            if not done:
                # Cancelling a query on a dead connection can take psycopg seconds: not here.
                ping.cancel()
                self._abandoned.add(ping)
                ping.add_done_callback(self._abandoned.discard)
            await self._let_go()
            return
        # Reminder rows that other replicas changed reach this scheduler's jobs here; bounded,
        # so that a slow read never holds up the next ping (and with it the lock session).
        try:
            await asyncio.wait_for(self.clocks.sync(), timeout=self.ping_timeout)
        except TimeoutError:
            log.warning("scheduler election: reminder sync took over %.1fs", self.ping_timeout)

    async def _ping(self, connection: psycopg.AsyncConnection[Any] | None) -> None:
        if connection is None or connection.closed:
            raise ConnectionError("lock connection closed")
        await connection.execute("SELECT 1")

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._connection is not None and not self._connection.closed:
            return self._connection
        self._connection = None
        idle_ms = max(MIN_IDLE_SESSION_MS, int(self.every * 5000))
        connection = await psycopg.AsyncConnection.connect(
            lock_conninfo(self.db.url),
            autocommit=True,
            connect_timeout=max(2, int(self.ping_timeout)),
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
            self.key = election_key(str(row[0]), str(row[1]))
            try:
                await connection.execute(f"SET idle_session_timeout = {idle_ms}")
            except psycopg.errors.UndefinedObject:
                # Before PostgreSQL 14: the server's TCP keepalives end a vanished session.
                log.info("scheduler election: no idle_session_timeout on this server")
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        return connection

    async def _let_go(self) -> None:
        """Close the lock connection; the server releases the lock with the session."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2)


def _failure(ping: asyncio.Task[None]) -> str | None:
    if ping.cancelled():
        return "cancelled"
    exc = ping.exception()
    return None if exc is None else f"{type(exc).__name__}: {exc}"
