"""Block Kit and plain-text builders for what warroom posts. Pure functions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.config import WarroomConfig
from bot.durations import format_duration
from bot.ids import ActionId, BlockId
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, ENDED_STATUSES, Role, Status
from bot.incidents.readmodels import IncidentView, Person
from bot.reminders.rules import first_update_due
from bot.slack.text import channel_link, escape, inert, mention, slack_date

ROLE_LABELS = {Role.COMMANDER: "Commander", Role.COMMS: "Comms", Role.RESOLVER: "Resolver"}
# Slack's limits (https://api.slack.com/reference/block-kit): past them a post is refused.
SECTION_LIMIT = 3000
HEADER_LIMIT = 150
CONTEXT_LIMIT = 2000
BUTTON_TEXT_LIMIT = 75
OPTION_TEXT_LIMIT = 75
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in an ellipsis when it was longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plain_text(text: str, limit: int = SECTION_LIMIT) -> dict[str, Any]:
    """A plain_text object: shown as typed, with any broadcast mention made inert."""
    return {"type": "plain_text", "text": truncate(inert(text), limit), "emoji": True}


def section(mrkdwn: str) -> dict[str, Any]:
    """A section of mrkdwn the caller has already escaped, cut to Slack's 3,000 characters."""
    return {"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, SECTION_LIMIT)}}


def context(mrkdwn: str) -> dict[str, Any]:
    """A context block of one (already escaped) mrkdwn element."""
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(mrkdwn, CONTEXT_LIMIT)}],
    }


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    """A button; `style` is `primary` or `danger`."""
    element: dict[str, Any] = {
        "type": "button",
        "text": plain_text(text, BUTTON_TEXT_LIMIT),
        "action_id": action_id,
        "value": value,
    }
    if style:
        element["style"] = style
    return element


def within_limit(blocks: list[dict[str, Any]], limit: int = MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """At most `limit` blocks; what does not fit is replaced by one line saying so."""
    if len(blocks) <= limit:
        return blocks
    return [*blocks[: limit - 1], context(f"…and {len(blocks) - limit + 1} more not shown.")]


def _people(people: list[Person], *, mentions: bool) -> str:
    if not people:
        return "nobody yet"
    if mentions:
        return ", ".join(mention(p.id) if p.id else escape(p.label) for p in people)
    # Topics show text as it is: names kept as typed, only a broadcast or mention made inert.
    return ", ".join(inert(p.label) for p in people)


def status_label(incident: IncidentView) -> str:
    """The status as people read it: `Triage`, `Declined`, `Merged into INC-9`, ..."""
    if incident.status == Status.MERGED and incident.merged_into:
        return f"Merged into {incident.merged_into}"
    return incident.status.capitalize()


def topic_text(incident: IncidentView) -> str:
    """The channel topic: plain text (topics take no formatting), at most 250 characters."""
    parts = [f"{incident.ref} {incident.severity.upper()}", status_label(incident)]
    for role, label in ROLE_LABELS.items():
        holders = incident.holders(role)
        if holders:
            parts.append(f"{label}: {_people(holders, mentions=False)}")
    return truncate(" | ".join(parts), 250)


def header_actions(incident: IncidentView) -> dict[str, Any]:
    """The header's buttons; each opens a short modal. A resolved incident keeps only those
    that still mean something (roles for the review, a last customer update)."""
    value = str(incident.number)
    buttons = [
        button("Assign role", ActionId.HEADER_ASSIGN_ROLE, value),
        button("Post update", ActionId.HEADER_POST_UPDATE, value),
    ]
    if incident.status in CLOSED_WITHOUT_RESOLUTION:
        return {"type": "actions", "block_id": BlockId.HEADER_ACTIONS, "elements": buttons[:1]}
    if incident.status not in ENDED_STATUSES:
        buttons += [
            button("Status / severity", ActionId.HEADER_CHANGE_STATUS, value),
            button("Resolve", ActionId.HEADER_RESOLVE, value, style="primary"),
        ]
    return {"type": "actions", "block_id": BlockId.HEADER_ACTIONS, "elements": buttons}


def ago(delta: timedelta) -> str:
    """How long ago, as a header says it: `just now`, `12 min ago`, `2h 5m ago`."""
    minutes = max(int(delta.total_seconds()), 0) // 60
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    return f"{format_duration(timedelta(minutes=minutes))} ago"


def comms_line(incident: IncidentView, now: datetime, config: WarroomConfig) -> str:
    """The header's customer-update line, as of `now` (when the header is rendered): when the
    last update went out, and when the next is due (none when ended or without a cadence)."""
    if incident.last_update_at:
        line = f"*Last customer update* {ago(now - incident.last_update_at)}"
        which = "next"
    else:
        line, which = "*No customer update yet*", "first"
    due = None if incident.status in ENDED_STATUSES else first_update_due(incident, config)
    if due is None:
        return line
    if due <= now:
        return f"{line} · :warning: {which} was due {slack_date(due)}"
    return f"{line} · {which} due {slack_date(due)}"


def header_blocks(
    incident: IncidentView, *, now: datetime, config: WarroomConfig
) -> list[dict[str, Any]]:
    """The pinned header message: title, severity, status, who holds which role, the customer
    update line (as of `now`), and buttons."""
    roles = "\n".join(
        f"*{label}:* {_people(incident.holders(role), mentions=True)}"
        for role, label in ROLE_LABELS.items()
    )
    facts = (
        f"*Severity:* {incident.severity.upper()}    *Status:* {status_label(incident)}\n"
        f"*Declared by:* {_declarer(incident)}"
    )
    return [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(inert(f"{incident.ref}: {incident.title}"), HEADER_LIMIT),
            },
        },
        section(facts),
        section(roles),
        context(comms_line(incident, now, config)),
        header_actions(incident),
        context(
            "Everything said here goes on the timeline. `/incident help` lists what you can do."
        ),
    ]


def header_text(incident: IncidentView) -> str:
    """The notification fallback for the header."""
    return escape(f"{incident.ref} ({incident.severity.upper()}): {incident.title}")


def announcement_text(incident: IncidentView) -> str:
    """A new incident, for the announce channel: ref, severity, declarer, title and war room."""
    where = channel_link(incident.channel_id) if incident.channel_id else "(no channel yet)"
    return (
        f":rotating_light: *{incident.ref}* ({incident.severity.upper()}) declared by "
        f"{_declarer(incident)}: {escape(incident.title)}. War room: {where}"
    )


def ended_announcement_text(incident: IncidentView, reason: str | None) -> str:
    """The announcement of an incident that was declined or merged, amended to say so."""
    if incident.status == Status.MERGED:
        ending = f"merged into *{incident.merged_into}*"
    else:
        ending = "declined" + (f": {escape(reason)}" if reason else "")
    return f":no_entry_sign: ~{incident.ref}: {escape(incident.title)}~ {ending}"


def _declarer(incident: IncidentView) -> str:
    person = incident.declared_by
    return mention(person.id) if person.id else escape(person.label)
