"""The domain's words: an incident's status, a responder's role, a severity. Each member is
equal to its stored string, so the database, JSON and Slack text see plain strings."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """Where an incident is in its lifecycle, in the order it moves through them."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


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
    }
)
