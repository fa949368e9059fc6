"""When reminders are due and what they say. Pure functions over read models and a clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from bot.config import WarroomConfig
from bot.durations import format_duration
from bot.incidents.enums import WORKING_STATUSES, Role, Status
from bot.incidents.readmodels import IncidentView, Person
from bot.slack.text import channel_link, escape, mention, slack_date


class ReminderKind(StrEnum):
    """An incident's clocks: customer updates, acknowledgement, the post-mortem."""

    UPDATE = "update"
    ACK = "ack"
    POSTMORTEM = "postmortem"


def job_id(incident_id: int, kind: str) -> str:
    """The scheduler's job id for one incident's clock: `reminder:7:update`."""
    return f"reminder:{incident_id}:{kind}"


class UpdateClockFacts(Protocol):
    """What the customer-update clock reads off an incident: an IncidentView, or the stored
    times /metrics reads for every incident in one query."""

    @property
    def severity(self) -> str:
        """Whose cadence applies."""

    @property
    def status(self) -> str:
        """Where the incident is: the clock stops once it is resolved."""

    @property
    def declared_at(self) -> datetime:
        """Where the clock starts when no update has gone out."""

    @property
    def last_update_at(self) -> datetime | None:
        """The last customer update, the clock's start since."""


def first_update_due(incident: UpdateClockFacts, config: WarroomConfig) -> datetime | None:
    """The customer-update clock: from the last update, or from declaration if none yet."""
    every = config.policy(incident.severity).update_every
    if every is None or incident.status not in WORKING_STATUSES:
        return None
    return (incident.last_update_at or incident.declared_at) + every


def ack_due(incident: IncidentView, config: WarroomConfig) -> datetime | None:
    """When an unacknowledged incident escalates; None if acknowledged or its severity never is."""
    within = config.policy(incident.severity).ack_within
    if within is None or incident.acknowledged_at is not None or not _awaits_ack(incident):
        return None
    return incident.declared_at + within


def postmortem_due(incident: IncidentView, config: WarroomConfig) -> datetime | None:
    """When the post-mortem itself is due (not when the next reminder is)."""
    due = config.policy(incident.severity).postmortem_due
    if due is None or incident.resolved_at is None:
        return None
    return incident.resolved_at + due


def first_postmortem_reminder(incident: IncidentView, config: WarroomConfig) -> datetime | None:
    """The first post-mortem reminder after resolution; None if unresolved, written up, or off."""
    every = config.postmortem_remind_every
    if every is None or incident.resolved_at is None or incident.postmortem_done_at:
        return None
    return incident.resolved_at + every


def next_after(due_at: datetime, every: timedelta, now: datetime) -> datetime:
    """The next time a repeating reminder is due: one interval on, but never in the past, so a
    reminder that fired late after downtime fires once and not once per missed interval."""
    following = due_at + every
    return following if following > now else now + every


def still_wanted(kind: str, incident: IncidentView) -> bool:
    """False when the reason for a reminder has gone (resolved, acknowledged, written up)."""
    if kind == ReminderKind.UPDATE:
        return incident.status in WORKING_STATUSES
    if kind == ReminderKind.ACK:
        return incident.acknowledged_at is None and _awaits_ack(incident)
    return (
        incident.status == Status.RESOLVED
        and incident.resolved_at is not None
        and incident.postmortem_done_at is None
    )


def _awaits_ack(incident: IncidentView) -> bool:
    """In triage or being worked on: the statuses in which the acknowledgement clock runs."""
    return incident.status == Status.TRIAGE or incident.status in WORKING_STATUSES


def repeat_interval(kind: str, incident: IncidentView, config: WarroomConfig) -> timedelta | None:
    """How long until a reminder of `kind` comes again; None when it fires once (escalations)."""
    if kind == ReminderKind.UPDATE:
        return config.policy(incident.severity).update_every
    if kind == ReminderKind.POSTMORTEM:
        return config.postmortem_remind_every
    return None  # an escalation happens once


def _who(person: Person | None) -> str:
    if person is None:
        return "nobody holds the role"
    return mention(person.id) if person.id else escape(person.label)


@dataclass(frozen=True)
class Notice:
    """One message a reminder owes: where it goes and what it says."""

    channel_id: str
    text: str


