"""The domain's words: an incident's status, a responder's role, a severity. Each member is
equal to its stored string, so the database, JSON and Slack text see plain strings."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where an incident is in its lifecycle, in the order it moves through them."""

    TRIAGE = "triage"
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    DECLINED = "declined"
    MERGED = "merged"


# The statuses `/incident status` moves between: an incident being worked on, or resolved.
SETTABLE_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.RESOLVED)
# Accepted and being worked on: the update clock runs in these.
WORKING_STATUSES = frozenset({Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING})
# Ended without a resolution: kept and exported, but left out of insights and MTTx figures.
CLOSED_WITHOUT_RESOLUTION = frozenset({Status.DECLINED, Status.MERGED})
# Over: no clock but the post-mortem's (resolved only) and the archive's runs.
ENDED_STATUSES = frozenset({Status.RESOLVED}) | CLOSED_WITHOUT_RESOLUTION


class Role(StrEnum):
    """A role someone holds in an incident."""

    COMMANDER = "commander"
    COMMS = "comms"
    RESOLVER = "resolver"


class Severity(StrEnum):
    """How bad an incident is, most severe first."""

    SEV1 = "sev1"
    SEV2 = "sev2"
    SEV3 = "sev3"
    SEV4 = "sev4"


# Every kind of timeline entry (the README's events[].kind): what a webhook may subscribe to.
EVENT_KINDS = frozenset(
    {
        "declared",
        "message",
        "message_edited",
        "message_deleted",
        "command",
        "command_refused",
        "role_assigned",
        "status_changed",
        "severity_changed",
        "customer_update",
        "note",
        "reminder",
        "escalation",
        "member_joined",
        "member_left",
        "resolved",
        "postmortem",
        "key_event",
        "alert",
        "followup_added",
        "followup_updated",
        "access_refused",
        "accepted",
        "declined",
        "merged",
        "reopened",
        "archived",
        "channel_archive",
    }
)
