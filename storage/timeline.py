"""Timeline events: written once however often Slack delivers them."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from sqlalchemy import func, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import StatementError
from sqlmodel import Session, col, select

from storage import webhooks as webhook_store
from storage.db import Database, is_sqlite
from storage.models import TimelineEvent


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
    row = {
        "incident_id": incident_id,
        "kind": kind,
        "at": at,
        "actor_id": actor_id,
        "actor_name": actor_name,
        "text": text,
        "slack_ts": slack_ts,
        "thread_ts": thread_ts,
        "data": data,
        "dedupe_key": dedupe_key,
    }
    # The batch insert's SQL, through the driver: a declaration writes three events in its
    # unit of work, and SQLAlchemy's ORM-enabled INSERT cost more than the statements.
    # ON CONFLICT DO NOTHING rather than check-then-insert: two replicas given the same
    # redelivery at once must not both write it. Without a key nothing conflicts (NULLs are
    # distinct in a unique index), so the row is always new.
    new = add_events(session, [row])
    return dedupe_key is None or dedupe_key in new


# The columns a batch insert writes, in the order of its VALUES tuples.
_BATCH_COLUMNS = (
    "incident_id",
    "kind",
    "at",
    "actor_id",
    "actor_name",
    "text",
    "slack_ts",
    "thread_ts",
    "thread_at",
    "data",
    "dedupe_key",
)
# Rows per statement: well under SQLite's limit on bound parameters (32,766).
_ROWS_PER_STATEMENT = 500


def add_events(db: Session | Connection, rows: list[dict[str, Any]]) -> set[str]:
    """Insert many events (group commit); the dedupe keys that were new. Each row has the
    keyword arguments of `add_event`; rows must carry distinct dedupe keys.

    This is the path every acknowledged Slack event waits on, so it runs one multi-row
    `INSERT ... ON CONFLICT DO NOTHING RETURNING` (the same SQL on SQLite and PostgreSQL)
    through the driver, inside the caller's SQLAlchemy transaction: measured, SQLAlchemy's own
    statement execution cost more than the insert and the commit together. Values still go
    through the columns' SQLAlchemy types (UTC datetimes, JSON), so rows read back the same."""
    if not rows:
        return set()
    if isinstance(db, Session):
        db.flush()  # the driver does not see objects the session has yet to write
    connection = db.connection() if isinstance(db, Session) else db
    driver: Any = connection.connection.driver_connection
    # On PostgreSQL a cursor taking its native `$n` placeholders: psycopg re-parses a `%s`
    # query with more than 50 parameters on every execute (measured: most of the writer
    # thread's time), while a raw query is sent as it is.
    raw = isinstance(driver, psycopg.Connection)
    cursor = psycopg.RawCursor(driver) if raw else driver.cursor()
    new: set[str] = set()
    wanted = webhook_store.subscribed_kinds(connection.engine)
    owed: list[int] = []
    try:
        for sql, params in _insert_statements(connection.dialect, raw, rows):
            cursor.execute(sql, params)
            for event_id, kind, key in cursor.fetchall():
                if key is not None:
                    new.add(key)
                if kind in wanted:
                    owed.append(event_id)
    finally:
        cursor.close()
    if owed:
        # In this transaction: a rolled-back event owes nothing, a committed one is not lost.
        webhook_store.enqueue_for_events(connection, owed)
    return new


async def add_events_directly(db: Database, rows: list[dict[str, Any]]) -> set[str]:
    """As `add_events`, in a transaction of its own past SQLAlchemy (`write_directly`),
    committed when this returns. Only for rows of kinds no webhook wants: the deliveries they
    would owe are enqueued in the transaction that writes them, which is add_events'."""
    statements = list(_insert_statements(db.engine.dialect, not is_sqlite(db.url), rows))
    return {key for _, _, key in await db.write_directly(statements) if key is not None}


