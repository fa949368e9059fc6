"""Block Kit and plain-text builders for what warroom posts. Pure functions."""

from __future__ import annotations

from typing import Any

from bot.readmodels import IncidentView, Person
from bot.slacktext import channel_link, escape, inert, mention

ROLE_LABELS = {"commander": "Commander", "comms": "Comms", "resolver": "Resolver"}
SECTION_LIMIT = 3000
HEADER_LIMIT = 150


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _people(people: list[Person], *, mentions: bool) -> str:
    if not people:
        return "nobody yet"
    if mentions:
        return ", ".join(mention(p.id) if p.id else escape(p.label) for p in people)
    return ", ".join(p.label for p in people)


def topic_text(incident: IncidentView) -> str:
    """The channel topic: plain text (topics take no formatting), at most 250 characters."""
    parts = [f"{incident.ref} {incident.severity.upper()}", incident.status.capitalize()]
    for role, label in ROLE_LABELS.items():
        holders = incident.holders(role)
        if holders:
            parts.append(f"{label}: {_people(holders, mentions=False)}")
    return truncate(" | ".join(parts), 250)


def header_blocks(incident: IncidentView) -> list[dict[str, Any]]:
    """The pinned header message: title, severity, status and who holds which role."""
    roles = "\n".join(
        f"*{label}:* {_people(incident.holders(role), mentions=True)}"
        for role, label in ROLE_LABELS.items()
    )
    facts = (
        f"*Severity:* {incident.severity.upper()}    *Status:* {incident.status.capitalize()}\n"
        f"*Declared by:* {_declarer(incident)}"
    )
    return [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": inert(truncate(f"{incident.ref}: {incident.title}", HEADER_LIMIT)),
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(facts, SECTION_LIMIT)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": truncate(roles, SECTION_LIMIT)}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "Everything said here goes on the timeline. "
                    "`/incident help` lists what you can do.",
                }
            ],
        },
    ]


def header_text(incident: IncidentView) -> str:
    """The notification fallback for the header."""
    return escape(f"{incident.ref} ({incident.severity.upper()}): {incident.title}")


def announcement_text(incident: IncidentView) -> str:
    where = channel_link(incident.channel_id) if incident.channel_id else "(no channel yet)"
    return (
        f":rotating_light: *{incident.ref}* ({incident.severity.upper()}) declared by "
        f"{_declarer(incident)}: {escape(incident.title)}. War room: {where}"
    )


def _declarer(incident: IncidentView) -> str:
    person = incident.declared_by
    return mention(person.id) if person.id else escape(person.label)
