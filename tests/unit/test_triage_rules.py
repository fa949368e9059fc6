"""Triage, decline and merge as pure rules: parsing the commands, and which clocks run in which
status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.commands.parse import (
    parse_command,
    parse_declaration,
    parse_decline_reason,
    parse_merge_target,
)
from bot.config import WarroomConfig
from bot.errors import UsageError
from bot.incidents.enums import Status
from bot.incidents.lifecycle import closed_refusal
from bot.incidents.readmodels import IncidentView, Person
from bot.reminders.rules import ReminderKind, ack_due, first_update_due, still_wanted
from bot.slack.blocks.common import ended_announcement_text, status_label, topic_text
from tests.support.factories import incident_view

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CONFIG = WarroomConfig.model_validate(
    {"severities": {"sev1": {"ack_within": "15m", "update_every": "30m"}}}
)


def incident(status: Status, **changes: object) -> IncidentView:
    base = {
        "declared_by": Person("U1", "ana"),
        "declared_at": T0,
        "severity": "sev1",
        "acknowledged_at": None,
    }
    return incident_view(**{**base, "status": status, **changes})


@pytest.mark.parametrize(
    ("text", "title", "triage", "private"),
    [
        ("--triage Odd latency sev2", "Odd latency", True, False),
        ("Odd latency --triage", "Odd latency", True, False),
        ("\u2014triage Odd latency", "Odd latency", True, False),
        ("--private --triage Odd latency", "Odd latency", True, True),
        ("Odd latency", "Odd latency", False, False),
        ("Odd --triaged latency", "Odd --triaged latency", False, False),
    ],
)
def test_declare_triage_flag(text: str, title: str, triage: bool, private: bool) -> None:
    declaration = parse_declaration(text)
    assert (declaration.title, declaration.triage, declaration.private) == (title, triage, private)


@pytest.mark.parametrize("name", ["accept", "decline", "merge"])
def test_the_new_subcommands_parse(name: str) -> None:
    command = parse_command(f"INC-4 {name} INC-2")
    assert (command.name, command.incident_number, command.args) == (name, 4, "INC-2")


def test_a_decline_needs_a_reason_read_as_plain_text() -> None:
    assert parse_decline_reason("  probe <!here>  flapped ") == "probe @here flapped"
    with pytest.raises(UsageError, match="Say why it is declined"):
        parse_decline_reason("   ")


@pytest.mark.parametrize(("args", "number"), [("INC-12", 12), ("inc12", 12), ("12", 12)])
def test_merge_target(args: str, number: int) -> None:
    assert parse_merge_target(args) == number


@pytest.mark.parametrize("args", ["", "INC-1 INC-2", "soon", "INC-0"])
def test_merge_target_refused(args: str) -> None:
    with pytest.raises(UsageError, match="Usage"):
        parse_merge_target(args)


@pytest.mark.parametrize(
    ("status", "update", "ack"),
    [
        (Status.TRIAGE, False, True),
        (Status.INVESTIGATING, True, True),
        (Status.MONITORING, True, True),
        (Status.RESOLVED, False, False),
        (Status.DECLINED, False, False),
        (Status.MERGED, False, False),
    ],
)
def test_clocks_by_status(status: Status, update: bool, ack: bool) -> None:
    view = incident(status)
    assert (first_update_due(view, CONFIG) is not None) == update
    assert (ack_due(view, CONFIG) == T0 + timedelta(minutes=15)) == ack
    assert still_wanted(ReminderKind.UPDATE, view) == update
    assert still_wanted(ReminderKind.ACK, view) == ack
    assert not still_wanted(ReminderKind.POSTMORTEM, view)


def test_no_postmortem_is_asked_of_a_declined_incident() -> None:
    view = incident(Status.DECLINED, resolved_at=T0)
    assert not still_wanted(ReminderKind.POSTMORTEM, view)
    assert still_wanted(ReminderKind.POSTMORTEM, incident(Status.RESOLVED, resolved_at=T0))


def test_closed_refusals() -> None:
    assert closed_refusal("INC-7", Status.DECLINED, None) == (
        "INC-7 was declined; nothing more can change on it."
    )
    assert closed_refusal("INC-7", Status.MERGED, "INC-9") == (
        "INC-7 was merged into INC-9; nothing more can change on it."
    )
    for status in (Status.TRIAGE, Status.INVESTIGATING, Status.RESOLVED):
        assert closed_refusal("INC-7", status, None) is None


def test_status_words_and_amended_announcement() -> None:
    merged = incident(Status.MERGED, merged_into="INC-9", title="Pay <b>")
    assert status_label(merged) == "Merged into INC-9"
    assert status_label(incident(Status.TRIAGE)) == "Triage"
    assert "| Merged into INC-9" in topic_text(merged)
    assert ended_announcement_text(merged, None).endswith("merged into *INC-9*")
    declined = incident(Status.DECLINED, title="Pay <b>")
    text = ended_announcement_text(declined, "probe <!channel>")
    assert "Pay &lt;b&gt;" in text and "declined: probe &lt;!channel&gt;" in text
