"""When an ended incident's war room is archived. Pure functions over plain values."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import WarroomConfig
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, Status

# The timeline events that close an incident without a resolution: their time is its end.
CLOSING_KINDS = ("declined", "merged")
# Slack's answers to conversations.unarchive that mean "not by you": a new room instead.
UNARCHIVE_REFUSALS = frozenset(
    {
        "not_authorized",
        "restricted_action",
        "not_in_channel",
        "method_not_supported_for_channel_type",
    }
)

# A claim on archiving older than this, with nothing on the timeline since, was left by a
# process that stopped half-way: the sweep takes it over.
STALE_CLAIM = timedelta(minutes=10)
# What settles a claim: the archive done, the room archived by hand, or a refusal noted.
SETTLING_KINDS = ("archived", "channel_archive", "note")


@dataclass(frozen=True)
class ArchiveFacts:
    """What the archive clock needs to know of an incident."""

    status: str
    severity: str
    resolved_at: datetime | None
    postmortem_done_at: datetime | None
    # The time of its latest `declined` or `merged` event, for those statuses.
    closed_at: datetime | None


def postmortem_required(severity: str, config: WarroomConfig) -> bool:
    """A severity whose policy sets a post-mortem deadline wants a post-mortem."""
    return config.policy(severity).postmortem_due is not None


def archive_due(facts: ArchiveFacts, config: WarroomConfig) -> datetime | None:
    """When the war room is archived; None while it must stay (open, post-mortem owed, off)."""
    if facts.status == Status.RESOLVED:
        after = config.archive_after
        if after is None or facts.resolved_at is None:
            return None
        if facts.postmortem_done_at is None and postmortem_required(facts.severity, config):
            return None
        # Counted from resolution; a post-mortem written later lets it go at once.
        return max(facts.resolved_at + after, facts.postmortem_done_at or facts.resolved_at)
    if facts.status in CLOSED_WITHOUT_RESOLUTION:
        closed = config.archive_closed_after
        if closed is None or facts.closed_at is None:
            return None
        return facts.closed_at + closed
    return None


def is_due(facts: ArchiveFacts, config: WarroomConfig, now: datetime) -> bool:
    """True when the war room's archive time has come."""
    due = archive_due(facts, config)
    return due is not None and due <= now
