"""Buttons and modals, free of Bolt's types: open the right form, and turn a submitted form
into the same service calls (and the same timeline records) as the equivalent slash command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from jinja2 import Environment
from sqlmodel import Session

from bot.commands.parse import UserRef, parse_declaration
from bot.commands.service import CommandService, describe_failure
from bot.config import WarroomConfig
from bot.durations import format_duration
from bot.errors import (
    DuplicateCommandError,
    SlackCallError,
    UsageError,
    ViewNotOpenedError,
    WarroomError,
)
from bot.followups.rules import (
    check_text,
    followup_number,
    mentioned_ids,
    parse_due,
    prefill_from_message,
)
from bot.followups.service import FollowUpService
from bot.ids import ActionId, BlockId, CallbackId
from bot.incidents.enums import Role
from bot.incidents.people import People
from bot.incidents.readmodels import IncidentView, incident_view
from bot.incidents.refs import incident_number
from bot.incidents.service import IncidentService, Invocation
from bot.slack.blocks.modals import (
    FormValue,
    field_message,
    followup_modal,
    read_declare_metadata,
    read_followup_metadata,
    resolve_modal,
    role_modal,
    status_modal,
    update_draft,
    update_modal,
)
from bot.slack.gateway import SlackGateway
from bot.slack.text import channel_link, escape, slack_encoded, to_plain
from bot.tasks import BackgroundTasks
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database

# What each header button would be as a command, for the record of a refused click.
BUTTON_VERBS = {
    ActionId.HEADER_ASSIGN_ROLE: "role",
    ActionId.HEADER_POST_UPDATE: "update",
    ActionId.HEADER_CHANGE_STATUS: "status",
    ActionId.HEADER_RESOLVE: "resolve",
}
# chat.postEphemeral errors that mean "not in that channel": a DM is the way round.
_NOT_THERE = frozenset({"user_not_in_channel", "channel_not_found", "not_in_channel"})
# Where a refusal or a usage error from each modal's command is shown.
ERROR_BLOCKS = {
    CallbackId.ROLE_MODAL: BlockId.ROLE_HOLDER,
    CallbackId.UPDATE_MODAL: BlockId.UPDATE_TEXT,
    CallbackId.STATUS_MODAL: BlockId.STATUS,
    CallbackId.RESOLVE_MODAL: BlockId.SUMMARY,
}


@dataclass(frozen=True)
class Actor:
    """Who clicked or submitted, with the trigger id of that interaction and, for a click on
    a message, the channel it was in."""

    user_id: str
    user_name: str | None
    trigger_id: str
    channel_id: str | None = None

    def invocation(self, text: str, *, key: str = "") -> Invocation:
        """The slash command this interaction stands for (`key` tells apart several commands
        made by one submission, which share a trigger id)."""
        return Invocation(
            user_id=self.user_id,
            user_name=self.user_name,
            channel_id=self.channel_id or "",
            text=text,
            # No trigger, no key: `:1` alone would make every such submission one request.
            trigger_id=f"{self.trigger_id}{key}" if self.trigger_id else None,
        )


class FormError(UsageError):
    """Input a modal shows next to its fields: {block_id: sentence}."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = {block: field_message(text) for block, text in errors.items()}
        super().__init__(" ".join(self.errors.values()))


def _text(value: FormValue) -> str:
    return value.strip() if isinstance(value, str) else ""


