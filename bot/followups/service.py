"""Follow-ups from text to record: add, close, drop, assign and move them, each with the
command's record in one unit of work, and list them. No Slack types."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session

from bot.commands.parse import FollowUpChange, UserRef
from bot.config import WarroomConfig
from bot.errors import NotAllowedError, NotFoundError, UsageError
from bot.followups.rules import (
    FollowUpStatus,
    FollowUpView,
    check_text,
    first_reminder,
    followup_view,
    parse_due,
    reminder_kind,
    today_in,
)
from bot.incidents.people import People
from bot.incidents.readmodels import IncidentView, Person, incident_view
from bot.incidents.service import IncidentService, Invocation, command_event
from bot.reminders.scheduler import ClockChange, Clocks
from bot.slack.text import escape
from bot.tasks import BackgroundTasks
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import members as member_store
from storage import reminders as reminder_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import FollowUp, Incident


class ChangeKind(StrEnum):
    """What a change to a follow-up does (the words of `/incident followup <kind> FU-N`)."""

    DONE = "done"
    DROP = "drop"
    ASSIGN = "assign"
    DUE = "due"


@dataclass(frozen=True)
class Changed:
    """A follow-up after a change, and whether the change did anything."""

    followup: FollowUpView
    changed: bool


def person_data(person: Person | None) -> dict[str, Any] | None:
    """A person as timeline data: {id, name}, or None for nobody."""
    return None if person is None else {"id": person.id, "name": person.name}


def load_views(session: Session, rows: Sequence[FollowUp]) -> list[FollowUpView]:
    """Read models of stored follow-ups, with their incidents' numbers (each read once)."""
    numbers: dict[int, int] = {}
    views = []
    for row in rows:
        if row.incident_id not in numbers:
            numbers[row.incident_id] = session.get_one(Incident, row.incident_id).number
        views.append(followup_view(row, numbers[row.incident_id]))
    return views


def overdue_first(followups: Sequence[FollowUpView], today: date) -> list[FollowUpView]:
    """Overdue first, then by due day (none last), then by number."""
    return sorted(
        followups,
        key=lambda f: (not f.overdue(today), f.due is None, f.due or today, f.number),
    )


