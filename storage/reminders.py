"""Reminder clocks, one row per incident and kind."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from storage.models import Reminder


def get_reminder(session: Session, *, incident_id: int, kind: str) -> Reminder | None:
    """The incident's clock of `kind`, running or not, or None if it never had one."""
    return session.exec(
        select(Reminder).where(Reminder.incident_id == incident_id).where(Reminder.kind == kind)
    ).first()


def set_reminder(session: Session, *, incident_id: int, kind: str, due_at: datetime) -> Reminder:
    """Start or move a clock; the bumped seq makes any job for the old time stale."""
    reminder = get_reminder(session, incident_id=incident_id, kind=kind)
    if reminder is None:
        reminder = Reminder(incident_id=incident_id, kind=kind, due_at=due_at, seq=1)
    else:
        reminder.due_at = due_at
        reminder.seq += 1
        reminder.active = True
    session.add(reminder)
    session.flush()
    return reminder


def add_reminder(session: Session, *, incident_id: int, kind: str, due_at: datetime) -> Reminder:
    """Start the first clock of `kind` of an incident that has none (a new one): no read."""
    reminder = Reminder(incident_id=incident_id, kind=kind, due_at=due_at, seq=1)
    session.add(reminder)
    session.flush()
    return reminder


def stop_reminder(session: Session, *, incident_id: int, kind: str) -> Reminder | None:
    """Stop the incident's clock of `kind` if running, so its jobs go stale; the row, or None."""
    reminder = get_reminder(session, incident_id=incident_id, kind=kind)
    if reminder is not None and reminder.active:
        reminder.active = False
        reminder.seq += 1
        session.add(reminder)
        session.flush()
    return reminder


def active_reminders(session: Session) -> Sequence[Reminder]:
    """The running clocks, soonest due first."""
    return session.exec(
        select(Reminder).where(col(Reminder.active).is_(True)).order_by(col(Reminder.due_at))
    ).all()


def claim_due(session: Session, *, reminder_id: int, seq: int, now: datetime) -> Reminder | None:
    """The reminder if this job may fire it now: still active, same seq, due. Locks the row on
    PostgreSQL so that two processes cannot both claim it."""
    statement = select(Reminder).where(Reminder.id == reminder_id).with_for_update()
    reminder = session.exec(statement).first()
    if reminder is None or not reminder.active or reminder.seq != seq or reminder.due_at > now:
        return None
    return reminder
