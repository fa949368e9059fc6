"""The App Home tab: open incidents as one person sees them, their own first. No Slack types."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from bot.incidents.readmodels import IncidentView, incident_view
from bot.slack.blocks.home import home_view
from bot.slack.gateway import SlackGateway
from storage import incidents as incident_store
from storage.db import Database

SEVERITY_ORDER = {"sev1": 1, "sev2": 2, "sev3": 3, "sev4": 4}


@dataclass(frozen=True)
class HomePage:
    """What one viewer's Home tab shows: open incidents in the order they should read them."""

    viewer_id: str
    now: datetime
    incidents: tuple[IncidentView, ...]

    def roles_of_viewer(self, incident: IncidentView) -> list[str]:
        return viewer_roles(incident, self.viewer_id)


def viewer_roles(incident: IncidentView, viewer_id: str) -> list[str]:
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


class HomeService:
    def __init__(
        self, *, db: Database, clock: Callable[[], datetime], gateway: SlackGateway
    ) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway

    async def page_for(self, viewer_id: str) -> HomePage:
        """The Home page `viewer_id` sees now."""

        def _load(session: Session) -> list[IncidentView]:
            return [incident_view(session, i) for i in incident_store.open_incidents(session)]

        incidents = await self.db.run(_load)
        return HomePage(
            viewer_id=viewer_id, now=self.clock(), incidents=tuple(home_order(incidents, viewer_id))
        )

    async def show(self, viewer_id: str) -> None:
        """Build the viewer's Home tab and publish it (after the ack: it is a Web API call)."""
        page = await self.page_for(viewer_id)
        await self.gateway.publish_home(viewer_id, home_view(page))
