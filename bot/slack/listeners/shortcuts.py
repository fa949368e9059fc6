"""Message shortcuts: "Add to incident timeline" marks a war-room message as a key event;
"Make a follow-up" opens a form to turn it into a follow-up."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.commands.forms import Actor, FormService
from bot.ids import CallbackId
from bot.slack.gateway import SlackGateway
from bot.tasks import BackgroundTasks
from bot.timeline.service import KeyMark, KeyMarkOutcome, KeyMarkResult, TimelineService


def mark_from_shortcut(shortcut: dict[str, Any]) -> KeyMark:
    """The mark a `message_action` payload makes: the marker is whoever ran the shortcut."""
    message = shortcut.get("message") or {}
    return KeyMark(
        channel_id=(shortcut.get("channel") or {}).get("id", ""),
        message_ts=message.get("ts") or shortcut.get("message_ts", ""),
        marked_by=(shortcut.get("user") or {}).get("id", ""),
        via="shortcut",
        author_id=message.get("user") or message.get("bot_id"),
        text=message.get("text"),
        thread_ts=message.get("thread_ts"),
    )


def key_mark_reply(result: KeyMarkResult) -> str:
    """What the person who marked a message is told (only they see it)."""
    match result.outcome:
        case KeyMarkOutcome.MARKED:
            return f":pushpin: Added to the {result.incident_ref} timeline as a key event."
        case KeyMarkOutcome.ALREADY_MARKED:
            return f"That message is already a key event on the {result.incident_ref} timeline."
        case KeyMarkOutcome.HEADER:
            return f"That is the {result.incident_ref} header; the declaration is on the timeline."
        case _:
            return (
                "This is not an incident channel, so there is no timeline to add to. "
                "Use the shortcut on a message in an incident's war room."
            )


async def handle_add_to_timeline_shortcut(
    ack: AsyncAck,
    shortcut: dict[str, Any],
    timeline: TimelineService,
    tasks: BackgroundTasks,
    gateway: SlackGateway,
) -> None:
    """Acks once the key event is committed; the confirmation follows through response_url."""
    mark = mark_from_shortcut(shortcut)
    result = (
        await timeline.mark_key_event(mark)
        if mark.channel_id and mark.message_ts and mark.marked_by
        else KeyMarkResult(KeyMarkOutcome.NOT_WAR_ROOM)
    )
    await ack()
    reply = key_mark_reply(result)
    if shortcut.get("response_url"):
        tasks.spawn(gateway.respond(shortcut["response_url"], reply))
    elif mark.channel_id and mark.marked_by:
        tasks.spawn(gateway.post_ephemeral(mark.channel_id, mark.marked_by, reply))


async def handle_make_followup_shortcut(
    ack: AsyncAck,
    shortcut: dict[str, Any],
    forms: FormService,
    tasks: BackgroundTasks,
    gateway: SlackGateway,
) -> None:
    """Open the follow-up form first (the trigger id dies 3 s after the click), then ack; a
    message outside a war room gets a private word instead."""
    user_id = (shortcut.get("user") or {}).get("id", "")
    actor = Actor(
        user_id=user_id,
        user_name=(shortcut.get("user") or {}).get("username"),
        trigger_id=shortcut.get("trigger_id", ""),
        channel_id=(shortcut.get("channel") or {}).get("id"),
    )
    problem = await forms.open_followup_form(actor, shortcut.get("message") or {})
    await ack()
    if problem and shortcut.get("response_url"):
        tasks.spawn(gateway.respond(shortcut["response_url"], problem))


def register(app: AsyncApp) -> None:
    """Listen for the "Add to incident timeline" and "Make a follow-up" message shortcuts."""
    app.message_shortcut(CallbackId.ADD_TO_TIMELINE.value)(handle_add_to_timeline_shortcut)
    app.message_shortcut(CallbackId.MAKE_FOLLOWUP.value)(handle_make_followup_shortcut)
