"""The App Home tab: load what one person sees and publish it. No Slack types."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from bot.home.page import HomePage, home_order
from bot.incidents.readmodels import IncidentView, incident_view
from bot.slack.blocks.home import home_view
from bot.slack.gateway import SlackGateway
from storage import incidents as incident_store
from storage.db import Database


class HomeService:
    """Builds and publishes each viewer's Home tab."""

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