def update_reminder(incident: IncidentView, now: datetime) -> list[Notice]:
    """The nudge to post a customer update, to comms (else the commander), in the war room."""
    comms = incident.holders(Role.COMMS)
    target = comms[0] if comms else incident.commander
    since = incident.last_update_at or incident.declared_at
    what = "the last customer update" if incident.last_update_at else "declaration"
    text = (
        f":hourglass: {_who(target)} *{incident.ref}* ({incident.severity.upper()}): "
        f"{format_duration(now - since)} since {what} ({slack_date(since)}). "
        "Post a customer update with `/incident update &lt;text&gt;`."
    )
    return [Notice(incident.channel_id, text)] if incident.channel_id else []


def escalation(
    incident: IncidentView,
    now: datetime,
    config: WarroomConfig,
    members: frozenset[str] = frozenset(),
) -> list[Notice]:
    """The alarm for an unacknowledged incident: to announce, escalation and war room channels.
    A private incident's goes to its war room and the `escalate_to` people only, with its
    title only to those of them in the room (`members`) or admins."""
    where = channel_link(incident.channel_id) if incident.channel_id else "no war room yet"
    late = format_duration(now - incident.declared_at)
    text = (
        f":warning: *{incident.ref}* ({incident.severity.upper()}) has not been acknowledged "
        f"{late} after it was declared ({slack_date(incident.declared_at)}): "
        f"{escape(incident.title)}. War room: {where}. Take it with `/incident ack`."
    )
    escalate_to = config.policy(incident.severity).escalate_to
    if incident.private:
        # The room first: the timeline keeps the first notice's text.
        notices = [Notice(incident.channel_id, text)] if incident.channel_id else []
        readers = members | set(config.admins)
        untitled = (
            f":warning: *{incident.ref}*, a private incident, has not been acknowledged "
            f"{late} after it was declared ({slack_date(incident.declared_at)}). "
            "Ask an admin to bring you into its war room."
        )
        for person in dict.fromkeys(escalate_to):
            notices.append(Notice(person, text if person in readers else untitled))
        return notices
    targets = [config.announce_channel] if config.announce_channel else []
    targets += escalate_to
    if incident.channel_id:
        targets.append(incident.channel_id)
    return [Notice(target, text) for target in dict.fromkeys(targets)]


def postmortem_reminder(
    incident: IncidentView, now: datetime, config: WarroomConfig
) -> list[Notice]:
    """The nudge to the commander about the post-mortem: when it is due, or how overdue it is."""
    due = postmortem_due(incident, config)
    if due is None:
        when = "no deadline is set"
    elif due > now:
        # Rounded: a reminder fires a moment after its time, and "in 23h 59m" should say "1d".
        left = timedelta(seconds=round((due - now).total_seconds()))
        when = f"it is due {slack_date(due)} (in {format_duration(left)})"
    else:
        when = f"it is *overdue* by {format_duration(now - due)}"
    text = (
        f":memo: {_who(incident.commander)} the post-mortem for *{incident.ref}*: {when}. "
        "Draft it with `/incident postmortem`; when it is written, "
        "`/incident postmortem done &lt;url&gt;`."
    )
    return [Notice(incident.channel_id, text)] if incident.channel_id else []


def notices_for(
    kind: str,
    incident: IncidentView,
    now: datetime,
    config: WarroomConfig,
    members: frozenset[str] = frozenset(),
) -> list[Notice]:
    """What a reminder of `kind` says as of `now`, and the channels it goes to (`members`: who
    is in a private incident's war room, told more than those outside it)."""
    if kind == ReminderKind.UPDATE:
        return update_reminder(incident, now)
    if kind == ReminderKind.ACK:
        return escalation(incident, now, config, members)
    return postmortem_reminder(incident, now, config)


_SPECULATION = re.compile(
    r"\b(probably|possibly|perhaps|maybe|likely|we think|we believe|we suspect|suspected|"
    r"appears to be caused|seems to be|might be|could be|caused by|root cause|due to|"
    r"because of|the cause)\b",
    re.IGNORECASE,
)


def speculative_phrases(text: str) -> list[str]:
    """Words in a customer update that guess at a cause; customer updates state facts."""
    return list(dict.fromkeys(m.group(0).lower() for m in _SPECULATION.finditer(text)))
