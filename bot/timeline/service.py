"""Recording what happens in a war room: each entry is stored once, however often Slack
redelivers it, and committed before Slack hears back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import Connection
from sqlmodel import Session

from bot.incidents.people import People
from bot.tasks import BackgroundTasks
from bot.timeline.entries import Entry, ts_to_datetime
from storage import incidents as incident_store
from storage import members as member_store
from storage import timeline as timeline_store
from storage import webhooks as webhook_store
from storage.db import Database, is_sqlite, is_unreachable

MAX_BATCH = 200
# Batches written at once. SQLite has one writer anyway. On PostgreSQL a second batch is
# inserted while the first waits for its commit to reach the disk, so that a busy war room
# does not wait a whole commit before its next batch starts.
WRITERS_SQLITE = 1
WRITERS_OTHER = 2


@dataclass
class _Pending:
    entry: Entry
    done: asyncio.Future[bool]


class TimelineService:
    """Writes entries with group commit: events that arrive while the transactions in flight
    commit wait for the next one and share it, so a burst costs a few commits, not one per
    event. Each caller still returns only after its own entry is committed."""

    def __init__(self, *, db: Database, people: People, tasks: BackgroundTasks) -> None:
        self.db = db
        self.people = people
        self.tasks = tasks
        # Incident channels never change incident, so the lookup is kept once found.
        self._incident_by_channel: dict[str, int] = {}
        self._naming: dict[str, asyncio.Lock] = {}
        self._queue: list[_Pending] = []
        self._writers: set[asyncio.Task[None]] = set()
        self._most_writers = WRITERS_SQLITE if is_sqlite(db.url) else WRITERS_OTHER

    def known_war_room(self, channel_id: str) -> bool:
        """Whether the channel is already known to be a war room (no database read)."""
        return channel_id in self._incident_by_channel

    async def record(self, entry: Entry) -> bool:
        """Store `entry` if its channel is a war room; True when it was new. Returns once the
        entry is committed, so the caller may then tell Slack the event was received."""
        pending = _Pending(entry, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        # A writer that has returned is done at once (a done callback would come later): one
        # still running takes what is queued before it returns.
        self._writers = {writer for writer in self._writers if not writer.done()}
        if len(self._writers) < self._most_writers:
            self._writers.add(asyncio.create_task(self._write_queued()))
        return await pending.done

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            entries = [p.entry for p in batch]
            try:
                results = await self._write(entries)
            except Exception as exc:
                if len(batch) == 1 or is_unreachable(exc):
                    # An unreachable database fails them all alike, and at once: one at a time,
                    # each would wait out the connection timeout again while Slack waits.
                    for pending in batch:
                        pending.done.set_exception(exc)
                    continue
                # One bad entry must not fail its neighbours: store them one at a time.
                for pending in batch:
                    try:
                        [result] = await self._write([pending.entry])
                    except Exception as exc:
                        pending.done.set_exception(exc)
                    else:
                        self._settle(pending, result)
                continue
            for pending, result in zip(batch, results, strict=True):
                self._settle(pending, result)

    async def _write(self, entries: list[Entry]) -> list[tuple[bool, bool]]:
        """Store a batch; per entry, (new, stored without a name). A batch that needs no read
        (war rooms, names and edits already in memory) and owes no webhook is written past
        SQLAlchemy (on PostgreSQL from the event loop itself); anything else takes a unit of
        work on the database threads."""
        wanted = webhook_store.subscribed_kinds(self.db.engine)
        rows = None
        if self.db.writes_directly and not any(entry.kind in wanted for entry in entries):
            rows = self._rows(entries, session=None)
        if rows is None:
            return await self.db.run_in_transaction(partial(self._store, entries=entries))
        written = [row for row in rows if row is not None]
        return _outcomes(rows, await timeline_store.add_events_directly(self.db, written))

    def _rows(
        self, entries: list[Entry], session: Callable[[], Session] | None
    ) -> list[dict[str, Any] | None] | None:
        """Each entry's row (None: outside a war room, or a repeat within the batch). What
        memory does not know is read through `session`; without one, the whole answer is None
        as soon as something would have to be read."""
        rows: list[dict[str, Any] | None] = []
        seen: set[str] = set()
        for entry in entries:
            incident_id = self._incident_by_channel.get(entry.channel_id)
            # An edit or deletion that arrives without the old text: it is on the timeline.
            reads_text = bool(entry.previous_ts) and "previous_text" not in entry.data
            name, named = entry.actor_name, True
            if name is None and entry.actor_id:
                named, name = self.people.name_in_memory(entry.actor_id)
            if session is None:
                if incident_id is None or reads_text or not named:
                    return None
            elif incident_id is None:
                incident_id = self._incident_id(session(), entry.channel_id)
            if incident_id is None or entry.dedupe_key in seen:
                rows.append(None)
                continue
            seen.add(entry.dedupe_key)
            data = dict(entry.data)
            if session is not None and reads_text:
                assert entry.previous_ts is not None
                data["previous_text"] = timeline_store.message_text(
                    session(), incident_id=incident_id, slack_ts=entry.previous_ts
                )
            if session is not None and not named:
                assert entry.actor_id is not None
                name = self.people.known_name(session(), entry.actor_id)
            rows.append(_row(entry, incident_id, name, data))
        return rows

    def _settle(self, pending: _Pending, result: tuple[bool, bool]) -> None:
        stored, unnamed = result
        actor = pending.entry.actor_id
        if unnamed and actor and actor.startswith(("U", "W")):
            # Off the ack path: the name is looked up after Slack has its 200.
            self.tasks.spawn(self._name_actor(actor))
        if not pending.done.done():
            pending.done.set_result(stored)

    def _store(self, connection: Connection, entries: list[Entry]) -> list[tuple[bool, bool]]:
        """Insert the entries of war-room channels; per entry, (new, stored without a name)."""
        # A session only for what the caches don't know yet: in a busy war room every lookup
        # hits memory, and the batch is one INSERT on the connection.
        sessions: list[Session] = []

        def session() -> Session:
            if not sessions:
                sessions.append(Session(bind=connection, expire_on_commit=False))
            return sessions[0]

        rows = self._rows(entries, session)
        assert rows is not None, "with a session, what memory lacks is read"
        for opened in sessions:
            opened.close()
        written = [row for row in rows if row is not None]
        return _outcomes(rows, timeline_store.add_events(connection, written))

    async def _name_actor(self, actor_id: str) -> None:
        """Learn the actor's name (one users.info per person) and put it on the entries that
        were recorded without it. The fill runs again here, after this entry's commit: the one
        inside `learn` can run beside a unit of work still writing an unnamed entry (PostgreSQL
        runs them in parallel) and miss it. The lock makes later entries wait for the first."""
        async with self._naming.setdefault(actor_id, asyncio.Lock()):
            await self.people.learn(actor_id)
            name = await self.people.cached_name(actor_id)
            if name is None:
                return

            def _fill(session: Session) -> None:
                timeline_store.fill_actor_name(session, actor_id=actor_id, name=name)

            await self.db.run(_fill)

    def _incident_id(self, session: Session, channel_id: str) -> int | None:
        cached = self._incident_by_channel.get(channel_id)
        if cached is not None:
            return cached
        incident = incident_store.incident_by_channel(session, channel_id=channel_id)
        if incident is None or incident.id is None:
            return None
        self._incident_by_channel[channel_id] = incident.id
        return incident.id

    async def note_membership(
        self, *, channel_id: str, user_id: str, joined: bool, at: datetime
    ) -> None:
        """Keep the war room's member list as Slack reports it: who may see a private
        incident outside its room. Events outside war rooms change nothing."""

        def _note(session: Session) -> None:
            incident_id = self._incident_id(session, channel_id)
            if incident_id is None:
                return
            if joined:
                member_store.add_members(
                    session, incident_id=incident_id, user_ids=[user_id], at=at
                )
            else:
                member_store.remove_member(session, incident_id=incident_id, user_id=user_id)

        await self.db.run(_note)

    async def mark_key_event(self, mark: KeyMark) -> KeyMarkResult:
        """Record a marked message as a key event, once per message however often it is marked
        (shortcut, pin, reaction, or Slack redelivering any of them)."""

        def _mark(session: Session) -> tuple[KeyMarkResult, str | None]:
            incident = incident_store.incident_by_channel(session, channel_id=mark.channel_id)
            if incident is None or incident.id is None:
                return KeyMarkResult(KeyMarkOutcome.NOT_WAR_ROOM), None
            ref = f"INC-{incident.number}"
            if mark.message_ts == incident.header_ts:
                return KeyMarkResult(KeyMarkOutcome.HEADER, ref), None
            # A reaction carries only the message's ts: its text and thread come from the
            # timeline, which recorded the message when it was posted (or last edited).
            known = timeline_store.message_event(
                session, incident_id=incident.id, slack_ts=mark.message_ts
            )
            author_id = mark.author_id or (known.actor_id if known else None)
            author_name = known.actor_name if known and known.actor_id == author_id else None
            if author_name is None and author_id:
                author_name = self.people.known_name(session, author_id)
            actor_name = self.people.known_name(session, mark.marked_by)
            thread_ts = mark.thread_ts or (known.thread_ts if known else None)
            data: dict[str, Any] = {"via": mark.via, "author_id": author_id}
            if author_name:
                data["author_name"] = author_name
            if mark.reaction:
                data["reaction"] = mark.reaction
            stored = timeline_store.add_event(
                session,
                incident_id=incident.id,
                kind="key_event",
                # The message's own time, so the key event sits beside it in the timeline.
                at=ts_to_datetime(mark.message_ts),
                actor_id=mark.marked_by,
                actor_name=actor_name,
                text=mark.text if mark.text is not None else (known.text if known else None),
                slack_ts=mark.message_ts,
                # A thread's parent carries its own ts as thread_ts: it is no reply.
                thread_ts=None if thread_ts == mark.message_ts else thread_ts,
                data=data,
                dedupe_key=f"key:{mark.channel_id}:{mark.message_ts}",
            )
            outcome = KeyMarkOutcome.MARKED if stored else KeyMarkOutcome.ALREADY_MARKED
            return KeyMarkResult(outcome, ref), None if actor_name else mark.marked_by

        result, unnamed = await self.db.run(_mark)
        if unnamed and unnamed.startswith(("U", "W")):
            # Off the ack path, as for messages: the name is learned after Slack has its 200.
            self.tasks.spawn(self._name_actor(unnamed))
        return result


def _row(entry: Entry, incident_id: int, name: str | None, data: dict[str, Any]) -> dict[str, Any]:
    """The timeline row an entry becomes (storage.timeline.add_event's arguments)."""
    return {
        "incident_id": incident_id,
        "kind": entry.kind,
        "at": entry.at,
        "actor_id": entry.actor_id,
        "actor_name": name,
        "text": entry.text,
        "slack_ts": entry.slack_ts,
        "thread_ts": entry.thread_ts,
        "data": data,
        "dedupe_key": entry.dedupe_key,
    }


def _outcomes(rows: list[dict[str, Any] | None], inserted: set[str]) -> list[tuple[bool, bool]]:
    """Per row, (new, stored without a name); (False, False) where no row was written."""
    return [
        (row["dedupe_key"] in inserted, _unnamed(row)) if row else (False, False) for row in rows
    ]


def _unnamed(row: dict[str, Any]) -> bool:
    """Whether a row names an actor without the actor's name (to be learned after the ack)."""
    return row["actor_name"] is None and row["actor_id"] is not None


class KeyMarkOutcome(StrEnum):
    """What marking a message came to: marked, marked before, not a war room, or the header."""

    MARKED = "marked"
    ALREADY_MARKED = "already_marked"
    NOT_WAR_ROOM = "not_war_room"
    # warroom's own header message: it is the declaration, already on the timeline.
    HEADER = "header"


@dataclass(frozen=True)
class KeyMark:
    """A war-room message someone marked as a key event: by shortcut, pin or reaction."""

    channel_id: str
    message_ts: str
    marked_by: str
    via: str
    author_id: str | None = None
    # None when the mark does not carry the text (a reaction): the timeline's copy is used.
    text: str | None = None
    thread_ts: str | None = None
    reaction: str | None = None


@dataclass(frozen=True)
class KeyMarkResult:
    """What marking a message came to, and the incident's ref when it is in a war room."""

    outcome: KeyMarkOutcome
    incident_ref: str | None = None
