"""`/incident` from text to effect: parse, find the incident, check, act, and put it on record."""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.commands.parse import (
    INCIDENT_SUBCOMMANDS,
    USAGE,
    Command,
    FollowUpChange,
    incident_number_in,
    parse_command,
    parse_declaration,
    parse_decline_reason,
    parse_followup,
    parse_merge_target,
    parse_note,
    parse_role_change,
    split_private_flag,
    split_triage_flag,
)
from bot.config import SEVERITIES, WarroomConfig
from bot.durations import format_duration
from bot.errors import (
    DuplicateCommandError,
    NotAllowedError,
    NotFoundError,
    UsageError,
    ViewNotOpenedError,
    WarroomError,
    unexpected_failure_reply,
)
from bot.exports.review import ReviewService, parse_export_format
from bot.followups.rules import listing_line
from bot.followups.service import ChangeKind, FollowUpService
from bot.incidents.enums import Severity, Status
from bot.incidents.lifecycle import (
    LifecycleService,
    closed_refusal,
    parse_postmortem_done,
    parse_severity,
    parse_status,
)
from bot.incidents.readmodels import IncidentView
from bot.incidents.service import IncidentService, Invocation, roles_summary
from bot.slack.blocks.modals import declare_modal
from bot.slack.gateway import SlackGateway
from bot.slack.text import channel_link, escape, mention, slack_date, to_plain
from bot.tasks import BackgroundTasks

log = logging.getLogger(__name__)

# `/incident declare sev1`: no title, so the form opens with the severity chosen.
_LONE_SEVERITY = re.compile(r"^sev-?([1-4])$", re.IGNORECASE)

HELP = "\n".join(
    [
        "*`/incident` commands*",
        *(f"• `{line}`" for line in USAGE.values()),
        "Outside a war room, name the incident first: `/incident INC-7 roles`.",
    ]
)


# Subcommands that change an incident: refused once it was declined or merged.
_CHANGES_INCIDENT = frozenset(
    {
        "role",
        "status",
        "sev",
        "update",
        "ack",
        "resolve",
        "postmortem",
        "accept",
        "decline",
        "merge",
    }
)


@dataclass(frozen=True)
class Reply:
    """What the caller sees at once, only to them."""

    text: str


def describe_failure(exc: Exception) -> str:
    """A short sentence for a failure in work that ran after the ack."""
    if isinstance(exc, WarroomError):
        return exc.message
    ref = uuid.uuid4().hex[:8]
    log.error("unexpected failure, reference %s", ref, exc_info=exc)
    return unexpected_failure_reply(ref)


def resolved_reply(incident: IncidentView) -> str:
    """The reply to a resolution: the incident is resolved and post-mortem reminders start."""
    return (
        f":white_check_mark: {incident.ref} is resolved. Post-mortem reminders start now; "
        "`/incident postmortem` posts a draft built from the timeline."
    )