class FormService:
    """Buttons and modals over the same services as the slash command; built once."""

    def __init__(
        self,
        *,
        commands: CommandService,
        incidents: IncidentService,
        people: People,
        gateway: SlackGateway,
        templates: Environment,
        db: Database,
        config: WarroomConfig,
        tasks: BackgroundTasks,
        followups: FollowUpService,
    ) -> None:
        self.commands = commands
        self.followups = followups
        self.incidents = incidents
        self.people = people
        self.gateway = gateway
        self.templates = templates
        self.db = db
        self.config = config
        self.tasks = tasks

    # -- declaring ---------------------------------------------------------------------------

    async def open_declare_form(self, actor: Actor) -> None:
        """The declare modal from a button (App Home): a failure to open is told by DM."""
        try:
            await self.commands.open_declare_form(actor.invocation("declare"))
        except WarroomError as exc:
            self.tasks.spawn(self._dm(actor.user_id, exc.message))

    async def declare_from_form(
        self, actor: Actor, form: Mapping[str, FormValue], private_metadata: str
    ) -> IncidentView:
        """Declare from the submitted form: checked field by field first (FormError), then
        declared, its roles given and its summary noted before Slack hears back; the war
        room opens after the ack, and a failure there is told to the declarer by DM."""
        title = _text(form.get(BlockId.TITLE))
        severity = _text(form.get(BlockId.SEVERITY)) or self.config.default_severity
        commander = _text(form.get(BlockId.COMMANDER)) or actor.user_id
        chosen = form.get(BlockId.RESPONDERS)
        responders = [u for u in dict.fromkeys(chosen or []) if u != commander]
        errors: dict[str, str] = {}
        declaration = None
        if not title:
            errors[BlockId.TITLE] = "Give the incident a title."
        else:
            try:
                # The chosen severity goes last, so a title ending in "sev1" stays whole.
                declaration = parse_declaration(f"{slack_encoded(title)} {severity}")
                declaration = replace(declaration, private=_ticked(form.get(BlockId.PRIVATE)))
            except UsageError as exc:
                errors[BlockId.TITLE] = exc.message
        if severity not in self.commands.severities():
            errors[BlockId.SEVERITY] = "Choose one of the severities offered."
        for block, users in ((BlockId.COMMANDER, [commander]), (BlockId.RESPONDERS, responders)):
            problem = await self._not_a_person(u for u in users if u != actor.user_id)
            if problem:
                errors[block] = problem
        if errors or declaration is None:
            raise FormError(errors)
        metadata = read_declare_metadata(private_metadata)
        declarer = replace(actor, channel_id=metadata.channel_id)
        flag = "--private " if declaration.private else ""
        invocation = declarer.invocation(f"declare {flag}{slack_encoded(title)} {severity}")
        try:
            incident = await self.incidents.declare(invocation, declaration)
        except DuplicateCommandError:
            # Submitted again (Slack said our first answer came too late): it is declared.
            raise FormError(
                {BlockId.TITLE: "This form has declared its incident already; see your DMs."}
            ) from None
        try:
            # Under the declaration's record: no command records of their own.
            staffing = replace(invocation, follow_up=True)
            incident = await self._staff(incident, staffing, commander, responders, form)
        except WarroomError as exc:
            # The incident is committed: the declarer hears about the rest, not a form error
            # (a form error would invite a second submission, and a second incident).
            failure = describe_failure(exc)
            self.tasks.spawn(self._dm(actor.user_id, f"{incident.ref} is declared, but: {failure}"))
        self.tasks.spawn(
            self._open_war_room(incident, actor.user_id, responders),
            on_error=lambda exc: self._tell_declarer(actor.user_id, incident, exc),
        )
        return incident

    async def _not_a_person(self, user_ids: Iterable[str]) -> str | None:
        """Why one of `user_ids` cannot hold a role, or None when all can. Asked side by
        side: each lookup has the same short deadline, so many responders cost one."""
        found = await asyncio.gather(
            *(self.people.resolve(UserRef(user_id=u)) for u in user_ids),
            return_exceptions=True,
        )
        for profile in found:
            if isinstance(profile, WarroomError):
                return profile.message  # Slack too slow to say who this is: nothing declared
            if isinstance(profile, BaseException):
                raise profile
            if profile is None:
                return "Slack does not know that person."
            if profile.is_bot:
                return "Roles go to people, not apps."
        return None

    async def _staff(
        self,
        incident: IncidentView,
        invocation: Invocation,
        commander: str,
        responders: list[str],
        form: Mapping[str, FormValue],
    ) -> IncidentView:
        """Responders, the summary as a note, then the commander (last: the declarer's right
        to assign ends when someone else takes command). All under the declare's record."""
        for user_id in responders:
            incident, _ = await self.incidents.assign_role(
                incident, Role.RESOLVER, UserRef(user_id=user_id), invocation
            )
        summary = _text(form.get(BlockId.SUMMARY))
        if summary:
            await self.incidents.add_note(incident, slack_encoded(summary), invocation)
        if commander != invocation.user_id:
            incident, _ = await self.incidents.assign_role(
                incident, Role.COMMANDER, UserRef(user_id=commander), invocation
            )
        return incident

    async def _open_war_room(
        self, incident: IncidentView, declarer: str, responders: list[str]
    ) -> None:
        await self.incidents.open_war_room(incident.id, response_url=None)
        opened = await self.incidents.find_by_id(incident.id)
        if opened.channel_id:
            # The opening invited the responders and shows them in the topic and header (their
            # roles were stored first); it briefed the commander, and they are briefed here.
            for user_id in responders:
                await self.incidents.brief(opened, Role.RESOLVER, user_id)
            await self.gateway.post_message(
                declarer, f"{opened.ref} is open in {channel_link(opened.channel_id)}."
            )

    async def _tell_declarer(self, user_id: str, incident: IncidentView, exc: Exception) -> None:
        await self.gateway.post_message(
            user_id,
            f"{incident.ref} is recorded, but its war room could not be opened: "
            f"{describe_failure(exc)}",
        )

    # -- the header's buttons ----------------------------------------------------------------

    async def open_incident_form(self, action: ActionId, number: int | None, actor: Actor) -> None:
        """Open the modal a header button stands for; someone the command would refuse is
        told why (ephemeral) and the attempt is logged, as for the slash command. A button
        whose value names no incident (`number` None: forged, or not a number) is told so."""
        if number is None:
            self._tell(actor.user_id, actor.channel_id, "That button names no incident.")
            return
        try:
            incident, last_update = await self._incident_and_last_update(number)
        except WarroomError as exc:
            self._tell(actor.user_id, actor.channel_id, exc.message)
            return
        verb = BUTTON_VERBS[action]
        refusal = self.refusal(action, incident, actor.user_id)
        if refusal:
            invocation = actor.invocation(f"{incident.ref} {verb}")
            try:
                await self.incidents.record_command(
                    incident.id, invocation, refused=True, reason=refusal
                )
            except DuplicateCommandError:
                return  # the same click again (a replay): it was refused and told once
            self._tell(actor.user_id, actor.channel_id or incident.channel_id, refusal)
            return
        if action == ActionId.HEADER_ASSIGN_ROLE:
            view = role_modal(incident)
        elif action == ActionId.HEADER_POST_UPDATE:
            cadence = self.config.policy(incident.severity).update_every
            draft = update_draft(
                self.templates,
                incident,
                cadence=format_duration(cadence) if cadence else None,
            )
            view = update_modal(incident, draft=draft, last_update=last_update)
        elif action == ActionId.HEADER_CHANGE_STATUS:
            view = status_modal(incident, severities=self.commands.severities())
        else:
            view = resolve_modal(incident)
        try:
            await self.gateway.open_view(actor.trigger_id, view)
        except ViewNotOpenedError as exc:
            # Recoverable: the slash command needs no form.
            self._tell(
                actor.user_id,
                actor.channel_id or incident.channel_id,
                f"The form did not open ({exc.reason}). Try again, or use "
                f"`/incident {verb}` in the war room.",
            )

    def refusal(self, action: ActionId, incident: IncidentView, user_id: str) -> str | None:
        """Why `user_id` may not do what the button offers, by the slash command's rules."""
        if self.incidents.may_manage(incident, user_id):
            return None
        is_comms = user_id in {p.id for p in incident.holders(Role.COMMS)}
        if action == ActionId.HEADER_POST_UPDATE and is_comms:
            return None
        what, also = {
            ActionId.HEADER_ASSIGN_ROLE: ("assign roles", ""),
            ActionId.HEADER_POST_UPDATE: ("post customer updates", ", the comms lead"),
            ActionId.HEADER_CHANGE_STATUS: ("change the status", ""),
            ActionId.HEADER_RESOLVE: ("resolve the incident", ""),
        }[action]
        holder = incident.commander
        commander = escape(holder.label) if holder else "nobody"
        return f"Only the commander ({commander}){also} or an admin can {what} in {incident.ref}."

    async def submit_incident_form(
        self,
        callback: CallbackId,
        actor: Actor,
        form: Mapping[str, FormValue],
        private_metadata: str,
    ) -> None:
        """Run the slash command(s) a header modal stands for; refusals and bad input come
        back as FormError (already on the timeline, as for the command)."""
        number = incident_number(private_metadata)
        if number is None:
            raise FormError({ERROR_BLOCKS[callback]: "This form is out of date."})
        ref = f"INC-{number}"
        if await self._handled(actor.invocation("")):
            # The same submission again: closed as the first was, before the form is read
            # against today's state (which could answer "nothing changed").
            return
        commands = await self._commands_for(callback, ref, number, form)
        replies = []
        # The first command is keyed on the submission's trigger alone, whatever the form now
        # stands for: a replay of the submission is stopped there, before anything changes.
        for key, (block, text) in enumerate(commands):
            invocation = actor.invocation(text, key=f":{key}" if key else "")
            try:
                replies.append((await self.commands.run(invocation)).text)
            except DuplicateCommandError:
                return  # the same submission again: it was carried out, and the modal closes
            except WarroomError as exc:
                raise FormError({block: exc.message}) from exc
        incident = await self.incidents.find(number=number, channel_id="")
        if incident is not None:
            self._tell(actor.user_id, incident.channel_id, "\n".join(replies))

    async def _commands_for(
        self, callback: CallbackId, ref: str, number: int, form: Mapping[str, FormValue]
    ) -> list[tuple[BlockId, str]]:
        """The slash command text(s) a submitted form stands for, each with the field that
        shows its error."""
        if callback == CallbackId.ROLE_MODAL:
            role, user = _text(form.get(BlockId.ROLE)), _text(form.get(BlockId.ROLE_HOLDER))
            if not role or not user:
                raise FormError({BlockId.ROLE_HOLDER: "Choose a role and a person."})
            return [(BlockId.ROLE_HOLDER, f"{ref} role {role} <@{user}>")]
        if callback == CallbackId.UPDATE_MODAL:
            text = _text(form.get(BlockId.UPDATE_TEXT))
            if not text:
                raise FormError({BlockId.UPDATE_TEXT: "Write the update."})
            return [(BlockId.UPDATE_TEXT, f"{ref} update {slack_encoded(text)}")]
        if callback == CallbackId.RESOLVE_MODAL:
            summary = _text(form.get(BlockId.SUMMARY))
            return [(BlockId.SUMMARY, f"{ref} resolve {slack_encoded(summary)}".strip())]
        incident = await self.incidents.find(number=number, channel_id="")
        if incident is None:
            raise FormError({BlockId.STATUS: f"There is no {ref}."})
        status, severity = _text(form.get(BlockId.STATUS)), _text(form.get(BlockId.SEVERITY))
        commands = []
        if status and status != incident.status:
            commands.append((BlockId.STATUS, f"{ref} status {status}"))
        if severity and severity != incident.severity:
            commands.append((BlockId.SEVERITY, f"{ref} sev {severity}"))
        if not commands:
            raise FormError(
                {
                    BlockId.STATUS: f"Nothing changed: {ref} is already {incident.status}, "
                    f"{incident.severity.upper()}."
                }
            )
        return commands

    # -- follow-ups ----------------------------------------------------------------------------

    async def open_followup_form(self, actor: Actor, message: Mapping[str, Any]) -> str | None:
        """The "Make a follow-up" form for a war-room message, prefilled from it; what to
        tell the person instead (None when the form opened)."""
        channel_id = actor.channel_id or ""
        incident = await self.incidents.find(number=None, channel_id=channel_id)
        if incident is None or not channel_id:
            return (
                "This is not an incident channel, so there is no incident to follow up. "
                "Use the shortcut on a message in an incident's war room."
            )
        raw = str(message.get("text") or "")
        # Names already known read better than ids; none is looked up (the trigger is short).
        names = {u: n for u in mentioned_ids(raw) if (n := self.people.remembered(u))}
        prefill = prefill_from_message(raw, names)
        view = followup_modal(
            incident,
            text=prefill.text,
            owner_id=prefill.owner_id,
            due=prefill.due,
            channel_id=channel_id,
            message_ts=str(message.get("ts") or ""),
        )
        try:
            await self.gateway.open_view(actor.trigger_id, view)
        except ViewNotOpenedError as exc:
            return (
                f"The form did not open ({exc.reason}). "
                "Add it with `/incident followup &lt;text&gt; [@owner] [due &lt;date&gt;]` instead."
            )
        return None

    async def followup_from_form(
        self, actor: Actor, form: Mapping[str, FormValue], private_metadata: str
    ) -> None:
        """Add the follow-up the form describes, linked to its message; bad input comes back
        on its field (FormError). Keyed on the form: submitted again, it adds nothing."""
        metadata = read_followup_metadata(private_metadata)
        number = incident_number(str(metadata.incident_number or ""))
        incident = await self.incidents.find(number=number, channel_id="") if number else None
        if incident is None:
            raise FormError({BlockId.FOLLOWUP_TEXT: "This form is out of date."})
        text = _text(form.get(BlockId.FOLLOWUP_TEXT))
        owner = _text(form.get(BlockId.FOLLOWUP_OWNER)) or None
        due = _text(form.get(BlockId.FOLLOWUP_DUE)) or None
        errors: dict[str, str] = {}
        try:
            check_text(text)
        except UsageError as exc:
            errors[BlockId.FOLLOWUP_TEXT] = exc.message
        try:
            if due:
                parse_due(due, today=self.followups.today())
        except UsageError as exc:
            errors[BlockId.FOLLOWUP_DUE] = exc.message
        if errors:
            raise FormError(errors)
        words = [f"{incident.ref} followup {slack_encoded(text)}"]
        words += [f"<@{owner}>"] if owner else []
        words += [f"due {due}"] if due else []
        invocation = replace(actor, channel_id=incident.channel_id).invocation(" ".join(words))
        try:
            added = await self.followups.add(
                incident,
                invocation,
                text=text,
                owner=UserRef(user_id=owner) if owner else None,
                due=due,
                source_ts=metadata.message_ts,
            )
        except DuplicateCommandError:
            return  # the same form again: it added its follow-up, and closes
        except UsageError as exc:
            raise FormError({BlockId.FOLLOWUP_OWNER: exc.message}) from exc
        self._tell(
            actor.user_id,
            incident.channel_id,
            f":clipboard: Follow-up *{added.ref}* added to {incident.ref}.",
        )

    async def followup_done_from_home(self, actor: Actor, value: str) -> None:
        """App Home's Done button: `/incident followup done FU-N`, with the same rules and
        record; a refusal or a problem is told by DM (the Home tab has no channel)."""
        number = followup_number(value)
        if number is None:
            self.tasks.spawn(self._dm(actor.user_id, "That button names no follow-up."))
            return
        try:
            await self.commands.run(actor.invocation(f"followup done FU-{number}"))
        except DuplicateCommandError:
            return  # the same click again: done once
        except WarroomError as exc:
            self.tasks.spawn(self._dm(actor.user_id, exc.message))

    # -- shared steps ------------------------------------------------------------------------

    async def _handled(self, invocation: Invocation) -> bool:
        """Whether this request's command is on record already. A read, to answer a replay
        early; what keeps it from running twice is the record's insert with the effect."""
        key = invocation.dedupe_key
        if key is None:
            return False
        return await self.db.run(lambda s: timeline_store.has_key(s, dedupe_key=key))

    async def _incident_and_last_update(self, number: int) -> tuple[IncidentView, str | None]:
        """The incident and its last customer update's text, in one round trip."""

        def _load(session: Session) -> tuple[IncidentView, str | None]:
            row = incident_store.incident_by_number(session, number=number)
            if row is None or row.id is None:
                raise UsageError(f"There is no INC-{number}.")
            updates = timeline_store.events_of_kinds(
                session, incident_id=row.id, kinds=("customer_update",)
            )
            last = to_plain(updates[-1].text) if updates and updates[-1].text else None
            return incident_view(session, row), last

        return await self.db.run(_load)

    def _tell(self, user_id: str, channel_id: str | None, text: str) -> None:
        """A message only `user_id` sees, after the ack: ephemeral in the channel, else a DM."""
        self.tasks.spawn(self._whisper(user_id, channel_id, text))

    async def _whisper(self, user_id: str, channel_id: str | None, text: str) -> None:
        if channel_id:
            try:
                await self.gateway.post_ephemeral(channel_id, user_id, text)
                return
            except SlackCallError as exc:
                # Not a member there (a header seen from a shared link): a DM reaches them.
                if exc.code not in _NOT_THERE:
                    raise
        await self._dm(user_id, text)

    async def _dm(self, user_id: str, text: str) -> None:
        await self.gateway.post_message(user_id, text)


def _ticked(value: FormValue) -> bool:
    """Whether the declare form's *Private* box is ticked."""
    return isinstance(value, list) and "private" in value
