"""Follow-ups: numbered across the deployment, listed per incident, per owner or all."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import FollowUp
from storage.sql import next_counter_value

FOLLOWUP_COUNTER = "followup"
OPEN = "open"


def next_followup_number(session: Session) -> int:
    """Take the next FU number; atomic across processes, never handed out twice."""
    return next_counter_value(session, FOLLOWUP_COUNTER)


def add_followup(
    session: Session,
    *,
    incident_id: int,
    text: str,
    at: datetime,
    created_by_id: str | None,
    created_by_name: str | None,
    owner_id: str | None = None,
    owner_name: str | None = None,
    due: date | None = None,
    source_ts: str | None = None,
) -> FollowUp:
    """Number and store an open follow-up, and flush."""
    followup = FollowUp(
        id=next_followup_number(session),
        incident_id=incident_id,
        text=text,
        owner_id=owner_id,
        owner_name=owner_name,
        due=due,
        status=OPEN,
        created_at=at,
        created_by_id=created_by_id,
        created_by_name=created_by_name,
        source_ts=source_ts,
    )
    session.add(followup)
    session.flush()
    return followup


def get_followup(session: Session, *, number: int) -> FollowUp | None:
    """FU-`number`, or None."""
    return session.get(FollowUp, number)


def lock_followup(session: Session, *, number: int) -> FollowUp | None:
    """FU-`number`, locked until the transaction ends (a change decided on it cannot race)."""
    return session.exec(select(FollowUp).where(FollowUp.id == number).with_for_update()).first()


def followups_for_incident(session: Session, *, incident_id: int) -> Sequence[FollowUp]:
    """The incident's follow-ups, oldest first."""
    return session.exec(
        select(FollowUp).where(FollowUp.incident_id == incident_id).order_by(col(FollowUp.id))
    ).all()


def unowned_open(session: Session, *, incident_id: int) -> Sequence[FollowUp]:
    """The incident's open follow-ups that nobody owns yet, oldest first."""
    return session.exec(
        select(FollowUp)
        .where(FollowUp.incident_id == incident_id)
        .where(FollowUp.status == OPEN)
        .where(col(FollowUp.owner_id).is_(None))
        .order_by(col(FollowUp.id))
    ).all()


def find_followups(
    session: Session,
    *,
    status: str | None = None,
    owner_id: str | None = None,
    due_before: date | None = None,
    limit: int | None = None,
) -> Sequence[FollowUp]:
    """Follow-ups across incidents, oldest first: of one status (None: any), one owner, and
    with `due_before`, only those due before that day."""
    query = select(FollowUp)
    if status is not None:
        query = query.where(FollowUp.status == status)
    if owner_id is not None:
        query = query.where(FollowUp.owner_id == owner_id)
    if due_before is not None:
        query = query.where(col(FollowUp.due) < due_before)
    query = query.order_by(col(FollowUp.id))
    if limit is not None:
        query = query.limit(limit)
    return session.exec(query).all()


def count_by_status(session: Session) -> list[tuple[str, int]]:
    """How many follow-ups there are of each status."""
    rows = session.exec(select(FollowUp.status, func.count()).group_by(col(FollowUp.status))).all()
    return [(status, int(count)) for status, count in rows]


def count_overdue(session: Session, *, today: date) -> int:
    """Open follow-ups whose due day is before `today`."""
    return int(
        session.exec(
            select(func.count())
            .select_from(FollowUp)
            .where(FollowUp.status == OPEN)
            .where(col(FollowUp.due) < today)
        ).one()
    )


def followups_of_incidents(session: Session, *, incident_ids: Sequence[int]) -> Sequence[FollowUp]:
    """The follow-ups of some incidents, in number order."""
    if not incident_ids:
        return []
    return session.exec(
        select(FollowUp)
        .where(col(FollowUp.incident_id).in_(incident_ids))
        .order_by(col(FollowUp.id))
    ).all()
