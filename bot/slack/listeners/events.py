"""Events API: everything said and done in a war room goes on the timeline before the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.archive.service import ArchiveService
from bot.ids import EventType
from bot.timeline.entries import entry_for_membership, entry_for_message
from bot.timeline.service import TimelineService


async def handle_message_events(
    ack: AsyncAck, event: dict[str, Any], timeline: TimelineService
) -> None:
    """Put a war-room message, edit or deletion on the timeline, then ack."""
    entry = entry_for_message(event)
    if entry is not None:
        await timeline.record(entry)
    await ack()


async def handle_member_joined_events(
    ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], timeline: TimelineService
) -> None:
    """Put who joined a war room on its timeline and its member list, then ack."""
    entry = entry_for_membership(event, body.get("event_id"), joined=True)
    await timeline.record(entry)
    await timeline.note_membership(
        channel_id=entry.channel_id, user_id=event["user"], joined=True, at=entry.at
    )
    await ack()


async def handle_member_left_events(
    ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], timeline: TimelineService
) -> None:
    """Put who left a war room on its timeline and off its member list, then ack."""
    entry = entry_for_membership(event, body.get("event_id"), joined=False)
    await timeline.record(entry)
    await timeline.note_membership(
        channel_id=entry.channel_id, user_id=event["user"], joined=False, at=entry.at
    )
    await ack()


async def handle_channel_archive_events(
    ack: AsyncAck, event: dict[str, Any], body: dict[str, Any], archive: ArchiveService
) -> None:
    """Put a war room archived in Slack (public or private) on its timeline, then ack."""
    await archive.record_archived_by_hand(
        str(event.get("channel", "")), event.get("user"), body.get("event_id")
    )
    await ack()


def register(app: AsyncApp) -> None:
    """Listen for messages, joins and leaves, and war rooms archived."""
    # A plain string matches every subtype: edits, deletions, file shares, other apps' posts.
    app.event(EventType.MESSAGE.value)(handle_message_events)
    app.event(EventType.MEMBER_JOINED_CHANNEL.value)(handle_member_joined_events)
    app.event(EventType.MEMBER_LEFT_CHANNEL.value)(handle_member_left_events)
    app.event(EventType.CHANNEL_ARCHIVE.value)(handle_channel_archive_events)
    app.event(EventType.GROUP_ARCHIVE.value)(handle_channel_archive_events)
