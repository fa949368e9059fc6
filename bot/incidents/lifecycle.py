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
from bot.errors import NotAllowedError, NotFoundError, UsageError
from bot.exports.export import KEY_KINDS
from bot.followups.rules import FollowUpView, followup_view, unowned_text
from bot.incidents.enums import (
    CLOSED_WITHOUT_RESOLUTION,
    ENDED_STATUSES,
    SETTABLE_STATUSES,
    Role,
    Severity,
    Status,
)
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
from bot.slack.text import channel_link, escape, slack_date, to_plain
from bot.tasks import BackgroundTasks
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import members as member_store
from storage import outbox as outbox_store
from storage import reminders as reminder_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import Incident, TimelineEvent

SLACK_TEXT_LIMIT = 39_000
_URL = re.compile(r"^<?(https?://[^\s|>]+)(?:\|[^>]*)?>?$")
_SEVERITY = re.compile(r"^(?:sev-?)?([1-4])$", re.IGNORECASE)
_ACCEPT_FIRST = (
    "{ref} is in triage: accept it first (`/incident accept`), or decline it "
    "(`/incident decline &lt;reason&gt;`)."
)


@dataclass
class Outcome:
    """What a lifecycle change did: the incident after it, and what to do once committed."""

    incident: IncidentView
    clocks: list[ClockChange] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    changed: bool = True
    cautions: list[str] = field(default_factory=list)
    # Merged: the incident it went into, and the people to invite to that one's room.
    merged_into: IncidentView | None = None
    invitees: list[str] = field(default_factory=list)
    # A reopened incident whose war room is archived: brought back before the refresh.
    bring_back_room: bool = False


