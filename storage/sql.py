"""Bits of SQL that differ between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
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
    # bookkeeping for an UPDATE (a declaration's ack waits on this) has nothing to do.
    connection = session.connection()
    connection.execute(
        insert_for(session, Counter).values(name=name, value=0).on_conflict_do_nothing()
    )
    bumped = connection.execute(
        update(Counter)
        .where(col(Counter.name) == name)
        .values(value=Counter.value + 1)
        .returning(col(Counter.value))
    )
    return int(bumped.scalar_one())
