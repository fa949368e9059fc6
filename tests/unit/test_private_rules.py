"""The pure parts of private incidents: the `--private` flag and the alert label."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.alerts.alertmanager import Notification, is_private
from bot.commands.parse import parse_declaration, split_private_flag
from bot.followups.rules import FollowUpStatus, FollowUpView, reminder_text
from bot.incidents.readmodels import Person


@pytest.mark.parametrize(
    ("args", "private", "rest"),
    [
        ("--private Badge breach sev1", True, "Badge breach sev1"),
        ("Badge breach --PRIVATE", True, "Badge breach"),
        ("\u2014private Badge breach", True, "Badge breach"),  # Slack's em dash
        ("Badge breach sev1", False, "Badge breach sev1"),
        ("--privately Badge breach", False, "--privately Badge breach"),
    ],
)
def test_the_private_flag_is_a_word_of_its_own(args: str, private: bool, rest: str) -> None:
    assert split_private_flag(args) == (private, rest)


def test_a_private_declaration_keeps_its_title_and_severity() -> None:
    declaration = parse_declaration("--private Badge breach sev2")
    assert (declaration.title, declaration.severity, declaration.private) == (
        "Badge breach",
        "sev2",
        True,
    )
    assert not parse_declaration("Badge breach").private


def _notification(common: dict[str, str], alert: dict[str, str]) -> Notification:
    return Notification.model_validate(
        {
            "version": "4",
            "groupKey": "k",
            "status": "firing",
            "commonLabels": common,
            "alerts": [{"status": "firing", "labels": alert}],
        }
    )


@pytest.mark.parametrize(
    ("common", "alert", "private"),
    [
        ({"private": "true"}, {}, True),
        ({}, {"private": "True"}, True),
        ({"private": "false"}, {}, False),
        ({"private": "yes"}, {}, False),
        ({}, {}, False),
    ],
)
def test_an_alert_is_private_by_its_label(
    common: dict[str, str], alert: dict[str, str], private: bool
) -> None:
    assert is_private(_notification(common, alert)) is private


def test_a_followup_reminder_for_an_owner_outside_a_private_room_has_no_text() -> None:
    followup = FollowUpView(
        number=3,
        incident_id=1,
        incident_number=7,
        text="Rotate the badge keys",
        owner=Person("U0CY", "cy"),
        due=date(2026, 12, 4),
        status=FollowUpStatus.OPEN,
        reason=None,
        created_at=datetime(2026, 12, 1, tzinfo=UTC),
        created_by=Person("U0ANA", "ana"),
        closed_at=None,
        source_ts=None,
    )
    today = date(2026, 12, 4)
    assert "Rotate the badge keys" in reminder_text(followup, today)
    untitled = reminder_text(followup, today, titled=False)
    assert "Rotate" not in untitled and "FU-3" in untitled and "INC-7" in untitled
