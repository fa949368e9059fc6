"""Back-fill: read each war room's Slack history since its last recorded message and record what
the timeline lacks, exactly as the live events would have. Runs in the background on the leader
(when it starts or is elected) and from `warroom backfill`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.backfill.plan import (
    THREAD_REACH,
    entries_to_record,
    history_start,
    slack_ts,
    threads_to_read,
)
from bot.errors import NotFoundError, UsageError, WarroomError
from bot.metrics import Metrics
from bot.slack.gateway import CONNECTION_ERRORS, SlackGateway
from bot.tasks import cancel_and_wait
from bot.timeline.service import TimelineService
from storage import backfill as backfill_store
from storage import incidents as incident_store
from storage.db import Database
from storage.models import Incident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Room:
    """A war room to read, as the back-fill needs it (no live ORM object across awaits)."""

    incident_id: int
    number: int
    channel_id: str
    start: datetime
    known_threads: tuple[str, ...]


@dataclass(frozen=True)
class BackfillReport:
    """What one war room's back-fill read and recorded, or why it failed."""

    number: int
    since: datetime
    messages_read: int = 0
    threads_read: int = 0
    messages_recorded: int = 0
    edits_recorded: int = 0
    error: str | None = None

    def summary(self) -> str:
        """One line for people: what was read and recorded."""
        if self.error is not None:
            return f"INC-{self.number}: back-fill failed ({self.error})"
        return (
            f"INC-{self.number}: read {self.messages_read} messages and {self.threads_read} "
            f"threads since {self.since:%Y-%m-%d %H:%M:%S}Z; recorded "
            f"{self.messages_recorded} messages and {self.edits_recorded} edits"
        )


