"""Incidents and their roles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from storage.models import Incident, RoleAssignment, TimelineEvent
from storage.sql import next_counter_value

INCIDENT_COUNTER = "incident"
# Statuses an incident ends in (bot.incidents.enums.ENDED_STATUSES; storage knows only strings).
ENDED = ("resolved", "declined", "merged")


def next_incident_number(session: Session) -> int:
    """Take the next incident number; atomic across processes, and never handed out twice."""
    return next_counter_value(session, INCIDENT_COUNTER)


def create_incident(
    session: Session,
    *,
    number: int,
    title: str,
    severity: str,
    declared_at: datetime,
    declared_by_id: str | None,
    declared_by_name: str | None,
    origin_channel_id: str | None,
    source: str = "slack",
    alert_group_key: str | None = None,
    opening_until: datetime | None = None,
    is_private: bool = False,
    status: str = "investigating",
) -> Incident:
    """Add an incident and flush; a person's is acknowledged at once, an alert's is not."""
    incident = Incident(
        number=number,
        title=title,
        severity=severity,
        declared_at=declared_at,
        declared_by_id=declared_by_id,
        declared_by_name=declared_by_name,
        origin_channel_id=origin_channel_id,
        source=source,
        alert_group_key=alert_group_key,
        opening_until=opening_until,
        is_private=is_private,
        status=status,
        # A person declaring is at the keyboard already; only alerts wait for an ack.
        acknowledged_at=declared_at if source == "slack" else None,
    )
    session.add(incident)
    session.flush()
    return incident


def get_incident(session: Session, *, incident_id: int) -> Incident | None:
    """The incident with database id `incident_id`, or None."""
    return session.get(Incident, incident_id)


def lock_incident(session: Session, *, incident_id: int) -> Incident:
    """The incident's row, locked until the transaction ends (on SQLite the write lock that
    every unit of work takes does this), so a decision made on it cannot race another."""
    return session.exec(select(Incident).where(Incident.id == incident_id).with_for_update()).one()


def incident_by_number(session: Session, *, number: int) -> Incident | None:
    """The incident numbered `number` (INC-7 is 7), or None."""
    return session.exec(select(Incident).where(Incident.number == number)).first()


def incident_by_channel(session: Session, *, channel_id: str) -> Incident | None:
    """The incident whose war room is `channel_id`, or None."""
    return session.exec(select(Incident).where(Incident.channel_id == channel_id)).first()


def open_incident_for_alert_group(session: Session, *, group_key: str) -> Incident | None:
    """The incident an alert group declared that is still open (not resolved, declined or
    merged), or None."""
    return session.exec(
        select(Incident)
        .where(Incident.alert_group_key == group_key)
        .where(col(Incident.status).not_in(ENDED))
    ).first()


def last_incident_for_alert_group(session: Session, *, group_key: str) -> Incident | None:
    """The latest incident an alert group declared, resolved or not, or None."""
    return session.exec(
        select(Incident)
        .where(Incident.alert_group_key == group_key)
        .order_by(col(Incident.number).desc())
    ).first()


def open_incidents(session: Session) -> Sequence[Incident]:
    """The open incidents (not resolved, declined or merged), by number."""
    return session.exec(
        select(Incident).where(col(Incident.status).not_in(ENDED)).order_by(col(Incident.number))
    ).all()


def declared_by_since(
    session: Session, *, user_id: str, since: datetime, source: str = "slack"
) -> list[datetime]:
    """When `user_id` declared the incidents they declared (from `source`) after `since`,
    oldest first: what a per-person declaration limit is counted on."""
    return list(
        session.exec(
            select(Incident.declared_at)
            .where(Incident.declared_by_id == user_id)
            .where(Incident.source == source)
            .where(Incident.declared_at > since)
            .order_by(col(Incident.declared_at))
        ).all()
    )


def count_by_status_and_severity(session: Session) -> list[tuple[str, str, int]]:
    """How many incidents there are of each status and severity, as (status, severity, count)."""
    rows = session.exec(
        select(Incident.status, Incident.severity, func.count()).group_by(
            Incident.status, Incident.severity
        )
    )
    return [(status, severity, int(count)) for status, severity, count in rows]


@dataclass(frozen=True)
class IncidentTimes:
    """An incident's severity, status and milestones: what its MTTx figures and its
    customer-update clock are read from."""

    severity: str
    status: str
    declared_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    last_update_at: datetime | None


def incident_times(session: Session) -> list[IncidentTimes]:
    """Every incident's severity, status and milestones, in one query (read at each scrape)."""
    rows = session.execute(
        sa_select(
            col(Incident.severity),
            col(Incident.status),
            col(Incident.declared_at),
            col(Incident.acknowledged_at),
            col(Incident.mitigated_at),
            col(Incident.resolved_at),
            col(Incident.last_update_at),
        )
    )
    return [IncidentTimes(*row) for row in rows]


