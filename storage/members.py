"""Who is in each war room: what decides who sees a private incident outside it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col, select

from storage.models import Incident, IncidentMember
from storage.sql import insert_for


def add_members(
    session: Session, *, incident_id: int, user_ids: Iterable[str], at: datetime
) -> None:
    """Note `user_ids` as in the incident's war room (those already noted stay as they were)."""
    rows = [
        {"incident_id": incident_id, "user_id": user_id, "since": at}
        for user_id in dict.fromkeys(user_ids)
        if user_id
    ]
    if rows:
        session.execute(insert_for(session, IncidentMember).values(rows).on_conflict_do_nothing())


def remove_member(session: Session, *, incident_id: int, user_id: str) -> None:
    """Note that `user_id` left the incident's war room."""
    session.execute(
        delete(IncidentMember)
        .where(col(IncidentMember.incident_id) == incident_id)
        .where(col(IncidentMember.user_id) == user_id)
    )


def is_member(session: Session, *, incident_id: int, user_id: str) -> bool:
    """True when `user_id` is in the incident's war room."""
    return (
        session.exec(
            select(IncidentMember.user_id)
            .where(IncidentMember.incident_id == incident_id)
            .where(IncidentMember.user_id == user_id)
        ).first()
        is not None
    )


def members(session: Session, *, incident_id: int) -> set[str]:
    """Everyone in the incident's war room."""
    return set(
        session.exec(
            select(IncidentMember.user_id).where(IncidentMember.incident_id == incident_id)
        ).all()
    )


def private_incidents_of(session: Session, *, user_id: str) -> set[int]:
    """The ids of the private incidents whose war room `user_id` is in."""
    return set(
        session.exec(
            select(IncidentMember.incident_id)
            .join(Incident, col(Incident.id) == col(IncidentMember.incident_id))
            .where(IncidentMember.user_id == user_id)
            .where(col(Incident.is_private).is_(True))
        ).all()
    )


def may_see(session: Session, *, incident: Incident, user_id: str, admins: Iterable[str]) -> bool:
    """Whether `user_id` may see `incident` outside its room: anyone a public one; a private
    one only its war room's members and the admins."""
    if not incident.is_private or user_id in set(admins):
        return True
    assert incident.id is not None
    return is_member(session, incident_id=incident.id, user_id=user_id)


def private_incident_ids(session: Session) -> set[int]:
    """The ids of every private incident."""
    return {
        i for i in session.exec(select(Incident.id).where(col(Incident.is_private).is_(True))) if i
    }


def hidden_from(session: Session, *, user_id: str | None, admins: Iterable[str]) -> set[int]:
    """The ids of the private incidents `user_id` may not see outside their rooms: every one
    whose room they are not in, none for an admin. No one (None) sees none of them."""
    if user_id is not None and user_id in set(admins):
        return set()
    hidden = private_incident_ids(session)
    if hidden and user_id is not None:
        hidden -= private_incidents_of(session, user_id=user_id)
    return hidden
