"""The engine and units of work. Storage functions flush; a unit of work commits."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

T = TypeVar("T")
# A row a statement returned, as the driver gives it.
Row = tuple[Any, ...]
# The event loop's own connections to PostgreSQL, for the timeline's batch writes: as many as
# batches the timeline writes at once. Named, so that an operator (or a test) can find them.
DIRECT_CONNECTIONS = 2
DIRECT_APPLICATION_NAME = "warroom-timeline"
# How long a batch waits for one of them (the database being down, say) before it fails, and
# its events are answered 500 for Slack to resend: well inside Slack's 3 s.
DIRECT_CONNECT_TIMEOUT_S = 2.0
# An execution option: on SQLite, begin with a plain (deferred) BEGIN, for readers and for
# single-statement writers that need not queue behind the write lock up front.
DEFERRED_BEGIN = "warroom_deferred_begin"


def is_unreachable(exc: BaseException) -> bool:
    """Whether `exc` says PostgreSQL could not be reached (no connection to be had in time, one
    dropped, the server refusing or restarting) rather than that a write was refused."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc.orig, psycopg.OperationalError)
    return isinstance(exc, psycopg.OperationalError)


def is_sqlite(url: str) -> bool:
    """True when the database URL is SQLite's."""
    return make_url(url).get_backend_name() == "sqlite"