class CommandService:
    """Runs `/incident` subcommands and says what the caller sees."""

    def __init__(
        self,
        *,
        incidents: IncidentService,
        lifecycle: LifecycleService,
        review: ReviewService,
        gateway: SlackGateway,
        config: WarroomConfig,
        tasks: BackgroundTasks,
        followups: FollowUpService,
    ) -> None:
        self.incidents = incidents
        self.followups = followups
        self.gateway = gateway
        self.lifecycle = lifecycle
        self.review = review
        self.config = config
        self.tasks = tasks

    async def run(self, invocation: Invocation) -> Reply:
        """Run one `/incident` command; refusals and usage errors go on the timeline, then raise."""
        try:
            command = parse_command(invocation.text)
        except UsageError as exc:
            await self._record_in_war_room(invocation, reason=exc.message)
            raise
        if command.name == "help":
            return Reply(HELP)
        if command.name == "list":
            return Reply(await self._list(invocation.user_id))
        if command.name == "declare":
            return await self._declare(invocation, command)
        if command.name in ("followup", "followups"):
            return await self._followup(invocation, command)
        assert command.name in INCIDENT_SUBCOMMANDS
        incident = await self.incidents.find(
            number=command.incident_number, channel_id=invocation.channel_id, asked_by=invocation
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
        handler = {
            "role": self._role,
            "note": self._note,
            "roles": self._roles,
            "status": self._status,
            "sev": self._severity,
            "update": self._update,
            "ack": self._ack,
            "resolve": self._resolve,
            "reopen": self._reopen,
            "postmortem": self._postmortem,
            "export": self._export,
            "accept": self._accept,
            "decline": self._decline,
            "merge": self._merge,
        }[command.name]
        closed = closed_refusal(incident.ref, incident.status, incident.merged_into)
        if closed is not None and command.name in _CHANGES_INCIDENT:
            raise UsageError(closed)
        return await handler(incident, command, invocation)

    async def _accept(self, incident: IncidentView, _command: Command, inv: Invocation) -> Reply:
        view = (await self.lifecycle.accept(incident, inv)).incident
        took = " You are its commander." if incident.commander is None else ""
        return Reply(f"{view.ref} accepted: it is now *{view.status}*.{took}")

    async def _decline(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        reason = parse_decline_reason(command.args)
        await self.lifecycle.decline(incident, reason, inv)
        return Reply(f"{incident.ref} is declined: {escape(reason)}. Its clocks have stopped.")

    async def _merge(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.merge(incident, parse_merge_target(command.args), inv)
        into = outcome.merged_into
        assert into is not None
        where = f" in {channel_link(into.channel_id)}" if into.channel_id else ""
        return Reply(f"{incident.ref} is merged into *{into.ref}*; carry on{where}.")

    async def _role(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        change = parse_role_change(command.args)
        view, changed = await self.incidents.assign_role(incident, change.role, change.user, inv)
        who = (
            mention(change.user.user_id or "")
            if change.user.user_id
            else escape("@" + (change.user.handle or ""))
        )
        if not changed:
            # Not the first holder: a resolver is one of several.
            return Reply(f"{who} is already {change.role} of {view.ref}.")
        return Reply(f"{who} is now {change.role} of {view.ref}.")

    async def _note(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        await self.incidents.add_note(incident, parse_note(command.args), inv)
        return Reply(f"Noted on the {incident.ref} timeline.")

    async def _roles(self, incident: IncidentView, _command: Command, inv: Invocation) -> Reply:
        # Read only: asked again (a replay), it answers again and records nothing more.
        with contextlib.suppress(DuplicateCommandError):
            await self.incidents.record_command(incident.id, inv)
        return Reply(roles_summary(incident))

    async def _status(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.change_status(incident, parse_status(command.args), inv)
        view = outcome.incident
        if not outcome.changed:
            return Reply(f"{view.ref} is already {view.status}.")
        if view.status == Status.RESOLVED:
            return Reply(resolved_reply(view))
        return Reply(f"{view.ref} is now *{view.status}*.")

    async def _severity(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        severity = parse_severity(command.args)
        outcome = await self.lifecycle.change_severity(incident, severity, inv)
        view = outcome.incident
        if not outcome.changed:
            return Reply(f"{view.ref} is already {view.severity.upper()}.")
        return Reply(f"{view.ref} is now *{view.severity.upper()}*; its reminders follow.")

    async def _update(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.post_update(incident, command.args, inv)
        where = " and the announcement channel" if self.config.announce_channel else ""
        text = f"Customer update for {incident.ref} posted in the war room{where}."
        if outcome.cautions:
            words = ", ".join(f"“{escape(w)}”" for w in outcome.cautions)
            text += (
                f"\n:warning: Customer updates state facts, not guesses ({words}). "
                "Say what is known and what is being done; keep causes for the post-mortem."
            )
        return Reply(text)

    async def _ack(self, incident: IncidentView, _command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.acknowledge(incident, inv)
        view = outcome.incident
        if not outcome.changed:
            return Reply(f"{view.ref} is already acknowledged.")
        commander = view.commander
        took = " You are its commander." if commander and commander.id == inv.user_id else ""
        return Reply(f"{view.ref} acknowledged.{took}")

    async def _resolve(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.resolve(incident, command.args.strip() or None, inv)
        if not outcome.changed:
            return Reply(f"{outcome.incident.ref} is already resolved.")
        return Reply(resolved_reply(outcome.incident))

    async def _reopen(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        outcome = await self.lifecycle.reopen(incident, command.args.strip() or None, inv)
        view = outcome.incident
        room = (
            " Its war room is archived: warroom is bringing it back (or opening a new one)."
            if outcome.bring_back_room
            else ""
        )
        return Reply(
            f":arrows_counterclockwise: {view.ref} is reopened and *{view.status}*; "
            f"the update clock runs again and post-mortem reminders have stopped.{room}"
        )

    async def _postmortem(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        if not command.args.strip():
            await self.lifecycle.postmortem_draft(incident, inv)
            return Reply(f"A post-mortem draft for {incident.ref} is posted in the war room.")
        url = parse_postmortem_done(command.args)
        await self.lifecycle.postmortem_done(incident, url, inv)
        return Reply(f"Post-mortem for {incident.ref} recorded; its reminders have stopped.")

    async def _export(self, incident: IncidentView, command: Command, inv: Invocation) -> Reply:
        fmt = parse_export_format(command.args)
        try:
            await self.incidents.record_command(incident.id, inv)
        except DuplicateCommandError:
            # A link changes nothing and is answered again; an upload is not made twice.
            if not self.review.links_enabled:
                raise
        if self.review.links_enabled:
            link = self.review.link(incident, fmt)
            ttl = format_duration(self.config.export_link_ttl or timedelta(hours=24))
            url = link.replace("&", "&amp;")  # Slack markup escapes & even inside links
            return Reply(f"<{url}|{incident.ref} timeline ({fmt})>: this link works for {ttl}.")
        target = incident.channel_id or inv.channel_id

        async def report_failure(exc: Exception) -> None:
            if inv.response_url:
                await self.gateway.respond(
                    inv.response_url, f"The {incident.ref} export failed: {describe_failure(exc)}"
                )

        self.tasks.spawn(self.review.upload(incident, fmt, target), on_error=report_failure)
        return Reply(f"Uploading the {incident.ref} timeline ({fmt}) to {channel_link(target)}…")

    # -- follow-ups --------------------------------------------------------------------------

    async def _followup(self, invocation: Invocation, command: Command) -> Reply:
        """Follow-ups: a change names its FU id (any channel); a new one or the incident's
        list needs the incident; `followups mine` works anywhere."""
        if command.name == "followups" and command.args.strip().lower() == "mine":
            return Reply(await self._my_followups(invocation.user_id))
        try:
            parsed = parse_followup(command.args) if command.name == "followup" else None
        except UsageError as exc:
            await self._record_in_war_room(invocation, reason=exc.message)
            raise
        if isinstance(parsed, FollowUpChange):
            # Stored as people read it, like the text of a new follow-up.
            reason = to_plain(parsed.reason) if parsed.reason else None
            return Reply(await self._change_followup(replace(parsed, reason=reason), invocation))
        incident = await self.incidents.find(
            number=command.incident_number, channel_id=invocation.channel_id, asked_by=invocation
        )
        if incident is None:
            raise UsageError(
                "This is not an incident channel; name the incident: "
                f"`/incident INC-7 {command.name} …`, or see yours with `/incident followups mine`."
            )
        if parsed is None:
            with contextlib.suppress(DuplicateCommandError):
                await self.incidents.record_command(incident.id, invocation)
            return Reply(await self._incident_followups(incident))
        try:
            added = await self.followups.add(
                incident, invocation, text=to_plain(parsed.text), owner=parsed.owner, due=parsed.due
            )
        except UsageError as exc:
            await self.incidents.record_command(incident.id, invocation, reason=exc.message)
            raise
        owner = f", owned by {mention(added.owner.id)}" if added.owner and added.owner.id else ""
        due = f", due {added.due.isoformat()}" if added.due else ""
        return Reply(f":clipboard: Follow-up *{added.ref}* added to {incident.ref}{owner}{due}.")

    async def _change_followup(self, change: FollowUpChange, invocation: Invocation) -> str:
        outcome = await self.followups.change(change, invocation)
        f = outcome.followup
        if not outcome.changed:
            return f"{f.ref} is {f.status} already; nothing changed."
        if change.kind == ChangeKind.DONE:
            return f":white_check_mark: {f.ref} is done."
        if change.kind == ChangeKind.DROP:
            return f"{f.ref} is dropped: {escape(f.reason or '')}"
        if change.kind == ChangeKind.ASSIGN:
            who = mention(f.owner.id) if f.owner and f.owner.id else "nobody"
            return f"{f.ref} is now {who}'s."
        return f"{f.ref} is now due {f.due.isoformat() if f.due else 'whenever'}."

    async def _incident_followups(self, incident: IncidentView) -> str:
        followups = await self.followups.for_incident(incident)
        if not followups:
            return f"{incident.ref} has no follow-ups yet. Add one: `{USAGE['followup']}`"
        today = self.followups.today()
        lines = [f"*Follow-ups of {incident.ref}*"]
        lines += [listing_line(f, today) for f in followups]
        return "\n".join(lines)

    async def _my_followups(self, user_id: str) -> str:
        # A private incident's follow-up is listed only to those who may see the incident.
        followups = await self.followups.open_for(user_id, viewer=user_id)
        if not followups:
            return "You own no open follow-ups."
        today = self.followups.today()
        lines = ["*Your open follow-ups*, overdue first"]
        lines += [listing_line(f, today, incident=True) for f in followups]
        return "\n".join(lines)

    def severities(self) -> list[Severity]:
        """The configured severities, most severe first."""
        return [s for s in SEVERITIES if s in self.config.severities] or list(SEVERITIES)

    async def open_declare_form(
        self, invocation: Invocation, severity: str | None = None, *, private: bool = False
    ) -> Reply:
        """Open the declare modal (its *Private* box ticked if `private`); called before the
        ack, as the trigger id lives 3 s."""
        if not invocation.trigger_id:
            raise UsageError(f"Give the incident a title: `{USAGE['declare']}`")
        view = declare_modal(
            severities=self.severities(),
            severity=severity or self.config.default_severity,
            user_id=invocation.user_id,
            origin_channel_id=invocation.channel_id or None,
            private=private,
        )
        try:
            await self.gateway.open_view(invocation.trigger_id, view)
        except ViewNotOpenedError as exc:
            # Recoverable: the command with a title needs no form.
            raise WarroomError(
                f"The declare form did not open ({exc.reason}). "
                f"Declare with `{USAGE['declare']}` instead."
            ) from exc
        # Nothing to say: the form on screen is the answer.
        return Reply("")

    async def _declare(self, invocation: Invocation, command: Command) -> Reply:
        private, rest = split_private_flag(command.args)
        _triage, rest = split_triage_flag(rest)
        lone_severity = _LONE_SEVERITY.match(rest.strip())
        if not rest.strip() or lone_severity:
            severity = Severity(f"sev{lone_severity.group(1)}") if lone_severity else None
            return await self.open_declare_form(invocation, severity, private=private)
        declaration = parse_declaration(command.args)
        incident = await self.incidents.declare(invocation, declaration)

        async def report_failure(exc: Exception) -> None:
            if invocation.response_url:
                await self.gateway.respond(
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

    async def _list(self, viewer: str) -> str:
        incidents = await self.incidents.open_incidents(viewer=viewer)
        if not incidents:
            return "No open incidents."
        lines = ["*Open incidents*"]
        for i in incidents:
            where = channel_link(i.channel_id) if i.channel_id else "no channel"
            commander = i.commander
            lead = mention(commander.id) if commander and commander.id else "no commander"
            status = f"*{i.status}*" if i.status == Status.TRIAGE else i.status
            lines.append(
                f"• *{i.ref}* {i.severity.upper()} {status}: {escape(i.title)} ({where}, {lead}, "
                f"declared {slack_date(i.declared_at)})"
            )
        return "\n".join(lines)

    async def _record_in_war_room(self, invocation: Invocation, *, reason: str) -> None:
        """Input that did not parse still goes on the record of the incident it was aimed at:
        the one it names (`/incident INC-7 frobnicate`), else the war room it was typed in."""
        try:
            incident = await self.incidents.find(
                number=incident_number_in(invocation.text),
                channel_id=invocation.channel_id,
                asked_by=invocation,
            )
        except NotFoundError:
            return
        if incident is not None:
            await self.incidents.record_command(incident.id, invocation, reason=reason)
