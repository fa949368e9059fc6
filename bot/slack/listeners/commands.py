"""The `/incident` slash command."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.commands.service import CommandService
from bot.ids import SlashCommand
from bot.incidents.service import Invocation
from bot.slack.text import printable


def invocation_from(command: dict[str, Any]) -> Invocation:
    """The Slack-neutral Invocation in a slash command's payload."""
    return Invocation(
        user_id=command["user_id"],
        user_name=printable(command.get("user_name") or "") or None,
        channel_id=command["channel_id"],
        text=printable(command.get("text", "")).strip(),
        trigger_id=command.get("trigger_id"),
        response_url=command.get("response_url"),
    )


async def handle_incident_command(
    ack: AsyncAck, command: dict[str, Any], commands: CommandService
) -> None:
    """Acks after the command's record is committed; Slack work runs in the background."""
    reply = await commands.run(invocation_from(command))
    if reply.text:
        await ack(text=reply.text, response_type="ephemeral")
    else:
        await ack()


def register(app: AsyncApp) -> None:
    """Send `/incident` to its handler."""
    app.command(SlashCommand.INCIDENT.value)(handle_incident_command)
