"""Which replica runs the scheduler. On PostgreSQL, the one holding a session-level advisory lock
on a connection of its own; the others try again every few seconds. The lock lives and dies with
that connection: a replica that is killed lets go of it at once, and a replica that loses the
connection stops scheduling before anyone else can have it. On SQLite (one process by design)
the process always leads."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.reminders.scheduler import Clocks
from bot.tasks import cancel_and_wait
from storage import election as election_store
from storage.db import Database, is_sqlite

log = logging.getLogger(__name__)

LEADER = "leader"
FOLLOWER = "follower"
DEFAULT_ELECTION_EVERY = 1.0
# The server ends a lock session idle this long (ms floor): a leader cut off from the database
# without a word loses the lock then, after it has fenced itself (see _hold).
MIN_IDLE_SESSION_MS = 10_000


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
        self._lock: election_store.AdvisoryLockConnection | None = None
        self._campaign_task: asyncio.Task[None] | None = None
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def role(self) -> str:
        """`leader` while this process is elected to run the scheduler, else `follower`."""
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

    async def stop(self, *, drain: bool = True) -> None:
        """Stop campaigning and scheduling, let go of the lock for the next replica, then (with
        `drain`) let the posts under way finish: another replica may lead while they do (each
        owed post is claimed, each reminder checked against its row), rather than wait on
        them."""
        if self._campaign_task is not None:
            await cancel_and_wait(self._campaign_task)
            self._campaign_task = None
        await self.clocks.step_down()
        self.leading = False
        await self._let_go()
        await self.clocks.stop(drain=drain)

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
        lock = await self._connect()
        if not await lock.try_lock():
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
        lock = self._lock
        ping = asyncio.get_running_loop().create_task(self._ping(lock))
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

    async def _ping(self, lock: election_store.AdvisoryLockConnection | None) -> None:
        if lock is None:
            raise ConnectionError("lock connection closed")
        await lock.ping()

    async def _connect(self) -> election_store.AdvisoryLockConnection:
        if self._lock is not None and not self._lock.closed:
            return self._lock
        self._lock = None
        lock = await election_store.connect(
            self.db.url,
            connect_timeout=max(2, int(self.ping_timeout)),
            idle_session_ms=max(MIN_IDLE_SESSION_MS, int(self.every * 5000)),
        )
        self.key = lock.key
        if lock.idle_session_ms is None:
            # Before PostgreSQL 14: the server's TCP keepalives end a vanished session.
            log.info("scheduler election: no idle_session_timeout on this server")
        self._lock = lock
        return lock

    async def _let_go(self) -> None:
        """Close the lock connection; the server releases the lock with the session."""
        lock, self._lock = self._lock, None
        if lock is not None and not lock.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(lock.close(), timeout=2)


def _failure(ping: asyncio.Task[None]) -> str | None:
    if ping.cancelled():
        return "cancelled"
    exc = ping.exception()
    return None if exc is None else f"{type(exc).__name__}: {exc}"