def set_incident_channel(
    session: Session, *, incident_id: int, channel_id: str, channel_name: str
) -> bool:
    """Record the war room's channel, unless one is recorded already (False): the first
    channel made for an incident stays its channel."""
    result = session.execute(
        update(Incident)
        .where(col(Incident.id) == incident_id)
        .where(col(Incident.channel_id).is_(None))
        .values(channel_id=channel_id, channel_name=channel_name)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_war_room_opening(
    session: Session, *, incident_id: int, now: datetime, until: datetime, force: bool = False
) -> bool:
    """Take the opening of a war room left without its channel or its header until `until`,
    unless someone else's claim is still good (or `force`: nobody else can hold one). One
    UPDATE, so only one replica wins."""
    statement = (
        update(Incident)
        .where(col(Incident.id) == incident_id)
        .where(or_(col(Incident.channel_id).is_(None), col(Incident.header_ts).is_(None)))
        .values(opening_until=until)
    )
    if not force:
        statement = statement.where(
            or_(col(Incident.opening_until).is_(None), col(Incident.opening_until) < now)
        )
    result = session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def set_header_ts(session: Session, *, incident_id: int, header_ts: str) -> None:
    """Note the ts of the war room's pinned header message."""
    incident = session.get_one(Incident, incident_id)
    incident.header_ts = header_ts
    session.flush()


def set_announcement(session: Session, *, incident_id: int, channel_id: str, ts: str) -> None:
    """Note where the incident's announcement was posted, so it can be amended."""
    incident = session.get_one(Incident, incident_id)
    incident.announce_channel_id = channel_id
    incident.announce_ts = ts
    session.flush()


def merged_into(session: Session, *, incident_id: int) -> dict[int, str]:
    """The incidents merged into this one, as id -> `INC-N`."""
    rows = session.exec(select(Incident).where(Incident.merged_into_id == incident_id)).all()
    return {r.id: f"INC-{r.number}" for r in rows if r.id is not None}


def current_roles(session: Session, *, incident_id: int) -> Sequence[RoleAssignment]:
    """Roles held now, oldest first."""
    return session.exec(
        select(RoleAssignment)
        .where(RoleAssignment.incident_id == incident_id)
        .where(col(RoleAssignment.relieved_at).is_(None))
        .order_by(col(RoleAssignment.assigned_at), col(RoleAssignment.id))
    ).all()


def all_roles(session: Session, *, incident_id: int) -> Sequence[RoleAssignment]:
    """Every assignment, relieved ones too, in the order they were made."""
    return session.exec(
        select(RoleAssignment)
        .where(RoleAssignment.incident_id == incident_id)
        .order_by(col(RoleAssignment.assigned_at), col(RoleAssignment.id))
    ).all()


def add_role(
    session: Session,
    *,
    incident_id: int,
    role: str,
    user_id: str,
    user_name: str | None,
    assigned_by_id: str | None,
    at: datetime,
) -> RoleAssignment:
    """Give `user_id` `role` from `at`, and flush; relieving the old holder is the caller's."""
    assignment = RoleAssignment(
        incident_id=incident_id,
        role=role,
        user_id=user_id,
        user_name=user_name,
        assigned_by_id=assigned_by_id,
        assigned_at=at,
    )
    session.add(assignment)
    session.flush()
    return assignment


def relieve_role(session: Session, *, assignment: RoleAssignment, at: datetime) -> None:
    """End `assignment` at `at`, and flush."""
    assignment.relieved_at = at
    session.add(assignment)
    session.flush()


def recent_incidents(session: Session, *, limit: int = 200) -> Sequence[Incident]:
    """Open incidents first, then the most recently declared others."""
    return session.exec(
        select(Incident)
        .order_by(col(Incident.status) == "resolved", col(Incident.number).desc())
        .limit(limit)
    ).all()


def declared_between(session: Session, *, since: datetime, until: datetime) -> Sequence[Incident]:
    """Incidents declared at or after `since` and before `until`, oldest first."""
    return session.exec(
        select(Incident)
        .where(col(Incident.declared_at) >= since)
        .where(col(Incident.declared_at) < until)
        .order_by(col(Incident.declared_at), col(Incident.id))
    ).all()


def archive_candidates(session: Session) -> Sequence[Incident]:
    """Ended incidents with a war room that nobody has archived or set out to archive."""
    return session.exec(
        select(Incident)
        .where(col(Incident.status).in_(ENDED))
        .where(col(Incident.archived_at).is_(None))
        .where(col(Incident.channel_id).is_not(None))
        .order_by(col(Incident.id))
    ).all()


def stale_archive_claims(
    session: Session, *, claimed_before: datetime, settled_by: tuple[str, ...]
) -> Sequence[Incident]:
    """Ended incidents claimed for archiving before `claimed_before` with no event of the
    kinds `settled_by` since: a process stopped half-way through archiving them."""
    settled = (
        select(TimelineEvent.id)
        .where(col(TimelineEvent.incident_id) == col(Incident.id))
        .where(col(TimelineEvent.kind).in_(settled_by))
        .where(col(TimelineEvent.at) >= col(Incident.archived_at))
    )
    return session.exec(
        select(Incident)
        .where(col(Incident.status).in_(ENDED))
        .where(col(Incident.archived_at) < claimed_before)
        .where(col(Incident.channel_id).is_not(None))
        .where(~exists(settled))
        .order_by(col(Incident.id))
    ).all()


def claim_archive(
    session: Session, *, incident_id: int, now: datetime, seen: datetime | None = None
) -> bool:
    """Take the archiving of an incident's war room: set `archived_at` if it is still `seen`
    (unset, or a stale claim as read). One UPDATE, so of two replicas only one wins."""
    held = (
        col(Incident.archived_at).is_(None) if seen is None else col(Incident.archived_at) == seen
    )
    result = session.execute(
        update(Incident).where(col(Incident.id) == incident_id).where(held).values(archived_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_archive_claim(session: Session, *, incident_id: int, claimed_at: datetime) -> None:
    """Give back a claim on archiving that did not get done, for the next sweep."""
    session.execute(
        update(Incident)
        .where(col(Incident.id) == incident_id)
        .where(col(Incident.archived_at) == claimed_at)
        .values(archived_at=None)
    )


def move_war_room(
    session: Session, *, incident_id: int, from_channel: str, channel_id: str, channel_name: str
) -> bool:
    """Give a reopened incident a new war room in place of its archived one; False if its
    room is no longer `from_channel` (someone else moved it first)."""
    result = session.execute(
        update(Incident)
        .where(col(Incident.id) == incident_id)
        .where(col(Incident.channel_id) == from_channel)
        .values(channel_id=channel_id, channel_name=channel_name, header_ts=None, archived_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def clear_archived(session: Session, *, incident_id: int) -> None:
    """Note that the incident's war room is no longer archived."""
    session.execute(
        update(Incident).where(col(Incident.id) == incident_id).values(archived_at=None)
    )
