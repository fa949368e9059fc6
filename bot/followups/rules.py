"""Follow-ups' words and rules: ids, statuses, due days, reminder times and what reminders say.
Pure functions over plain read models and a clock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from bot.durations import parse_duration
from bot.errors import UsageError
from bot.incidents.readmodels import Person
from bot.slack.text import escape, mention, to_plain
from storage.models import FollowUp

# A follow-up's text, as typed: longer belongs in a document the follow-up links to.
MAX_TEXT = 3000
# Owners are reminded at this hour of their due day, in the config's time zone.
REMIND_AT = time(9, 0)
REMINDER_PREFIX = "fu:"
# The follow-up number column is a 32-bit integer on PostgreSQL.
MAX_NUMBER = 2**31 - 1
_REF = re.compile(r"(?:fu-?)?([0-9]{1,10})", re.IGNORECASE | re.ASCII)
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$", re.ASCII)


class FollowUpStatus(StrEnum):
    """Where a follow-up stands: still to do, done, or dropped (not doing, with a reason)."""

    OPEN = "open"
    DONE = "done"
    DROPPED = "dropped"


@dataclass(frozen=True)
class FollowUpView:
    """A follow-up as read, with its incident's number: plain data, safe outside a session."""

    number: int
    incident_id: int
    incident_number: int
    text: str
    owner: Person | None
    due: date | None
    status: FollowUpStatus
    reason: str | None
    created_at: datetime
    created_by: Person
    closed_at: datetime | None
    source_ts: str | None

    @property
    def ref(self) -> str:
        """The follow-up's name for people: `FU-3`."""
        return f"FU-{self.number}"

    @property
    def incident_ref(self) -> str:
        """The incident it came from: `INC-7`."""
        return f"INC-{self.incident_number}"

    def overdue(self, today: date) -> bool:
        """Open, and its due day has passed."""
        return self.status == FollowUpStatus.OPEN and self.due is not None and self.due < today


def followup_view(row: FollowUp, incident_number: int) -> FollowUpView:
    """The read model of a stored follow-up."""
    owner = Person(row.owner_id, row.owner_name) if row.owner_id else None
    return FollowUpView(
        number=row.id,
        incident_id=row.incident_id,
        incident_number=incident_number,
        text=row.text,
        owner=owner,
        due=row.due,
        status=FollowUpStatus(row.status),
        reason=row.reason,
        created_at=row.created_at,
        created_by=Person(row.created_by_id, row.created_by_name),
        closed_at=row.closed_at,
        source_ts=row.source_ts,
    )


def followup_number(text: str) -> int | None:
    """The number in `FU-3`, `fu3` or `3` (1 to 2**31-1); None for anything else."""
    match = _REF.fullmatch(text.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= MAX_NUMBER else None


def parse_followup_ref(word: str) -> int:
    """The number of the follow-up `word` names; UsageError unless it is like FU-3."""
    number = followup_number(word)
    if number is None:
        shown = escape(to_plain(word)[:40])
        raise UsageError(f"`{shown}` is not a follow-up id; write it like FU-3.")
    return number


def today_in(zone: ZoneInfo, now: datetime) -> date:
    """The day it is now in `zone`."""
    return now.astimezone(zone).date()


def parse_due(word: str, *, today: date) -> date:
    """A due day: `2026-12-24`, or a duration from today (`3d`); UsageError for anything
    else, or for a day already past."""
    match = _DATE.match(word.strip())
    if match:
        try:
            day = date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            raise UsageError(f"`{escape(word[:40])}` is not a real date.") from None
    else:
        try:
            # Whole days count: `36h` from today is tomorrow.
            day = today + parse_duration(word)
        except (ValueError, OverflowError):
            raise UsageError(
                f"`{escape(to_plain(word)[:40])}` is not a due date; "
                "write it like 2026-12-24, or a time from today like 3d."
            ) from None
    if day < today:
        raise UsageError(f"{day.isoformat()} has passed; give a due date from today on.")
    return day


def check_text(text: str) -> str:
    """The follow-up's text, trimmed; UsageError when empty or longer than MAX_TEXT."""
    text = text.strip()
    if not text:
        raise UsageError(
            "Say what has to be done: `/incident followup &lt;text&gt; [@owner] [due …]`."
        )
    if len(text) > MAX_TEXT:
        raise UsageError(
            f"That follow-up is {len(text):,} characters; keep it to {MAX_TEXT:,} "
            "and link to a document for the rest."
        )
    return text


_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,})(?:\|[^>]*)?>")
_DAY_IN_TEXT = re.compile(r"\b([0-9]{4}-[0-9]{2}-[0-9]{2})\b", re.ASCII)