class FollowUpService:
    """Follow-ups of incidents: who may change them, their records, and their clocks."""

    def __init__(
        self,
        *,
        db: Database,
        incidents: IncidentService,
        people: People,
        clocks: Clocks,
        config: WarroomConfig,
        tasks: BackgroundTasks,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.incidents = incidents
        self.people = people
        self.clocks = clocks
        self.config = config
        self.tasks = tasks
        self.clock = clock

    def today(self) -> date:
        """The day it is now in the config's time zone: due days are in it."""
        return today_in(self.config.zone, self.clock())

    # -- adding ------------------------------------------------------------------------------

    async def add(
        self,
        incident: IncidentView,
        invocation: Invocation,
        *,
        text: str,
        owner: UserRef | None = None,
        due: str | None = None,
        source_ts: str | None = None,
    ) -> FollowUpView:
        """Add a follow-up to the incident (anyone may); the command's record gates it, so a
        replayed request adds nothing. UsageError for bad text, owner or due day."""
        text = check_text(text)
        day = parse_due(due, today=self.today()) if due else None
        person = await self._person(owner) if owner else None
        now = self.clock()
        by_name = await self.people.cached_name(invocation.user_id) or invocation.user_name

        def _add(session: Session) -> tuple[FollowUpView, list[ClockChange]]:
            # On the incident's locked row, as the post-mortem's close is: a follow-up added
            # while it closes is either seen by its check for owners or added after it.
            incident_store.lock_incident(session, incident_id=incident.id)
            command_event(session, incident_id=incident.id, invocation=invocation, at=now)
            row = followup_store.add_followup(
                session,
                incident_id=incident.id,
                text=text,
                at=now,
                created_by_id=invocation.user_id,
                created_by_name=by_name,
                owner_id=person.id if person else None,
                owner_name=person.name if person else None,
                due=day,
                source_ts=source_ts,
            )
            view = followup_view(row, incident.number)
            timeline_store.add_event(
                session,
                incident_id=incident.id,
                kind="followup_added",
                at=now,
                actor_id=invocation.user_id,
                actor_name=by_name,
                text=text,
                slack_ts=source_ts,
                data={
                    "id": view.ref,
                    "owner": person_data(view.owner),
                    "due": day.isoformat() if day else None,
                },
            )
            return view, self._reset_clock(session, view)

        view, changes = await self.db.run(_add)
        self.tasks.spawn(self.clocks.follow(changes))
        return view

    async def _person(self, ref: UserRef) -> Person:
        profile = await self.people.resolve(ref)
        if profile is None:
            raise UsageError(f"Slack has no user {escape(ref.handle or ref.user_id or '')}.")
        if profile.is_bot:
            raise UsageError("Follow-ups go to people, not apps.")
        return Person(profile.user_id, profile.name)

    # -- changing ----------------------------------------------------------------------------

    async def change(self, change: FollowUpChange, invocation: Invocation) -> Changed:
        """Close, drop, assign or move a follow-up: its owner, the incident's commander and
        admins may. A refusal or bad input is recorded on the incident, then raised."""
        current = await self.get(change.number)
        if not await self.visible(current, invocation.user_id):
            # Told as if there were no such follow-up; the attempt goes on the incident's record.
            await self.incidents.refuse(current.incident_id, invocation)
            raise NotFoundError(f"There is no FU-{change.number}.")
        try:
            return await self._change(change, invocation)
        except NotAllowedError as exc:
            await self.incidents.record_command(
                current.incident_id, invocation, refused=True, reason=exc.message
            )
            raise
        except UsageError as exc:
            await self.incidents.record_command(current.incident_id, invocation, reason=exc.message)
            raise

    async def _change(self, change: FollowUpChange, invocation: Invocation) -> Changed:
        day = parse_due(change.due, today=self.today()) if change.due else None
        owner = await self._person(change.owner) if change.owner else None
        now = self.clock()

        def _unit(session: Session) -> tuple[Changed, list[ClockChange]]:
            row = followup_store.lock_followup(session, number=change.number)
            if row is None:
                raise NotFoundError(f"There is no FU-{change.number}.")
            incident = incident_view(
                session, incident_store.lock_incident(session, incident_id=row.incident_id)
            )
            before = followup_view(row, incident.number)
            refusal = self.refusal(before, incident, invocation.user_id)
            if refusal:
                raise NotAllowedError(refusal)
            command_event(session, incident_id=incident.id, invocation=invocation, at=now)
            what = self._apply(row, before, change, owner=owner, day=day, now=now)
            if what is None:
                return Changed(before, changed=False), []
            field, old, new, text = what
            session.add(row)
            session.flush()
            after = followup_view(row, incident.number)
            data: dict[str, Any] = {"id": after.ref, "changed": field, "from": old, "to": new}
            if change.kind == ChangeKind.DROP:
                data["reason"] = after.reason
            timeline_store.add_event(
                session,
                incident_id=incident.id,
                kind="followup_updated",
                at=now,
                actor_id=invocation.user_id,
                actor_name=invocation.user_name,
                text=text,
                data=data,
            )
            return Changed(after, changed=True), self._reset_clock(session, after)

        changed, changes = await self.db.run(_unit)
        self.tasks.spawn(self.clocks.follow(changes))
        return changed

    def refusal(self, followup: FollowUpView, incident: IncidentView, user_id: str) -> str | None:
        """Why `user_id` may not change the follow-up, or None: its owner, the incident's
        commander and admins may."""
        if followup.owner is not None and followup.owner.id == user_id:
            return None
        if self.incidents.may_manage(incident, user_id):
            return None
        owner = escape(followup.owner.label) if followup.owner else "nobody"
        commander = escape(incident.commander.label) if incident.commander else "nobody"
        return (
            f"Only {followup.ref}'s owner ({owner}), the commander of {incident.ref} "
            f"({commander}) or an admin can change it."
        )

    def _apply(
        self,
        row: FollowUp,
        before: FollowUpView,
        change: FollowUpChange,
        *,
        owner: Person | None,
        day: date | None,
        now: datetime,
    ) -> tuple[str, Any, Any, str] | None:
        """Change the row; what changed (field, from, to, the timeline's text), or None when
        it was so already. UsageError for a change a closed follow-up cannot take."""
        if change.kind in (ChangeKind.DONE, ChangeKind.DROP):
            target = (
                FollowUpStatus.DONE if change.kind == ChangeKind.DONE else FollowUpStatus.DROPPED
            )
            if before.status == target:
                return None
            if before.status != FollowUpStatus.OPEN:
                raise UsageError(f"{before.ref} is {before.status} already.")
            row.status = target
            row.closed_at = now
            text = f"{before.ref} done"
            if target == FollowUpStatus.DROPPED:
                row.reason = change.reason
                text = f"{before.ref} dropped: {change.reason}"
            return "status", before.status.value, target.value, text
        if before.status != FollowUpStatus.OPEN:
            raise UsageError(f"{before.ref} is {before.status}; it needs no {change.kind} now.")
        if change.kind == ChangeKind.ASSIGN:
            assert owner is not None
            if before.owner is not None and before.owner.id == owner.id:
                return None
            row.owner_id, row.owner_name = owner.id, owner.name
            return (
                "owner",
                person_data(before.owner),
                person_data(owner),
                f"{before.ref} assigned to {owner.label}",
            )
        assert day is not None
        if before.due == day:
            return None
        row.due = day
        old = before.due.isoformat() if before.due else None
        return "due", old, day.isoformat(), f"{before.ref} due {day.isoformat()}"

    def _reset_clock(self, session: Session, followup: FollowUpView) -> list[ClockChange]:
        """Start, move or stop the owner's reminder for the follow-up as it now stands."""
        kind = reminder_kind(followup.number)
        due = first_reminder(followup, self.config.zone)
        if due is None:
            stopped = reminder_store.stop_reminder(
                session, incident_id=followup.incident_id, kind=kind
            )
            return [ClockChange.of(stopped)] if stopped else []
        reminder = reminder_store.get_reminder(session, incident_id=followup.incident_id, kind=kind)
        if reminder is not None and reminder.active and reminder.due_at == due:
            return []  # the same clock: a reassignment keeps it
        started = reminder_store.set_reminder(
            session, incident_id=followup.incident_id, kind=kind, due_at=due
        )
        return [ClockChange.of(started)]

    # -- reading -----------------------------------------------------------------------------

    async def visible(self, followup: FollowUpView, user_id: str) -> bool:
        """Whether `user_id` may see the follow-up: anyone one of a public incident, only its
        room's members and the admins one of a private incident."""

        def _visible(session: Session) -> bool:
            incident = incident_store.get_incident(session, incident_id=followup.incident_id)
            return incident is None or self.incidents.may_see(session, incident, user_id)

        return await self.db.run(_visible)

    async def get(self, number: int) -> FollowUpView:
        """FU-`number`; NotFoundError when there is none."""

        def _get(session: Session) -> FollowUpView:
            row = followup_store.get_followup(session, number=number)
            if row is None:
                raise NotFoundError(f"There is no FU-{number}.")
            return load_views(session, [row])[0]

        return await self.db.run(_get)

    async def for_incident(self, incident: IncidentView) -> list[FollowUpView]:
        """The incident's follow-ups, oldest first."""

        def _list(session: Session) -> list[FollowUpView]:
            rows = followup_store.followups_for_incident(session, incident_id=incident.id)
            return [followup_view(r, incident.number) for r in rows]

        return await self.db.run(_list)

    async def open_for(self, user_id: str, *, viewer: str | None = None) -> list[FollowUpView]:
        """The open follow-ups `user_id` owns, across incidents, overdue first; with a
        `viewer`, only those of incidents the viewer may see."""

        def _list(session: Session) -> list[FollowUpView]:
            rows = followup_store.find_followups(
                session, status=FollowUpStatus.OPEN, owner_id=user_id
            )
            if viewer is not None:
                hidden = member_store.hidden_from(
                    session, user_id=viewer, admins=self.config.admins
                )
                rows = [r for r in rows if r.incident_id not in hidden]
            return load_views(session, rows)

        return overdue_first(await self.db.run(_list), self.today())