class BackfillService:
    """Recovers the messages posted in war rooms while warroom was not listening."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        timeline: TimelineService,
        own_ids: Callable[[], Awaitable[frozenset[str]]],
        window: timedelta,
        clock: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.timeline = timeline
        self.own_ids = own_ids
        self.window = window
        self.clock = clock
        self.metrics = metrics
        self._running: asyncio.Task[None] | None = None

    async def start(self, *, still_leading: Callable[[], bool] = lambda: True) -> None:
        """Back-fill every war room in the background (never on an ack path), unless a run is
        under way; it stops between war rooms once `still_leading()` says no. Where each room's
        reading starts is settled before this returns, while the leader takes no requests yet:
        a late Slack retry recorded after that must not move the start past what was missed."""
        if self._running is not None and not self._running.done():
            return
        try:
            rooms = await self._plan(number=None, since=None)
        except Exception as exc:
            log.warning("back-fill not started: %s: %s", type(exc).__name__, exc)
            return
        self._running = asyncio.get_running_loop().create_task(self._run(rooms, still_leading))

    async def wait(self) -> None:
        """Wait for the background run under way, if any."""
        if self._running is not None:
            await asyncio.gather(self._running, return_exceptions=True)

    async def stop(self) -> None:
        """Cancel the background run under way; what it recorded stays recorded."""
        if self._running is not None and not self._running.done():
            await cancel_and_wait(self._running)

    async def _run(self, rooms: list[_Room], still_leading: Callable[[], bool]) -> None:
        try:
            await self._read(rooms, still_leading)
        except Exception as exc:
            log.warning("back-fill stopped: %s: %s", type(exc).__name__, exc)

    async def backfill(
        self,
        *,
        number: int | None = None,
        since: timedelta | None = None,
        still_leading: Callable[[], bool] = lambda: True,
    ) -> list[BackfillReport]:
        """Back-fill incident `number` (any status), or every war room that is open or was
        resolved within the window; from `since` ago when given, else from a little before
        each room's newest recorded message. One report per war room."""
        return await self._read(await self._plan(number=number, since=since), still_leading)

    async def _plan(self, *, number: int | None, since: timedelta | None) -> list[_Room]:
        started = self.clock()
        return await self.db.run(
            lambda session: self._rooms(session, number=number, since=since, started=started)
        )

    async def _read(
        self, rooms: list[_Room], still_leading: Callable[[], bool]
    ) -> list[BackfillReport]:
        if not rooms:
            return []
        try:
            own_ids = await self.own_ids()
        except Exception as exc:  # Slack's own error types stay in the Slack edge
            raise WarroomError(f"Slack did not say who the bot is ({type(exc).__name__})") from exc
        reports = []
        for room in rooms:
            if not still_leading():
                log.info("back-fill: no longer the leader; the next leader carries on")
                break
            report = await self._backfill_room(room, own_ids)
            reports.append(report)
            if report.error is None:
                log.info("back-fill %s", report.summary())
            else:
                log.warning("back-fill %s", report.summary())
        return reports

    def _rooms(
        self, session: Session, *, number: int | None, since: timedelta | None, started: datetime
    ) -> list[_Room]:
        if number is not None:
            incident = incident_store.incident_by_number(session, number=number)
            if incident is None:
                raise NotFoundError(f"INC-{number} does not exist")
            if not incident.channel_id:
                raise UsageError(f"INC-{number} has no war room yet")
            incidents: list[Incident] = [incident]
        else:
            incidents = list(
                backfill_store.incidents_to_backfill(session, resolved_since=started - self.window)
            )
        rooms = []
        for incident in incidents:
            assert incident.id is not None and incident.channel_id is not None
            # Only messages recorded before this run began: a live one recorded since then
            # (warroom is back) says nothing of what was missed before it.
            newest = backfill_store.newest_message_at(
                session, incident_id=incident.id, before=started
            )
            start = history_start(
                newest_message_at=newest,
                declared_at=incident.declared_at,
                now=started,
                since=since,
            )
            known = backfill_store.threads_active_since(
                session, incident_id=incident.id, since=start - THREAD_REACH
            )
            rooms.append(
                _Room(incident.id, incident.number, incident.channel_id, start, tuple(known))
            )
        return rooms

    async def _backfill_room(self, room: _Room, own_ids: frozenset[str]) -> BackfillReport:
        oldest = slack_ts(room.start)
        try:
            history = await self.gateway.channel_history(room.channel_id, oldest=oldest)
            threads = threads_to_read(history, oldest=oldest, known=room.known_threads)
            messages = list(history)
            for thread_ts in threads:
                replies = await self.gateway.thread_replies(
                    room.channel_id, thread_ts, oldest=oldest
                )
                # The parent comes first whatever `oldest` says: only what is in range counts.
                messages.extend(r for r in replies if r.get("ts") != thread_ts)
        except WarroomError as exc:
            return BackfillReport(room.number, room.start, error=exc.message.rstrip("."))
        except CONNECTION_ERRORS as exc:  # Slack unreachable, after the client's retries
            return BackfillReport(room.number, room.start, error=f"{type(exc).__name__}: {exc}")

        def _recorded(session: Session) -> dict[str, backfill_store.RecordedText]:
            return backfill_store.recorded_texts(
                session,
                incident_id=room.incident_id,
                slack_ts=(str(m["ts"]) for m in messages),
                posted_since=room.start,
            )

        recorded = await self.db.run(_recorded)
        entries = entries_to_record(room.channel_id, messages, recorded, own_ids=own_ids)
        # All at once: the timeline writes them in a few group commits. A live event or a late
        # Slack retry racing one of them has the same dedupe key: one of the two is stored.
        stored = await asyncio.gather(*(self.timeline.record(entry) for entry in entries))
        new_kinds = [entry.kind for entry, new in zip(entries, stored, strict=True) if new]
        if self.metrics is not None:
            for kind in new_kinds:
                self.metrics.backfilled_events.labels(kind=kind).inc()
        return BackfillReport(
            room.number,
            room.start,
            messages_read=len(messages),
            threads_read=len(threads),
            messages_recorded=new_kinds.count("message"),
            edits_recorded=new_kinds.count("message_edited"),
        )
