"""Plain read models handed to templates, Block Kit builders and exports (never ORM rows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.incidents.enums import Role, Severity, Status
from storage import incidents as incident_store
from storage.models import Incident, RoleAssignment


@dataclass(frozen=True)
class Person:
    """Someone on the record, by Slack id and name, either of which may be missing."""

    id: str | None
    name: str | None

    @property
    def label(self) -> str:
        """The name, else the id, else "someone"."""
        return self.name or self.id or "someone"


@dataclass(frozen=True)
class RoleView:
    """A role held, by whom, from when, and until when (None while still held)."""

    role: Role
    user: Person
    assigned_at: datetime
    relieved_at: datetime | None


@dataclass(frozen=True)
class IncidentView:
    """An incident as read, with every role ever held: plain data, safe outside a session."""

    id: int
    number: int
    title: str
    severity: Severity
    status: Status
    channel_id: str | None
    channel_name: str | None
    declared_by: Person
    declared_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    header_ts: str | None
    source: str
    last_update_at: datetime | None
    postmortem_url: str | None
    postmortem_done_at: datetime | None
    roles: tuple[RoleView, ...]
    # Seen outside its war room only by the room's members and the admins.
    private: bool = False
    # `INC-M` when this one was merged into INC-M.
    merged_into: str | None = None
    # Where its announcement was posted, to amend it when it is declined or merged.
    announce_channel_id: str | None = None
    announce_ts: str | None = None
    # When its war room was archived (by warroom or by hand); None while it is not.
    archived_at: datetime | None = None

    @property
    def ref(self) -> str:
        """The incident's name for people: `INC-7`."""
        return f"INC-{self.number}"

    def holders(self, role: Role) -> list[Person]:
        """Who holds `role` now."""
        return [r.user for r in self.roles if r.role == role and r.relieved_at is None]

    @property
    def commander(self) -> Person | None:
        """The commander now, or None when nobody is in command."""
        holders = self.holders(Role.COMMANDER)
        return holders[0] if holders else None


def incident_view(
    session: Session, incident: Incident, *, roles: Sequence[RoleAssignment] | None = None
) -> IncidentView:
    """The read model of `incident`, with its roles (every assignment, in order) as given or
    read in the caller's session."""
    assert incident.id is not None
    if roles is None:
        roles = incident_store.all_roles(session, incident_id=incident.id)
    return IncidentView(
        id=incident.id,
        number=incident.number,
        title=incident.title,
        severity=Severity(incident.severity),
        status=Status(incident.status),
        channel_id=incident.channel_id,
        channel_name=incident.channel_name,
        declared_by=Person(incident.declared_by_id, incident.declared_by_name),
        declared_at=incident.declared_at,
        acknowledged_at=incident.acknowledged_at,
        mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at,
        header_ts=incident.header_ts,
        source=incident.source,
        last_update_at=incident.last_update_at,
        postmortem_url=incident.postmortem_url,
        postmortem_done_at=incident.postmortem_done_at,
        roles=tuple(
            RoleView(
                role=Role(r.role),
                user=Person(r.user_id, r.user_name),
                assigned_at=r.assigned_at,
                relieved_at=r.relieved_at,
            )
            for r in roles
        ),
        private=incident.is_private,
        merged_into=_merged_into(session, incident),
        announce_channel_id=incident.announce_channel_id,
        announce_ts=incident.announce_ts,
        archived_at=incident.archived_at,
    )


def _merged_into(session: Session, incident: Incident) -> str | None:
    if incident.merged_into_id is None:
        return None
    target = incident_store.get_incident(session, incident_id=incident.merged_into_id)
    return f"INC-{target.number}" if target else None
