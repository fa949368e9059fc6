"""Timeline events: written once however often Slack delivers them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from storage.models import TimelineEvent
from storage.sql import insert_for


def thread_start(thread_ts: str | None, at: datetime) -> datetime:
    """When an event's thread began: its parent's ts for a reply, else the event itself."""
    return datetime.fromtimestamp(float(thread_ts), tz=UTC) if thread_ts else at


def add_event(
    session: Session,
    *,
    incident_id: int,
    kind: str,
    at: datetime,
    actor_id: str | None = None,
    actor_name: str | None = None,
    text: str | None = None,
    slack_ts: str | None = None,
    thread_ts: str | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> bool:
    """Insert one event; False when an event with the same dedupe key is already stored."""
    values = {
        "incident_id": incident_id,
        "kind": kind,
        "at": at,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "text": text,
        "slack_ts": slack_ts,
        "thread_ts": thread_ts,
        "thread_at": thread_start(thread_ts, at),
        "data": data or {},
        "dedupe_key": dedupe_key,
    }
    # ON CONFLICT DO NOTHING rather than check-then-insert: two replicas given the same
    # redelivery at once must not both write it. RETURNING tells which happened; rowcount
    # cannot (SQLAlchemy leaves it at -1 for an INSERT on psycopg).
    statement = insert_for(session, TimelineEvent).values(**values).returning(col(TimelineEvent.id))
    if dedupe_key is not None:
        statement = statement.on_conflict_do_nothing(index_elements=["dedupe_key"])
    return session.execute(statement).first() is not None


def add_events(db: Session | Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many events in one statement (group commit); the dedupe keys that were new.
    Each row has the keyword arguments of `add_event`; rows must carry distinct dedupe keys."""
    if not rows:
        return set()
    columns = (
        "incident_id",
        "kind",
        "at",
        "actor_id",
        "actor_name",
        "text",
        "slack_ts",
        "thread_ts",
        "data",
        "dedupe_key",
    )
    # The Core table, not the ORM entity: the ORM's bulk-insert bookkeeping cost more per row
    # than the insert itself, on the thread every acknowledged event waits for.
    table = TimelineEvent.__table__  # type: ignore[attr-defined]
    statement = (
        insert_for(db, table)
        .on_conflict_do_nothing(index_elements=["dedupe_key"])
        .returning(table.c.dedupe_key)
    )
    # In key order: two batches that share a key (a redelivery racing its original) then take
    # the unique index's locks in the same order on PostgreSQL, and cannot deadlock.
    rows = sorted(rows, key=lambda row: str(row["dedupe_key"]))
    params = [
        {name: row.get(name) for name in columns}
        | {
            "data": row.get("data") or {},
            "thread_at": thread_start(row.get("thread_ts"), row["at"]),
        }
        for row in rows
    ]
    connection = db.connection() if isinstance(db, Session) else db
    result = connection.execute(statement, params)
    return {key for key in result.scalars() if key is not None}


def events_for(
    session: Session, *, incident_id: int, threaded: bool = False
) -> Iterator[TimelineEvent]:
    """The incident's events in time order, streamed rather than loaded whole; `threaded` puts
    each thread reply right after its parent (and its earlier siblings) instead."""
    order = [col(TimelineEvent.at), col(TimelineEvent.id)]
    if threaded:
        order.insert(0, col(TimelineEvent.thread_at))
    statement = (
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(*order)
        .execution_options(yield_per=1000)
    )
    yield from session.exec(statement)


def message_text(session: Session, *, incident_id: int, slack_ts: str) -> str | None:
    """The last known text of a message, for an edit or deletion that arrives without it."""
    row = session.exec(
        select(TimelineEvent.text)
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.slack_ts == slack_ts)
        .where(col(TimelineEvent.kind).in_(("message", "message_edited")))
        .order_by(col(TimelineEvent.id).desc())
    ).first()
    return row


def message_event(session: Session, *, incident_id: int, slack_ts: str) -> TimelineEvent | None:
    """The latest record of a message (its post or last edit), for marks that carry only a ts."""
    return session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.slack_ts == slack_ts)
        .where(col(TimelineEvent.kind).in_(("message", "message_edited")))
        .order_by(col(TimelineEvent.id).desc())
    ).first()


def fill_actor_name(session: Session, *, actor_id: str, name: str) -> None:
    """Name the events recorded before the actor's name was known."""
    session.execute(
        update(TimelineEvent)
        .where(col(TimelineEvent.actor_id) == actor_id)
        .where(col(TimelineEvent.actor_name).is_(None))
        .values(actor_name=name)
    )


def events_of_kinds(
    session: Session, *, incident_id: int, kinds: tuple[str, ...]
) -> list[TimelineEvent]:
    """The few events of some kinds (status changes, say), in time order."""
    return list(
        session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.incident_id == incident_id)
            .where(col(TimelineEvent.kind).in_(kinds))
            .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
        )
    )
