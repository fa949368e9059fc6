"""Pins and chosen reactions in a war room mark the message as a key event, before the ack.

Unpinning or removing the reaction records nothing: a key event, once marked, stays (the
manifest does not subscribe to pin_removed or reaction_removed)."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.config import WarroomConfig
from bot.ids import EventType
from bot.timeline.service import KeyMark, TimelineService


def mark_from_pin(event: dict[str, Any]) -> KeyMark | None:
    """The mark a `pin_added` event makes, or None when what was pinned is not a message."""
    item = event.get("item") or {}
    message = item.get("message") or {}
    channel = event.get("channel_id") or item.get("channel")
    if item.get("type") != "message" or not message.get("ts") or not channel:
        return None
    return KeyMark(
        channel_id=channel,
        message_ts=message["ts"],
        marked_by=event.get("user") or item.get("created_by", ""),
        via="pin",
        author_id=message.get("user") or message.get("bot_id"),
        text=message.get("text"),
        thread_ts=message.get("thread_ts"),
    )


def reaction_name(reaction: str) -> str:
    """A reaction without its skin tone: `thumbsup::skin-tone-2` -> `thumbsup`."""
    return reaction.split("::", 1)[0]


def mark_from_reaction(event: dict[str, Any], key_reactions: list[str]) -> KeyMark | None:
    """The mark a `reaction_added` event makes, or None for other reactions or non-messages."""
    item = event.get("item") or {}
    reaction = reaction_name(event.get("reaction", ""))
    if reaction not in key_reactions or item.get("type") != "message":
        return None
    if not item.get("channel") or not item.get("ts") or not event.get("user"):
        return None
    return KeyMark(
        channel_id=item["channel"],
        message_ts=item["ts"],
        marked_by=event["user"],
        via="reaction",
        author_id=event.get("item_user"),
        reaction=reaction,
    )


async def handle_pin_added_events(
    ack: AsyncAck, event: dict[str, Any], timeline: TimelineService
) -> None:
    """Mark a pinned war-room message as a key event, then ack."""
    mark = mark_from_pin(event)
    if mark is not None:
        await timeline.mark_key_event(mark)
    await ack()


async def handle_reaction_added_events(
    ack: AsyncAck, event: dict[str, Any], timeline: TimelineService, config: WarroomConfig
) -> None:
    """Mark a message as a key event when the reaction is a configured one, then ack."""
    mark = mark_from_reaction(event, config.key_event_reactions)
    if mark is not None:
        await timeline.mark_key_event(mark)
    await ack()


def register(app: AsyncApp) -> None:
    """Listen for pins and reactions."""
    app.event(EventType.PIN_ADDED.value)(handle_pin_added_events)
    app.event(EventType.REACTION_ADDED.value)(handle_reaction_added_events)
