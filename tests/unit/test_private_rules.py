"""The pure parts of private incidents: the `--private` flag and the alert label."""

from __future__ import annotations

import pytest

from bot.alerts.alertmanager import Notification, is_private
from bot.commands.parse import parse_declaration, split_private_flag


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