def _insert_statements(
    dialect: Any, raw: bool, rows: list[dict[str, Any]]
) -> Iterator[tuple[str, list[Any]]]:
    """The batch insert's statements and their parameters, at most _ROWS_PER_STATEMENT rows
    each; `raw` for psycopg's raw cursor (`$n` placeholders)."""
    convert = _bind_processors(dialect)
    # In key order: two batches that share a key (a redelivery racing its original) then take
    # the unique index's locks in the same order on PostgreSQL, and cannot deadlock.
    ordered = sorted(rows, key=lambda row: str(row["dedupe_key"]))
    for start in range(0, len(ordered), _ROWS_PER_STATEMENT):
        chunk = ordered[start : start + _ROWS_PER_STATEMENT]
        params: list[Any] = []
        for row in chunk:
            values = {
                **row,
                "data": row.get("data") or {},
                "thread_at": thread_start(row.get("thread_ts"), row["at"]),
            }
            for name, process in zip(_BATCH_COLUMNS, convert, strict=True):
                value = values.get(name)
                try:
                    params.append(process(value) if process is not None else value)
                except (TypeError, ValueError) as exc:
                    # As SQLAlchemy reports a value its type refuses (a naive datetime).
                    raise StatementError(str(exc), None, None, exc) from exc
        yield _batch_insert_sql(_marker(dialect, raw), len(chunk)), params


_PROCESSORS: dict[str, list[Any]] = {}


def _bind_processors(dialect: Any) -> list[Any]:
    """Each batch column's SQLAlchemy bind processor for `dialect` (None: passed as is)."""
    known = _PROCESSORS.get(dialect.name)
    if known is None:
        table = TimelineEvent.__table__  # type: ignore[attr-defined]
        # The dialect's own implementation of each type: a TypeDecorator's bind_processor
        # alone would skip what its underlying type does on this backend.
        known = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in _BATCH_COLUMNS
        ]
        _PROCESSORS[dialect.name] = known
    return known


def _marker(dialect: Any, raw: bool) -> str:
    """The placeholder style of the cursor: `$n` (numbered), `?` or `%s`."""
    if raw:
        return "$n"
    return "?" if dialect.paramstyle == "qmark" else "%s"


@functools.lru_cache(maxsize=64)
def _batch_insert_sql(marker: str, row_count: int) -> str:
    width = len(_BATCH_COLUMNS)
    rows = [
        "("
        + ", ".join(
            f"${row * width + column + 1}" if marker == "$n" else marker for column in range(width)
        )
        + ")"
        for row in range(row_count)
    ]
    return (
        f"INSERT INTO timeline_event ({', '.join(_BATCH_COLUMNS)}) "
        f"VALUES {', '.join(rows)} "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, kind, dedupe_key"
    )


def has_key(session: Session, *, dedupe_key: str) -> bool:
    """Whether an event with this dedupe key is stored (a request seen before, say)."""
    found = session.exec(
        select(TimelineEvent.id).where(TimelineEvent.dedupe_key == dedupe_key).limit(1)
    ).first()
    return found is not None


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


def events_with_merged(
    session: Session, *, incident_id: int, merged: dict[int, str], threaded: bool = False
) -> Iterator[TimelineEvent]:
    """The incident's events and those of the incidents merged into it (`merged`: id -> ref),
    in time order; each merged one is a detached copy whose data says `merged_from` the ref."""
    order = [col(TimelineEvent.at), col(TimelineEvent.id)]
    if threaded:
        order.insert(0, col(TimelineEvent.thread_at))
    statement = (
        select(TimelineEvent)
        .where(col(TimelineEvent.incident_id).in_([incident_id, *merged]))
        .order_by(*order)
        .execution_options(yield_per=1000)
    )
    for event in session.exec(statement):
        if event.incident_id == incident_id:
            yield event
        else:
            # A copy outside the session: the stored event is left as it was.
            copy = TimelineEvent.model_validate(event.model_dump())
            copy.data = {**(event.data or {}), "merged_from": merged[event.incident_id]}
            yield copy


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


def count_by_kind(session: Session) -> list[tuple[str, int]]:
    """How many events of each kind are stored, across incidents, as (kind, count)."""
    rows = session.exec(select(TimelineEvent.kind, func.count()).group_by(TimelineEvent.kind))
    return [(kind, int(count)) for kind, count in rows]


def events_of_kind_for(
    session: Session, *, incident_ids: Sequence[int], kind: str
) -> list[TimelineEvent]:
    """The events of one kind of some incidents, in time order: one query for a report."""
    if not incident_ids:
        return []
    return list(
        session.exec(
            select(TimelineEvent)
            .where(col(TimelineEvent.incident_id).in_(incident_ids))
            .where(TimelineEvent.kind == kind)
            .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
        )
    )


def add_to_latest(
    session: Session, *, incident_id: int, kind: str, data: dict[str, Any]
) -> TimelineEvent | None:
    """Add `data` to the latest event of `kind` (what came of it, learnt after its commit)."""
    event = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.kind == kind)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
    ).first()
    if event is not None:
        event.data = {**(event.data or {}), **data}
        session.add(event)
    return event
