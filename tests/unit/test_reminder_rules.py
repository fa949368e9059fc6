"""Reminder due-times and texts: pure functions with an explicit clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import WarroomConfig
from bot.incidents.readmodels import IncidentView, Person, RoleView
from bot.reminders.rules import (
    ack_due,
    escalation,
    first_postmortem_reminder,
    first_update_due,
    next_after,
    postmortem_reminder,
    speculative_phrases,
    still_wanted,
    update_reminder,
)
from tests.support.factories import incident_view

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def incident(**changes: object) -> IncidentView:
    base = {
        "title": "Checkout <down>",
        "declared_by": Person("U1", "ana"),
        "declared_at": T0,
        "roles": (RoleView("commander", Person("U1", "ana"), T0, None),),
    }
    return incident_view(**{**base, **changes})


# A severity named in the file is taken as written (absent keys mean "none"), so spell it out.
CONFIG = WarroomConfig.model_validate(
    {
        "announce_channel": "CANN",
        "severities": {
            "sev1": {
                "update_every": "30m",
                "ack_within": "15m",
                "postmortem_due": "48h",
                "escalate_to": ["UMGR"],
            },
        },
    }
)


def test_update_clock_counts_from_declaration_then_from_the_last_update() -> None:
    assert first_update_due(incident(), CONFIG) == T0 + timedelta(minutes=30)
    later = T0 + timedelta(minutes=50)
    assert first_update_due(incident(last_update_at=later), CONFIG) == later + timedelta(minutes=30)
    assert first_update_due(incident(severity="sev4"), CONFIG) is None
    assert first_update_due(incident(status="resolved"), CONFIG) is None


def test_ack_clock_only_for_unacknowledged_incidents() -> None:
    assert ack_due(incident(), CONFIG) is None
    assert ack_due(incident(acknowledged_at=None), CONFIG) == T0 + timedelta(minutes=15)
    assert ack_due(incident(acknowledged_at=None, severity="sev3"), CONFIG) is None


def test_postmortem_reminders_start_at_resolution() -> None:
    assert first_postmortem_reminder(incident(), CONFIG) is None
    resolved = incident(resolved_at=T0 + timedelta(hours=1), status="resolved")
    assert first_postmortem_reminder(resolved, CONFIG) == T0 + timedelta(hours=25)
    done = replace(resolved, postmortem_done_at=T0 + timedelta(hours=2))
    assert first_postmortem_reminder(done, CONFIG) is None


@pytest.mark.parametrize(
    ("late_by", "expected"),
    [
        (timedelta(seconds=1), T0 + timedelta(minutes=30)),  # on time: one interval on
        (timedelta(hours=3), T0 + timedelta(hours=3, minutes=30)),  # after downtime: once, then on
    ],
)
def test_next_after_never_schedules_in_the_past(late_by: timedelta, expected: datetime) -> None:
    assert next_after(T0, timedelta(minutes=30), T0 + late_by) == expected


def test_still_wanted() -> None:
    assert still_wanted("update", incident())
    assert not still_wanted("update", incident(status="resolved"))
    assert not still_wanted("ack", incident())
    assert still_wanted("ack", incident(acknowledged_at=None))
    assert not still_wanted("postmortem", incident())
    resolved = incident(status="resolved", resolved_at=T0)
    assert still_wanted("postmortem", resolved)
    assert not still_wanted("postmortem", replace(resolved, postmortem_done_at=T0))


def test_update_reminder_mentions_comms_else_commander() -> None:
    now = T0 + timedelta(minutes=35)
    [notice] = update_reminder(incident(), now)
    assert notice.channel_id == "C7"
    assert "<@U1>" in notice.text and "35m since declaration" in notice.text
    with_comms = incident(
        roles=(*incident().roles, RoleView("comms", Person("U2", "bo"), T0, None))
    )
    assert "<@U2>" in update_reminder(with_comms, now)[0].text


def test_escalation_goes_to_announce_channel_managers_and_war_room() -> None:
    notices = escalation(incident(acknowledged_at=None), T0 + timedelta(minutes=16), CONFIG)
    assert [n.channel_id for n in notices] == ["CANN", "UMGR", "C7"]
    assert "&lt;down&gt;" in notices[0].text  # the title is escaped


def test_postmortem_reminder_says_due_then_overdue() -> None:
    resolved = incident(status="resolved", resolved_at=T0)
    soon = postmortem_reminder(resolved, T0 + timedelta(hours=24), CONFIG)[0].text
    assert "due" in soon and "in 1d" in soon
    late = postmortem_reminder(resolved, T0 + timedelta(hours=50), CONFIG)[0].text
    assert "*overdue* by 2h" in late


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Checkout is failing for some card payments. Next update in 30 minutes.", []),
        ("This was probably caused by a bad deploy", ["probably", "caused by"]),
        ("We think the root cause is the database", ["we think", "root cause"]),
    ],
)
def test_speculation_is_spotted(text: str, found: list[str]) -> None:
    assert speculative_phrases(text) == found


def test_a_private_escalation_names_the_incident_only_to_members() -> None:
    config = CONFIG.model_copy(
        update={
            "severities": {
                **CONFIG.severities,
                "sev1": CONFIG.policy("sev1").model_copy(update={"escalate_to": ["UMGR", "UIN"]}),
            }
        }
    )
    private = incident(acknowledged_at=None, private=True)
    notices = escalation(private, T0 + timedelta(minutes=16), config, frozenset({"UIN"}))
    # Its war room first (the timeline keeps that text), then the people; no announcement.
    assert [n.channel_id for n in notices] == ["C7", "UMGR", "UIN"]
    room, outsider, member = (n.text for n in notices)
    assert "&lt;down&gt;" in room and "&lt;down&gt;" in member
    assert "down" not in outsider and "<#C7>" not in outsider
    assert "INC-" in outsider and "a private incident" in outsider
