"""The App Home tab: published when a person opens it, after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.home.service import HomeService
from bot.ids import EventType
from bot.tasks import BackgroundTasks


async def handle_app_home_opened_events(
    ack: AsyncAck, event: dict[str, Any], home: HomeService, tasks: BackgroundTasks
) -> None:
    """Publish the viewer's Home tab; the Messages tab (and anything else) needs nothing."""
    await ack()
    if event.get("tab") == "home" and event.get("user"):
        tasks.spawn(home.show(event["user"]))


def register(app: AsyncApp) -> None:
    """Listen for people opening the App Home."""
    app.event(EventType.APP_HOME_OPENED.value)(handle_app_home_opened_events)