def _with_driver(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def build_engine(url: str, *, pre_ping: bool = True, pool_size: int = 8) -> Engine:
    """An engine for its backend: SQLite in WAL mode with a busy timeout, one writer at a time.
    Elsewhere a pool that pings each connection on checkout unless `pre_ping` is False."""
    parsed = _with_driver(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(
            parsed, pool_pre_ping=pre_ping, pool_size=pool_size, max_overflow=pool_size
        )

    engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin_immediate).
        dbapi_connection.isolation_level = None
        _set_sqlite_pragmas(dbapi_connection)

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Any) -> None:
        # Take the write lock up front: a deferred transaction that later writes can fail with
        # SQLITE_BUSY without waiting, while an immediate one waits out the busy timeout.
        deferred = connection.get_execution_options().get(DEFERRED_BEGIN, False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

    return engine


def _set_sqlite_pragmas(connection: sqlite3.Connection) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # FULL: a commit is on disk before Slack hears 200, even if the machine loses power.
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_connect(url: str) -> sqlite3.Connection:
    """A plain connection to the SQLite file, set up as the engine's are; transactions are
    begun and ended by hand (isolation_level None)."""
    database = make_url(url).database
    assert database, "a SQLite file, not a database in memory"
    connection = sqlite3.connect(
        database, timeout=30, isolation_level=None, check_same_thread=False
    )
    _set_sqlite_pragmas(connection)
    return connection


async def _write_postgresql(
    connection: psycopg.AsyncConnection[Any], statements: list[tuple[str, list[Any]]]
) -> list[Row]:
    found: list[Row] = []
    async with psycopg.AsyncRawCursor(connection) as cursor:
        if len(statements) == 1:
            # Autocommit: one statement is its own transaction.
            await cursor.execute(*statements[0])
            return list(await cursor.fetchall())
        async with connection.transaction():
            for sql, params in statements:
                await cursor.execute(sql, params)
                found += await cursor.fetchall()
    return found


class Database:
    """One engine and the thread pool that keeps blocking database calls off the event loop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = build_engine(url)
        # The timeline's batch writes skip the pool's ping (a round trip and a fifth of the
        # writer thread under load on PostgreSQL): a dropped connection is found by the write
        # itself instead, and the write is tried once more on a fresh one (run_in_transaction).
        self._batch_engine = (
            self.engine if is_sqlite(url) else build_engine(url, pre_ping=False, pool_size=2)
        )
        # SQLite takes one writer at a time anyway; more threads would only queue on its lock.
        workers = 1 if is_sqlite(url) else 8
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")
        # Opened by the server while it runs (open_direct_writes); None otherwise.
        self._direct: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._sqlite_direct = False
        self._sqlite_connection: sqlite3.Connection | None = None

    @property
    def engines(self) -> tuple[Engine, ...]:
        """Every engine this database writes through: units of work, and the batch writes."""
        if self._batch_engine is self.engine:
            return (self.engine,)
        return (self.engine, self._batch_engine)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session that commits when the block ends and rolls back if it raises."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only session: on SQLite it reads a snapshot and never holds up writers."""
        engine = self.deferred_engine()
        # Leaving the block closes the session: that ends the transaction without expiring what
        # was read (a rollback would), so rows stay readable afterwards as after a unit of work.
        with Session(engine, expire_on_commit=False) as session:
            yield session

    async def run(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one unit of work on the database thread pool."""

        def _in_unit_of_work() -> T:
            with self.unit_of_work() as session:
                return work(session)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _in_unit_of_work)

    async def run_in_transaction(self, work: Callable[[Connection], T]) -> T:
        """Run `work` on a bare connection in one transaction, on the database thread pool: no
        ORM session to set up and tear down, for the hot paths that write rows by the batch."""

        def _in_transaction() -> T:
            try:
                with self._batch_engine.begin() as connection:
                    return work(connection)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
            # The connection had gone (a database restart, a failover): SQLAlchemy has thrown
            # the pool's stale connections away, so this attempt gets a fresh one.
            with self._batch_engine.begin() as connection:
                return work(connection)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, _in_transaction)

    async def open_direct_writes(self) -> None:
        """Open what `write_directly` writes through: on PostgreSQL the event loop's own
        connections (for `run_direct` too), on SQLite a connection of the database thread's
        own. Call from the loop that will use them."""
        if is_sqlite(self.url):
            # A database in memory lives in its one connection: it keeps SQLAlchemy's.
            self._sqlite_direct = make_url(self.url).database not in (None, "", ":memory:")
            return
        if self._direct is not None:
            return
        conninfo = _with_driver(self.url).set(drivername="postgresql")
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            conninfo.render_as_string(hide_password=False),
            kwargs={"autocommit": True, "application_name": DIRECT_APPLICATION_NAME},
            min_size=DIRECT_CONNECTIONS,
            max_size=DIRECT_CONNECTIONS,
            timeout=DIRECT_CONNECT_TIMEOUT_S,
            name="timeline",
            open=False,
        )
        # Not waiting for the connections: a database that is down must not stop the server
        # from starting (its events are answered 500 and resent, as with the thread pool).
        await pool.open(wait=False)
        self._direct = pool

    @property
    def writes_directly(self) -> bool:
        """Whether `write_directly` may be used: the server opened its direct connections."""
        return self._direct is not None or self._sqlite_direct

    async def write_directly(self, statements: list[tuple[str, list[Any]]]) -> list[Row]:
        """Run `INSERT ... RETURNING` statements (in the driver's own placeholders: `$n` on
        PostgreSQL, `?` on SQLite) in one transaction, committed when this returns; their rows.
        Past SQLAlchemy, which cost the timeline's batches more than their writes: on
        PostgreSQL on the event loop's own connection, on SQLite on the database thread's."""
        if self._sqlite_direct:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, partial(self._write_sqlite, statements)
            )
        return await self.run_direct(partial(_write_postgresql, statements=statements))

    def _write_sqlite(self, statements: list[tuple[str, list[Any]]]) -> list[Row]:
        # On the database thread, the only one to use this connection.
        if self._sqlite_connection is None:
            self._sqlite_connection = _sqlite_connect(self.url)
        connection = self._sqlite_connection
        found: list[Row] = []
        connection.execute("BEGIN IMMEDIATE")  # the write lock up front, as _begin_immediate
        try:
            for sql, params in statements:
                found += connection.execute(sql, params).fetchall()
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return found

    async def run_direct(self, work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run `work` on one of the event loop's own autocommit connections (each statement
        commits on its own): no thread to hand the work to and back, which cost the timeline's
        batch writes more than the writes. Tried once more when the server had dropped the
        connection (a restart, a failover), after the pool has thrown its dead ones away."""
        pool = self._direct
        if pool is None:
            raise RuntimeError("the direct connections are not open (open_direct_writes)")
        connection: psycopg.AsyncConnection[Any] | None = None
        try:
            async with pool.connection() as connection:
                return await work(connection)
        except psycopg.OperationalError:
            # Not a dropped connection (no connection to be had in time, say): as it is.
            if connection is None or not connection.broken:
                raise
        # The other pooled connection went with the same restart: check both before the retry.
        await pool.check()
        async with pool.connection() as connection:
            return await work(connection)

    async def close_direct_writes(self) -> None:
        """Close the connections `open_direct_writes` opened (the server, when it stops)."""
        pool, self._direct = self._direct, None
        if pool is not None:
            await pool.close()
        if self._sqlite_direct:
            self._sqlite_direct = False
            # On the database thread, after the writes queued before it.
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close_sqlite)

    def _close_sqlite(self) -> None:
        connection, self._sqlite_connection = self._sqlite_connection, None
        if connection is not None:
            connection.close()

    def deferred_engine(self) -> Engine:
        """The engine, beginning transactions the deferred way (APScheduler's job store)."""
        return self.engine.execution_options(**{DEFERRED_BEGIN: True})

    def ping(self) -> None:
        """Run `SELECT 1`; raises if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def close(self) -> None:
        """Wait for the database threads to finish, then close every pooled connection (the
        direct ones are closed before, by `close_direct_writes`)."""
        self._executor.shutdown(wait=True)
        self.engine.dispose()
        self._batch_engine.dispose()
