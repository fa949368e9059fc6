"""The App Home tab: load what one person sees and publish it. No Slack types."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from bot.followups.rules import FollowUpStatus, FollowUpView, today_in
from bot.followups.service import load_views, overdue_first
from bot.home.page import HomePage, home_order
from bot.incidents.readmodels import IncidentView, incident_view
from bot.slack.blocks.home import home_view
from bot.slack.gateway import SlackGateway
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import members as member_store
from storage.db import Database


class HomeService:
    """Builds and publishes each viewer's Home tab."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Callable[[], datetime],
        gateway: SlackGateway,
        zone: ZoneInfo,
        admins: Iterable[str] = (),
    ) -> None:
        self.db = db
        self.clock = clock
        self.gateway = gateway
        self.zone = zone
        self.admins = frozenset(admins)

    async def page_for(self, viewer_id: str) -> HomePage:
        """The Home page `viewer_id` sees now."""

        def _load(session: Session) -> tuple[list[IncidentView], list[FollowUpView]]:
            # Private incidents, and their follow-ups, only to their rooms' members and admins.
            hidden = member_store.hidden_from(session, user_id=viewer_id, admins=self.admins)
            incidents = [
                incident_view(session, i)
                for i in incident_store.open_incidents(session)
                if i.id not in hidden
            ]
            owned = followup_store.find_followups(
                session, status=FollowUpStatus.OPEN, owner_id=viewer_id
            )
            owned = [f for f in owned if f.incident_id not in hidden]
            return incidents, load_views(session, owned)

        incidents, followups = await self.db.run(_load)
        now = self.clock()
        today = today_in(self.zone, now)
        return HomePage(
            viewer_id=viewer_id,
            now=now,
            incidents=tuple(home_order(incidents, viewer_id)),
            followups=tuple(overdue_first(followups, today)),
            today=today,
        )

    async def show(self, viewer_id: str) -> None:
        """Build the viewer's Home tab and publish it (after the ack: it is a Web API call)."""
        page = await self.page_for(viewer_id)
        await self.gateway.publish_home(viewer_id, home_view(page))
