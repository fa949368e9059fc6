"""Status, severity, customer updates, acknowledgement, resolution and the post-mortem: each
changes state, moves the clocks and lands on the timeline in one unit of work."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlmodel import Session

from bot.config import WarroomConfig
from bot.durations import format_duration
from bot.errors import NotAllowedError, UsageError
from bot.exports.export import KEY_KINDS
from bot.followups.rules import FollowUpView, followup_view, unowned_text
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, SETTABLE_STATUSES, Role, Severity, Status
from bot.incidents.readmodels import IncidentView, Person, incident_view
from bot.incidents.service import IncidentService, Invocation, command_event
from bot.outbox.sender import OutboxSender
from bot.reminders.rules import (
    ReminderKind,
    ack_due,
    first_postmortem_reminder,
    first_update_due,
    speculative_phrases,
)
from bot.reminders.scheduler import ClockChange, Clocks
from bot.slack.text import channel_link, escape, to_plain
from bot.tasks import BackgroundTasks
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage import reminders as reminder_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import Incident, TimelineEvent

SLACK_TEXT_LIMIT = 39_000
_URL = re.compile(r"^<?(https?://[^\s|>]+)(?:\|[^>]*)?>?$")
_SEVERITY = re.compile(r"^(?:sev-?)?([1-4])$", re.IGNORECASE)


@dataclass
class Outcome:
    """What a lifecycle change did: the incident after it, and what to do once committed."""

    incident: IncidentView
    clocks: list[ClockChange] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    changed: bool = True
    cautions: list[str] = field(default_factory=list)
    # A reopened incident whose war room is archived: brought back before the refresh.
    bring_back_room: bool = False


def parse_status(args: str) -> Status:
    """The status `args` names; UsageError unless it is one `/incident status` may set."""
    word = args.strip().lower()
    for status in SETTABLE_STATUSES:
        if word == status:
            return status
    raise UsageError(f"Usage: `/incident status {'|'.join(SETTABLE_STATUSES)}`")


def parse_severity(args: str) -> Severity:
    """`2`, `sev2` or `sev-2` -> `sev2`; UsageError for anything else."""
    match = _SEVERITY.match(args.strip())
    if not match:
        raise UsageError("Usage: `/incident sev 1-4`")
    return Severity(f"sev{match.group(1)}")


def parse_postmortem_done(args: str) -> str:
    """The post-mortem's URL from `done <url>`; UsageError unless that is what `args` says."""
    # A link Slack formatted with its text (`<https://…|Post-mortem for INC-7>`) has spaces.
    words = args.split(None, 1)
    if len(words) != 2 or words[0].lower() != "done":
        raise UsageError("Usage: `/incident postmortem` or `/incident postmortem done &lt;url&gt;`")
    match = _URL.match(words[1].strip())
    if not match:
        raise UsageError("Give the post-mortem's link as an http(s) URL.")
    return match.group(1)


def action_item(followup: FollowUpView) -> dict[str, str]:
    """A follow-up as a row of the post-mortem draft's action items (one line, no `|`)."""

    def cell(text: str) -> str:
        return " ".join(text.split()).replace("|", "/")

    return {
        "ref": followup.ref,
        "text": cell(followup.text),
        "owner": cell(followup.owner.label) if followup.owner else "_nobody yet_",
        "due": followup.due.isoformat() if followup.due else "",
        "status": followup.status + (f": {cell(followup.reason)}" if followup.reason else ""),
    }


