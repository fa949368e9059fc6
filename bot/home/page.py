"""What one viewer's App Home tab shows: open incidents, their own first. Pure: no storage,
no Slack."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from bot.followups.rules import FollowUpView
from bot.incidents.enums import Role, Severity
from bot.incidents.readmodels import IncidentView

SEVERITY_ORDER = {severity: rank for rank, severity in enumerate(Severity, start=1)}


@dataclass(frozen=True)
class HomePage:
    """What one viewer's Home tab shows: open incidents in the order they should read them."""

    viewer_id: str
    now: datetime
    incidents: tuple[IncidentView, ...]
    # The open follow-ups the viewer owns, overdue first, and the day it is where they are due.
    followups: tuple[FollowUpView, ...] = field(default_factory=tuple)
    today: date | None = None

    def roles_of_viewer(self, incident: IncidentView) -> list[Role]:
        """The roles the viewer holds now in `incident`."""
        return viewer_roles(incident, self.viewer_id)


def viewer_roles(incident: IncidentView, viewer_id: str) -> list[Role]:
    """The roles `viewer_id` holds now in `incident`."""
    return [r.role for r in incident.roles if r.relieved_at is None and r.user.id == viewer_id]


def home_order(incidents: list[IncidentView], viewer_id: str) -> list[IncidentView]:
    """The viewer's own incidents first, then the rest; each by severity, then oldest first."""

    def _key(incident: IncidentView) -> tuple[bool, int, datetime, int]:
        return (
            not viewer_roles(incident, viewer_id),
            SEVERITY_ORDER.get(incident.severity, len(SEVERITY_ORDER) + 1),
            incident.declared_at,
            incident.number,
        )

    return sorted(incidents, key=_key)
