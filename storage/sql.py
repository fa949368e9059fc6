"""Bits of SQL that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage.models import Counter


def insert_for(session: Session, table: Any) -> Any:
    """An INSERT that knows ON CONFLICT, for whichever backend the session is bound to."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def next_counter_value(session: Session, name: str) -> int:
    """Bump the named counter and return its new value: atomic across processes, never handed
    out twice (a rolled-back transaction takes none)."""
    # On the session's connection, as plain SQL: no Counter object is ever loaded, so the ORM's
    # bookkeeping for an UPDATE (a declaration's ack waits on this) has nothing to do. One
    # upsert, one round trip: the first value is 1, and the row stays locked until commit.
    statement = insert_for(session, Counter).values(name=name, value=1)
    bumped = session.connection().execute(
        statement.on_conflict_do_update(
            index_elements=[col(Counter.name)], set_={"value": Counter.value + 1}
        ).returning(col(Counter.value))
    )
    return int(bumped.scalar_one())


Claimable = TypeVar("Claimable")


def claim_row(
    session: Session,
    model: type[Claimable],
    *,
    row_id: int,
    done: Any,
    by: str,
    now: datetime,
    lease: timedelta,
) -> Claimable | None:
    """Take row `row_id` of `model` for one attempt, unless it is `done` (that column set) or
    another sender holds an unexpired claim. One conditional UPDATE: on PostgreSQL a racing
    claim waits for this one's commit, re-reads the row and matches nothing, so only one
    process ever works on it."""
    table: Any = model
    claimed = session.execute(
        update(table)
        .where(col(table.id) == row_id)
        .where(col(done).is_(None))
        .where(or_(col(table.claimed_until).is_(None), col(table.claimed_until) < now))
        .values(claimed_by=by, claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return session.get(model, row_id, populate_existing=True)