@dataclass(frozen=True)
class Prefill:
    """What the "Make a follow-up" form starts with, read from a war-room message."""

    text: str
    owner_id: str | None
    due: str | None


def mentioned_ids(text: str) -> list[str]:
    """The users a message mentions, in order."""
    return [m.group(1) for m in _MENTION.finditer(text)]


def prefill_from_message(text: str, names: dict[str, str] | None = None) -> Prefill:
    """The message as plain text, its first mention as the owner, its first date as the due."""
    mentioned = _MENTION.search(text)
    day = _DAY_IN_TEXT.search(text)
    return Prefill(
        text=to_plain(text, names)[:MAX_TEXT].strip(),
        owner_id=mentioned.group(1) if mentioned else None,
        due=day.group(1) if day else None,
    )


# -- reminders -----------------------------------------------------------------------------


def reminder_kind(number: int) -> str:
    """The reminder row's kind for FU-`number`: `fu:3`."""
    return f"{REMINDER_PREFIX}{number}"


def reminded_followup(kind: str) -> int | None:
    """The follow-up a reminder kind belongs to, or None for the incident's own clocks."""
    if not kind.startswith(REMINDER_PREFIX):
        return None
    return followup_number(kind[len(REMINDER_PREFIX) :])


def first_reminder(followup: FollowUpView, zone: ZoneInfo) -> datetime | None:
    """When the owner is first reminded: REMIND_AT on the due day; None with no owner, no due
    day, or once it is closed."""
    if followup.status != FollowUpStatus.OPEN or followup.owner is None or followup.due is None:
        return None
    return datetime.combine(followup.due, REMIND_AT, tzinfo=zone)


def still_wanted(followup: FollowUpView | None) -> bool:
    """False once the reminder has no reason: the follow-up closed, lost its owner or due day."""
    return (
        followup is not None
        and followup.status == FollowUpStatus.OPEN
        and followup.owner is not None
        and followup.due is not None
    )


def reminder_text(followup: FollowUpView, today: date, *, titled: bool = True) -> str:
    """The DM to the owner: due today, or overdue by how many days; without its text when
    not `titled` (a private incident's follow-up, to an owner outside its war room)."""
    assert followup.due is not None
    late = (today - followup.due).days
    if late <= 0:
        when = "is due today"
    else:
        when = f"is *overdue* by {late} day{'s' if late != 1 else ''} (due {followup.due})"
    return (
        f":memo: Your follow-up *{followup.ref}* from {followup.incident_ref} {when}"
        + (f": {escape(followup.text)}" if titled else " (a private incident: ask its war room)")
        + f"\nWhen it is done: `/incident followup done {followup.ref}`; "
        f"if it will not be: `/incident followup drop {followup.ref} &lt;reason&gt;`."
    )


def unowned_text(
    commander: Person | None, incident_ref: str, unowned: Sequence[FollowUpView]
) -> str:
    """Putting follow-ups without an owner to the commander, with how to give them one."""
    who = mention(commander.id) if commander and commander.id else "Commander"
    lines = [f":clipboard: {who} {incident_ref} has follow-ups with no owner:"]
    lines += [f"• *{f.ref}* {escape(f.text)}" for f in unowned]
    lines.append("Give each an owner: `/incident followup assign FU-N @person`.")
    return "\n".join(lines)


def listing_line(followup: FollowUpView, today: date, *, incident: bool = False) -> str:
    """One follow-up in a Slack list: id, text, owner, due day, status."""
    owner = mention(followup.owner.id) if followup.owner and followup.owner.id else "_no owner_"
    parts = [f"*{followup.ref}*"]
    if incident:
        parts.append(f"({followup.incident_ref})")
    parts.append(escape(followup.text))
    facts = [owner]
    if followup.due:
        facts.append(f"due {followup.due}{' :warning: overdue' if followup.overdue(today) else ''}")
    if followup.status != FollowUpStatus.OPEN:
        facts.append(followup.status)
        if followup.reason:
            facts.append(escape(followup.reason))
    return "• " + " ".join(parts) + " — " + ", ".join(facts)