class LifecycleService:
    """Status, severity, updates, acknowledgement, resolution and post-mortem of an incident."""

    def __init__(
        self,
        *,
        db: Database,
        incidents: IncidentService,
        clocks: Clocks,
        outbox: OutboxSender,
        config: WarroomConfig,
        templates: Environment,
        tasks: BackgroundTasks,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.incidents = incidents
        self.clocks = clocks
        self.outbox = outbox
        self.config = config
        self.templates = templates
        self.tasks = tasks
        self.clock = clock

    # -- access ------------------------------------------------------------------------------

    def _refusal(
        self, incident: IncidentView, user_id: str, what: str, *, comms: bool
    ) -> str | None:
        """Why `user_id` may not do `what` to the incident as it stands, or None if they may:
        the commander and admins may, and for customer updates (`comms`) the comms lead."""
        if self.incidents.may_manage(incident, user_id):
            return None
        if comms and user_id in {p.id for p in incident.holders(Role.COMMS)}:
            return None
        holder = incident.commander
        also = ", the comms lead" if comms else ""
        commander = escape(holder.label) if holder else "nobody"
        return f"Only the commander ({commander}){also} or an admin can {what} in {incident.ref}."

    # -- the commands ------------------------------------------------------------------------

    async def change_status(
        self, incident: IncidentView, status: Status, invocation: Invocation
    ) -> Outcome:
        """Move the incident to `status` (commander or admin only); resolved stays resolved."""
        if status == Status.RESOLVED:
            return await self.resolve(incident, None, invocation)

        def _change(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.status == Status.RESOLVED:
                raise UsageError(
                    f"{incident.ref} is resolved; reopen it with `/incident reopen [reason]`."
                )
            if row.status == status:
                return Outcome(incident_view(session, row), changed=False)
            previous = row.status
            row.status = status
            if status == Status.MONITORING and row.mitigated_at is None:
                row.mitigated_at = now  # mitigation is the first move to monitoring
            self._event(
                session,
                row,
                "status_changed",
                now,
                invocation,
                f"Status {previous} → {status}",
                {"from": previous, "to": status},
            )
            return Outcome(incident_view(session, row))

        return await self._apply(incident, invocation, _change, managing="change the status")

    async def change_severity(
        self, incident: IncidentView, severity: Severity, invocation: Invocation
    ) -> Outcome:
        """Change the severity (commander or admin only) and restart the update and ack clocks."""

        def _change(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.severity == severity:
                return Outcome(incident_view(session, row), changed=False)
            previous = row.severity
            row.severity = severity
            self._event(
                session,
                row,
                "severity_changed",
                now,
                invocation,
                f"Severity {previous.upper()} → {severity.upper()}",
                {"from": previous, "to": severity},
            )
            view = incident_view(session, row)
            # The new cadence counts from the last update (or declaration), as before.
            changes = self._reset_clock(
                session, view, ReminderKind.UPDATE, first_update_due(view, self.config)
            )
            changes += self._reset_clock(
                session, view, ReminderKind.ACK, ack_due(view, self.config)
            )
            return Outcome(view, clocks=changes)

        return await self._apply(incident, invocation, _change, managing="change the severity")

    async def post_update(
        self, incident: IncidentView, text: str, invocation: Invocation
    ) -> Outcome:
        """Post a customer update to the war room and announcement channel, restarting its clock."""
        plain = to_plain(text.strip())

        def _update(session: Session, row: Incident, now: datetime) -> Outcome:
            if not text.strip():
                raise UsageError("Usage: `/incident update &lt;text&gt;`")
            row.last_update_at = now
            self._event(session, row, "customer_update", now, invocation, text.strip(), {})
            view = incident_view(session, row)
            body = self.templates.get_template("customer_update.md.j2").render(
                incident=view,
                text=plain,
                author=invocation.user_name or invocation.user_id,
                posted_at=self._local(now),
            )
            targets = [t for t in (row.channel_id, self.config.announce_channel) if t]
            messages = [self._enqueue(session, row, target, body, now) for target in targets]
            changes = self._reset_clock(
                session, view, ReminderKind.UPDATE, first_update_due(view, self.config)
            )
            return Outcome(
                view, clocks=changes, messages=messages, cautions=speculative_phrases(plain)
            )

        return await self._apply(
            incident, invocation, _update, managing="post customer updates", comms=True
        )

    async def acknowledge(self, incident: IncidentView, invocation: Invocation) -> Outcome:
        """Anyone may acknowledge; with nobody in command, the acknowledger takes command."""

        def _ack(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.acknowledged_at is not None:
                return Outcome(incident_view(session, row), changed=False)
            row.acknowledged_at = now
            session.add(row)
            view = incident_view(session, row)
            if view.commander is None:
                self.incidents.take_role(
                    session,
                    row,
                    Role.COMMANDER,
                    Person(invocation.user_id, invocation.user_name),
                    by=invocation.user_id,
                    at=now,
                    by_name=invocation.user_name,
                )
            stopped = reminder_store.stop_reminder(
                session, incident_id=view.id, kind=ReminderKind.ACK
            )
            view = incident_view(session, row)
            return Outcome(view, clocks=[ClockChange.of(stopped)] if stopped else [])

        outcome = await self._apply(incident, invocation, _ack)
        commander = outcome.incident.commander
        if outcome.changed and incident.commander is None and commander is not None:
            # Acknowledged from anywhere (`/incident INC-7 ack`): the new commander joins the room.
            self.tasks.spawn(
                self.incidents.welcome(outcome.incident, Role.COMMANDER, invocation.user_id)
            )
        return outcome

    async def resolve(
        self, incident: IncidentView, summary: str | None, invocation: Invocation
    ) -> Outcome:
        """Resolve: stop the clocks, start post-mortem reminders, tell the announce channel."""

        def _resolve(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.status == Status.RESOLVED:
                return Outcome(incident_view(session, row), changed=False)
            previous = row.status
            row.status = Status.RESOLVED
            row.resolved_at = now
            self._event(
                session,
                row,
                "status_changed",
                now,
                invocation,
                f"Status {previous} → resolved",
                {"from": previous, "to": Status.RESOLVED},
            )
            self._event(
                session,
                row,
                "resolved",
                now,
                invocation,
                summary,
                {"duration_seconds": int((now - row.declared_at).total_seconds())},
            )
            view = incident_view(session, row)
            changes = []
            for kind in (ReminderKind.UPDATE, ReminderKind.ACK):
                stopped = reminder_store.stop_reminder(session, incident_id=view.id, kind=kind)
                if stopped:
                    changes.append(ClockChange.of(stopped))
            changes += self._reset_clock(
                session, view, ReminderKind.POSTMORTEM, first_postmortem_reminder(view, self.config)
            )
            messages = []
            unowned = followup_store.unowned_open(session, incident_id=view.id)
            if unowned and row.channel_id:
                # Work nobody owns is put to the commander while the room still remembers it.
                views = [followup_view(f, view.number) for f in unowned]
                text = unowned_text(view.commander, view.ref, views)
                messages.append(self._enqueue(session, row, row.channel_id, text, now))
            if self.config.announce_channel:
                where = channel_link(row.channel_id) if row.channel_id else ""
                text = (
                    f":white_check_mark: *{view.ref}* resolved after "
                    f"{format_duration(now - row.declared_at)}: {escape(view.title)} {where}"
                )
                if summary:
                    text += f"\n>{escape(to_plain(summary))}"
                messages.append(
                    self._enqueue(session, row, self.config.announce_channel, text, now)
                )
            return Outcome(view, clocks=changes, messages=messages)

        return await self._apply(incident, invocation, _resolve, managing="resolve the incident")

    async def reopen(
        self, incident: IncidentView, reason: str | None, invocation: Invocation
    ) -> Outcome:
        """Reopen a resolved incident as investigating: its resolution stays on the timeline,
        post-mortem reminders stop, the update clock starts again, its room comes back."""

        def _reopen(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.status in CLOSED_WITHOUT_RESOLUTION:
                raise UsageError(
                    f"{incident.ref} was {row.status}; {row.status} incidents cannot be reopened."
                )
            if row.status != Status.RESOLVED:
                raise UsageError(f"{incident.ref} is not resolved; only a resolved one reopens.")
            view = incident_view(session, row)
            if view.commander is not None:
                refusal = self._refusal(view, invocation.user_id, "reopen it", comms=False)
                if refusal is not None:
                    raise NotAllowedError(refusal)
            resolved_at, archived = row.resolved_at, row.archived_at is not None
            row.status = Status.INVESTIGATING
            row.resolved_at = None
            self._event(
                session,
                row,
                "status_changed",
                now,
                invocation,
                f"Status {Status.RESOLVED} → {Status.INVESTIGATING}",
                {"from": Status.RESOLVED, "to": Status.INVESTIGATING},
            )
            data: dict[str, Any] = {"resolved_at": resolved_at.isoformat() if resolved_at else None}
            if reason:
                data["reason"] = reason
            if archived:
                data["previous_channel"] = row.channel_id
            self._event(session, row, "reopened", now, invocation, reason, data)
            view = incident_view(session, row)
            changes = self._reset_clock(session, view, ReminderKind.POSTMORTEM, None)
            # The update clock starts again from now: the last update predates the reopening.
            every = self.config.policy(view.severity).update_every
            changes += self._reset_clock(
                session, view, ReminderKind.UPDATE, now + every if every else None
            )
            text = f":arrows_counterclockwise: *{view.ref}* is reopened: {escape(view.title)}"
            if reason:
                text += f"\n>{escape(to_plain(reason))}"
            messages = []
            if row.channel_id and not archived:
                messages.append(self._enqueue(session, row, row.channel_id, text, now))
            announce = self.config.announce_channel
            if announce and view.private and self.config.announce_private:
                # Outside its room a private incident is named, never described.
                hidden = f":arrows_counterclockwise: *{view.ref}*, a private incident, is reopened."
                messages.append(self._enqueue(session, row, announce, hidden, now))
            elif announce and not view.private:
                messages.append(self._enqueue(session, row, announce, text, now))
            return Outcome(view, clocks=changes, messages=messages, bring_back_room=archived)

        return await self._apply(incident, invocation, _reopen)

    async def postmortem_done(
        self, incident: IncidentView, url: str, invocation: Invocation
    ) -> Outcome:
        """Close the post-mortem at `url` and stop its reminders; only once resolved."""

        def _done(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.status != Status.RESOLVED:
                raise UsageError(f"Resolve {incident.ref} before closing its post-mortem.")
            unowned = followup_store.unowned_open(session, incident_id=incident.id)
            if unowned and self.config.postmortem_requires_owners:
                listed = "\n".join(
                    f"• *{f.ref}* {escape(f.text)}"
                    for f in (followup_view(u, incident.number) for u in unowned)
                )
                raise UsageError(
                    f"{incident.ref}'s post-mortem stays open while follow-ups have no owner:\n"
                    f"{listed}\nGive each one: `/incident followup assign FU-N @person`."
                )
            row.postmortem_url = url
            row.postmortem_done_at = now
            self._event(
                session, row, "postmortem", now, invocation, url, {"action": "done", "url": url}
            )
            stopped = reminder_store.stop_reminder(
                session, incident_id=row.id or 0, kind=ReminderKind.POSTMORTEM
            )
            return Outcome(
                incident_view(session, row), clocks=[ClockChange.of(stopped)] if stopped else []
            )

        return await self._apply(incident, invocation, _done, managing="close the post-mortem")

    async def postmortem_draft(self, incident: IncidentView, invocation: Invocation) -> Outcome:
        """Post a post-mortem draft built from the timeline into the war room."""

        def _draft(session: Session, row: Incident, now: datetime) -> Outcome:
            view = incident_view(session, row)
            draft = self.render_postmortem(session, view, now)
            self._event(session, row, "postmortem", now, invocation, None, {"action": "draft"})
            messages = []
            if row.channel_id:
                text = escape(draft)
                if len(text) > SLACK_TEXT_LIMIT:
                    text = text[: SLACK_TEXT_LIMIT - 1] + "…"
                messages.append(self._enqueue(session, row, row.channel_id, text, now))
            return Outcome(view, messages=messages)

        return await self._apply(
            incident, invocation, _draft, managing="post the post-mortem draft"
        )

    def render_postmortem(self, session: Session, incident: IncidentView, now: datetime) -> str:
        """The post-mortem draft in Markdown: summary, durations, updates, key events, decisions."""
        events = list(timeline_store.events_for(session, incident_id=incident.id))
        key_kinds = KEY_KINDS - {"postmortem"}
        decision_kinds = {"role_assigned", "note"}
        resolved = [e for e in events if e.kind == "resolved"]
        return self.templates.get_template("postmortem.md.j2").render(
            incident=incident,
            summary=to_plain(resolved[-1].text) if resolved and resolved[-1].text else None,
            times={"declared": self._local(incident.declared_at)},
            durations={
                "acknowledge": self._span(incident.declared_at, incident.acknowledged_at),
                "mitigate": self._span(incident.declared_at, incident.mitigated_at),
                "resolve": self._span(incident.declared_at, incident.resolved_at),
            },
            updates=[self._line(e) for e in events if e.kind == "customer_update"],
            key_events=[self._line(e) for e in events if e.kind in key_kinds],
            decisions=[self._line(e) for e in events if e.kind in decision_kinds],
            followups=[
                action_item(followup_view(f, incident.number))
                for f in followup_store.followups_for_incident(session, incident_id=incident.id)
            ],
        )

    # -- shared steps ------------------------------------------------------------------------

    async def _apply(
        self,
        incident: IncidentView,
        invocation: Invocation,
        change: Callable[[Session, Incident, datetime], Outcome],
        *,
        managing: str | None = None,
        comms: bool = False,
    ) -> Outcome:
        """Make `change` in one unit of work with the command's record. With `managing`, who
        may is checked there, on the row locked for the change: a hand-over committed a moment
        before counts."""
        now = self.clock()

        def _unit(session: Session) -> Outcome:
            row = incident_store.lock_incident(session, incident_id=incident.id)
            if managing is not None:
                refusal = self._refusal(
                    incident_view(session, row), invocation.user_id, managing, comms=comms
                )
                if refusal is not None:
                    raise NotAllowedError(refusal)
            command_event(session, incident_id=incident.id, invocation=invocation, at=now)
            outcome = change(session, row, now)
            session.add(row)
            session.flush()
            return outcome

        outcome = await self.db.run(_unit)
        # Off the ack path: the reminder rows are committed, and they are what counts.
        self.tasks.spawn(self.clocks.follow(outcome.clocks))
        if outcome.changed:
            self.tasks.spawn(self._after_commit(outcome))
        return outcome

    async def _after_commit(self, outcome: Outcome) -> None:
        if outcome.bring_back_room:
            await self.incidents.bring_back_war_room(outcome.incident.id)
        for message_id in outcome.messages:
            await self.outbox.send(message_id)
        await self.incidents.refresh_war_room(outcome.incident.id)

    def _reset_clock(
        self, session: Session, incident: IncidentView, kind: str, due: datetime | None
    ) -> list[ClockChange]:
        if due is None:
            stopped = reminder_store.stop_reminder(session, incident_id=incident.id, kind=kind)
            return [ClockChange.of(stopped)] if stopped else []
        return [
            ClockChange.of(
                reminder_store.set_reminder(session, incident_id=incident.id, kind=kind, due_at=due)
            )
        ]

    def _event(
        self,
        session: Session,
        row: Incident,
        kind: str,
        now: datetime,
        invocation: Invocation,
        text: str | None,
        data: dict[str, Any],
    ) -> None:
        assert row.id is not None
        timeline_store.add_event(
            session,
            incident_id=row.id,
            kind=kind,
            at=now,
            actor_id=invocation.user_id,
            actor_name=invocation.user_name,
            text=text,
            data=data,
        )

    def _enqueue(
        self, session: Session, row: Incident, channel_id: str, text: str, now: datetime
    ) -> int:
        message = outbox_store.enqueue(
            session, channel_id=channel_id, text=text, at=now, incident_id=row.id
        )
        assert message.id is not None
        return message.id

    def _local(self, at: datetime) -> str:
        return at.astimezone(ZoneInfo(self.config.timezone)).strftime("%Y-%m-%d %H:%M %Z")

    def _span(self, start: datetime, end: datetime | None) -> str:
        return format_duration(end - start) if end else "n/a"

    def _line(self, event: TimelineEvent) -> dict[str, str]:
        who = event.actor_name or event.actor_id or "warroom"
        text = to_plain(event.text or "")
        what = {
            "declared": f"Declared by {who}: {text}",
            "role_assigned": f"{text} (assigned by {who})",
            "note": f"Note from {who}: {text}",
            "customer_update": f"Customer update by {who}: {text}",
        }.get(event.kind, f"{text} ({who})" if text else f"{event.kind} ({who})")
        return {"at": self._local(event.at), "what": what, "text": text}
