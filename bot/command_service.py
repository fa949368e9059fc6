"""`/incident` from text to effect: parse, find the incident, check, act, and put it on record."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

from bot.commands import (
    INCIDENT_SUBCOMMANDS,
    NOT_YET,
    USAGE,
    Command,
    parse_command,
    parse_declaration,
    parse_note,
    parse_role_change,
)
from bot.config import WarroomConfig
from bot.errors import NotAllowedError, UsageError, WarroomError
from bot.incidents import IncidentService, Invocation, roles_summary
from bot.readmodels import IncidentView
from bot.slacktext import channel_link, escape, mention
from bot.tasks import BackgroundTasks

log = logging.getLogger(__name__)

HELP = "\n".join(
    [
        "*`/incident` commands*",
        *(f"• `{line}`" for line in USAGE.values()),
        "Outside a war room, name the incident first: `/incident INC-7 roles`.",
    ]
)


@dataclass(frozen=True)
class Reply:
    """What the caller sees at once, only to them."""

    text: str


def describe_failure(exc: Exception) -> str:
    """A short sentence for a failure in work that ran after the ack."""
    if isinstance(exc, WarroomError):
        return exc.message
    if isinstance(exc, SlackApiError):
        return f"Slack said `{exc.response.get('error', 'error')}`."
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected failure, reference %s", ref, exc_info=exc)
    return f"Something went wrong on our side (reference {ref})."


class CommandService:
    def __init__(
        self, *, incidents: IncidentService, config: WarroomConfig, tasks: BackgroundTasks
    ) -> None:
        self.incidents = incidents
        self.config = config
        self.tasks = tasks

    async def run(self, invocation: Invocation) -> Reply:
        try:
            command = parse_command(invocation.text)
        except UsageError as exc:
            await self._record_in_war_room(invocation, reason=exc.message)
            raise
        if command.name == "help":
            return Reply(HELP)
        if command.name == "list":
            return Reply(await self._list())
        if command.name == "declare":
            return await self._declare(invocation, command)
        assert command.name in INCIDENT_SUBCOMMANDS
        incident = await self.incidents.find(
            number=command.incident_number, channel_id=invocation.channel_id
        )
        if incident is None:
            raise UsageError(
                "This is not an incident channel; name the incident: "
                f"`/incident INC-7 {command.name} …`"
            )
        try:
            return await self._on_incident(incident, command, invocation)
        except NotAllowedError as exc:
            await self.incidents.record_command(
                incident.id, invocation, refused=True, reason=exc.message
            )
            raise
        except UsageError as exc:
            await self.incidents.record_command(incident.id, invocation, reason=exc.message)
            raise

    async def _on_incident(
        self, incident: IncidentView, command: Command, invocation: Invocation
    ) -> Reply:
        if command.name in NOT_YET:
            raise UsageError(f"`/incident {command.name}` is not available in this version yet.")
        if command.name == "role":
            change = parse_role_change(command.args)
            view, changed = await self.incidents.assign_role(
                incident, change.role, change.user, invocation
            )
            holder = next(p for p in view.holders(change.role) if p.id)
            if not changed:
                return Reply(f"{mention(holder.id or '')} is already {change.role} of {view.ref}.")
            who = (
                mention(change.user.user_id or "")
                if change.user.user_id
                else escape("@" + (change.user.handle or ""))
            )
            return Reply(f"{who} is now {change.role} of {view.ref}.")
        if command.name == "note":
            text = parse_note(command.args)
            await self.incidents.add_note(incident, text, invocation)
            return Reply(f"Noted on the {incident.ref} timeline.")
        assert command.name == "roles"
        await self.incidents.record_command(incident.id, invocation)
        return Reply(roles_summary(incident, self.config.timezone))

    async def _declare(self, invocation: Invocation, command: Command) -> Reply:
        declaration = parse_declaration(command.args)
        incident = await self.incidents.declare(invocation, declaration)

        async def report_failure(exc: Exception) -> None:
            if invocation.response_url:
                await self.incidents.gateway.respond(
                    invocation.response_url,
                    f"{incident.ref} is recorded, but its war room could not be opened: "
                    f"{describe_failure(exc)}",
                )

        self.tasks.spawn(
            self.incidents.open_war_room(incident.id, response_url=invocation.response_url),
            on_error=report_failure,
        )
        return Reply(
            f":rotating_light: Declared *{incident.ref}* ({incident.severity.upper()}): "
            f"{escape(incident.title)}. Opening the war room…"
        )

    async def _list(self) -> str:
        incidents = await self.incidents.open_incidents()
        if not incidents:
            return "No open incidents."
        lines = ["*Open incidents*"]
        for i in incidents:
            where = channel_link(i.channel_id) if i.channel_id else "no channel"
            commander = i.commander
            lead = mention(commander.id) if commander and commander.id else "no commander"
            lines.append(
                f"• *{i.ref}* {i.severity.upper()} {i.status}: {escape(i.title)} ({where}, {lead})"
            )
        return "\n".join(lines)

    async def _record_in_war_room(self, invocation: Invocation, *, reason: str) -> None:
        incident = await self.incidents.find(number=None, channel_id=invocation.channel_id)
        if incident is not None:
            await self.incidents.record_command(incident.id, invocation, reason=reason)