def closed_refusal(ref: str, status: Status, merged_into: str | None) -> str | None:
    """Why nothing more can change on a declined or merged incident, or None if it is neither."""
    if status == Status.DECLINED:
        return f"{ref} was declined; nothing more can change on it."
    if status == Status.MERGED:
        into = merged_into or "another incident"
        return f"{ref} was merged into {into}; nothing more can change on it."
    return None


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
            if row.status == Status.TRIAGE:
                raise UsageError(_ACCEPT_FIRST.format(ref=incident.ref))
            if row.status == status:
                return Outcome(incident_view(session, row), changed=False)
            previous = row.status
            row.status = status
            if status == Status.MONITORING and row.mitigated_at is None:
                row.mitigated_at = now  # mitigation is the first move to monitoring
            self._status_event(session, row, previous, status, now, invocation)
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
                posted_at=slack_date(now),
            )
            messages = (
                [self._enqueue(session, row, row.channel_id, body, now)] if row.channel_id else []
            )
            # A private incident's customer updates stay in its room.
            messages += self._announce(session, row, view, body, None, now)
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
            self._take_command_if_free(session, row, invocation, now)
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
            if row.status == Status.TRIAGE:
                raise UsageError(_ACCEPT_FIRST.format(ref=incident.ref))
            previous = row.status
            row.status = Status.RESOLVED
            row.resolved_at = now
            self._status_event(session, row, previous, Status.RESOLVED, now, invocation)
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
            where = channel_link(row.channel_id) if row.channel_id else ""
            text = (
                f":white_check_mark: *{view.ref}* resolved after "
                f"{format_duration(now - row.declared_at)}: {escape(view.title)} {where}"
            )
            if summary:
                text += f"\n>{escape(to_plain(summary))}"
            hidden = f":white_check_mark: *{view.ref}*, a private incident, is resolved."
            messages += self._announce(session, row, view, text, hidden, now)
            return Outcome(view, clocks=changes, messages=messages)

        return await self._apply(incident, invocation, _resolve, managing="resolve the incident")

    async def accept(self, incident: IncidentView, invocation: Invocation) -> Outcome:
        """Accept a triaged incident (anyone may): it is acknowledged and investigated, and its
        update clock starts now; with nobody in command, the accepter takes command."""

        def _accept(session: Session, row: Incident, now: datetime) -> Outcome:
            if row.status != Status.TRIAGE:
                raise UsageError(f"{incident.ref} is not in triage; it is {row.status}.")
            row.status = Status.INVESTIGATING
            if row.acknowledged_at is None:
                row.acknowledged_at = now
            self._status_event(session, row, Status.TRIAGE, Status.INVESTIGATING, now, invocation)
            self._event(session, row, "accepted", now, invocation, None, {})
            self._take_command_if_free(session, row, invocation, now)
            view = incident_view(session, row)
            changes = self._stop_clocks(session, view, (ReminderKind.ACK,))
            every = self.config.policy(view.severity).update_every
            # In triage nobody owed customers an update: the clock starts at acceptance.
            changes += self._reset_clock(
                session, view, ReminderKind.UPDATE, now + every if every else None
            )
            return Outcome(view, clocks=changes)

        outcome = await self._apply(incident, invocation, _accept)
        commander = outcome.incident.commander
        if incident.commander is None and commander is not None:
            self.tasks.spawn(
                self.incidents.welcome(outcome.incident, Role.COMMANDER, invocation.user_id)
            )
        return outcome

    async def decline(self, incident: IncidentView, reason: str, invocation: Invocation) -> Outcome:
        """End an open incident as declined (not an incident): its clocks stop, no post-mortem
        is asked, the room is told and the announcement amended."""

        def _decline(session: Session, row: Incident, now: datetime) -> Outcome:
            self._require_open(row, incident.ref, "declined")
            previous = row.status
            row.status = Status.DECLINED
            row.resolved_at = None  # the `declined` event's time is when it ended
            self._status_event(session, row, previous, Status.DECLINED, now, invocation)
            self._event(session, row, "declined", now, invocation, reason, {"reason": reason})
            view = incident_view(session, row)
            changes = self._stop_clocks(session, view, tuple(ReminderKind))
            messages = []
            if row.channel_id:
                text = f":no_entry_sign: {view.ref} was declined: {escape(reason)}"
                messages.append(self._enqueue(session, row, row.channel_id, text, now))
            return Outcome(view, clocks=changes, messages=messages)

        return await self._apply(
            incident, invocation, _decline, managing="decline the incident", open_to_all=True
        )

    async def merge(self, incident: IncidentView, into: int, invocation: Invocation) -> Outcome:
        """End a duplicate as merged into INC-`into`: its clocks stop, both rooms are told, and
        its people are invited to the other room. Refused into itself, into an ended incident,
        around a cycle, or from a private incident into a public one."""

        def _merge(session: Session, row: Incident, now: datetime) -> Outcome:
            self._require_open(row, incident.ref, "merged")
            target = incident_store.incident_by_number(session, number=into)
            if target is None or not member_store.may_see(
                session, incident=target, user_id=invocation.user_id, admins=self.config.admins
            ):
                raise NotFoundError(f"There is no INC-{into}.")
            assert target.id is not None and row.id is not None
            target = incident_store.lock_incident(session, incident_id=target.id)
            self._require_mergeable(session, row, target)
            into_ref = f"INC-{target.number}"
            previous = row.status
            row.status = Status.MERGED
            row.merged_into_id = target.id
            row.resolved_at = None  # the `merged` event's time is when it ended
            self._status_event(session, row, previous, Status.MERGED, now, invocation)
            self._event(
                session,
                row,
                "merged",
                now,
                invocation,
                f"Merged into {into_ref}",
                {"into": into_ref},
            )
            self._event(
                session,
                target,
                "merged",
                now,
                invocation,
                f"{incident.ref} merged into this incident",
                {"from": incident.ref},
            )
            view = incident_view(session, row)
            changes = self._stop_clocks(session, view, tuple(ReminderKind))
            messages = []
            there = channel_link(target.channel_id) if target.channel_id else into_ref
            here = channel_link(row.channel_id) if row.channel_id else incident.ref
            if row.channel_id:
                text = (
                    f":twisted_rightwards_arrows: {view.ref} is merged into *{into_ref}*: "
                    f"carry on in {there}."
                )
                messages.append(self._enqueue(session, row, row.channel_id, text, now))
            if target.channel_id:
                text = (
                    f":twisted_rightwards_arrows: *{view.ref}* ({escape(view.title)}) was merged "
                    f"into this incident; its timeline joins this one. Its room: {here}"
                )
                messages.append(self._enqueue(session, target, target.channel_id, text, now))
            people = member_store.members(session, incident_id=row.id)
            people |= {r.user.id for r in view.roles if r.user.id and r.relieved_at is None}
            if view.declared_by.id:
                people.add(view.declared_by.id)
            return Outcome(
                view,
                clocks=changes,
                messages=messages,
                merged_into=incident_view(session, target),
                invitees=sorted(people),
            )

        outcome = await self._apply(
            incident, invocation, _merge, managing="merge the incident", open_to_all=True
        )
        target = outcome.merged_into
        if outcome.changed and target is not None and target.channel_id and outcome.invitees:
            self.tasks.spawn(self.incidents.invite(target, outcome.invitees))
        if outcome.changed and target is not None:
            self.tasks.spawn(self.incidents.refresh_war_room(target.id))
        return outcome

    def _require_open(self, row: Incident, ref: str, ending: str) -> None:
        if row.status == Status.RESOLVED:
            raise UsageError(f"{ref} is resolved; it cannot be {ending}.")

    def _require_mergeable(self, session: Session, row: Incident, target: Incident) -> None:
        ref, into_ref = f"INC-{row.number}", f"INC-{target.number}"
        if target.id == row.id:
            raise UsageError(f"{ref} cannot be merged into itself.")
        seen = {row.id}
        step: Incident | None = target
        while step is not None and step.merged_into_id is not None:
            # A chain leading back here would make a cycle: X into M into ... into X.
            if step.merged_into_id in seen:
                raise UsageError(f"Merging {ref} into {into_ref} would make a cycle.")
            seen.add(step.id)
            step = incident_store.get_incident(session, incident_id=step.merged_into_id)
        if target.status in ENDED_STATUSES:
            raise UsageError(f"{into_ref} is {target.status}; merge into an open incident.")
        if row.is_private and not target.is_private:
            raise UsageError(
                f"{ref} is private and {into_ref} is not: merging would show its timeline "
                "to everyone."
            )

    def _take_command_if_free(
        self, session: Session, row: Incident, invocation: Invocation, now: datetime
    ) -> None:
        """With nobody in command, whoever acknowledges or accepts the incident takes it."""
        if incident_view(session, row).commander is None:
            self.incidents.take_role(
                session,
                row,
                Role.COMMANDER,
                Person(invocation.user_id, invocation.user_name),
                by=invocation.user_id,
                at=now,
                by_name=invocation.user_name,
            )

    def _stop_clocks(
        self, session: Session, incident: IncidentView, kinds: tuple[str, ...]
    ) -> list[ClockChange]:
        changes = []
        for kind in kinds:
            stopped = reminder_store.stop_reminder(session, incident_id=incident.id, kind=kind)
            if stopped:
                changes.append(ClockChange.of(stopped))
        return changes

    async def reopen(
        self, incident: IncidentView, reason: str | None, invocation: Invocation
    ) -> Outcome:
        """Reopen a resolved incident as investigating: its resolution stays on the timeline,
        post-mortem reminders stop, the update clock starts again, its room comes back."""

        def _reopen(session: Session, row: Incident, now: datetime) -> Outcome:
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
            self._status_event(session, row, Status.RESOLVED, Status.INVESTIGATING, now, invocation)
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
            hidden = f":arrows_counterclockwise: *{view.ref}*, a private incident, is reopened."
            messages += self._announce(session, row, view, text, hidden, now)
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
        open_to_all: bool = False,
    ) -> Outcome:
        """Make `change` in one unit of work with the command's record. With `managing`, who
        may is checked there, on the row locked for the change: a hand-over committed a moment
        before counts."""
        now = self.clock()

        def _unit(session: Session) -> Outcome:
            row = incident_store.lock_incident(session, incident_id=incident.id)
            current = incident_view(session, row)
            closed = closed_refusal(current.ref, current.status, current.merged_into)
            if closed is not None:
                raise UsageError(closed)
            # With `open_to_all`, anyone may while nobody is in command.
            if managing is not None and not (open_to_all and current.commander is None):
                refusal = self._refusal(current, invocation.user_id, managing, comms=comms)
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
        if outcome.incident.status in CLOSED_WITHOUT_RESOLUTION:
            await self.incidents.amend_announcement(outcome.incident)

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

    def _announce(
        self,
        session: Session,
        row: Incident,
        view: IncidentView,
        text: str,
        hidden: str | None,
        now: datetime,
    ) -> list[int]:
        """Post `text` to the announcement channel; for a private incident only `hidden` (its
        reference, never its title or words), and only with `announce_private`."""
        channel = self.config.announce_channel
        if not channel:
            return []
        if view.private:
            if hidden is None or not self.config.announce_private:
                return []
            text = hidden
        return [self._enqueue(session, row, channel, text, now)]

    def _status_event(
        self,
        session: Session,
        row: Incident,
        previous: str,
        status: str,
        now: datetime,
        invocation: Invocation,
    ) -> None:
        """Record the move from `previous` to `status` (`status_changed`)."""
        text = f"Status {previous} → {status}"
        self._event(
            session, row, "status_changed", now, invocation, text, {"from": previous, "to": status}
        )

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
