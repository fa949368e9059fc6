"""Follow-up parsing and rules: pure functions, no Slack and no database."""

from __future__ import annotations

from datetime import date

import pytest

from bot.commands.parse import FollowUpChange, FollowUpDraft, UserRef, parse_followup
from bot.errors import UsageError
from bot.followups.rules import (
    followup_number,
    parse_due,
    prefill_from_message,
    reminded_followup,
    reminder_kind,
)

TODAY = date(2026, 12, 4)
BO = UserRef(user_id="U0BO", handle="bo")


@pytest.mark.parametrize(
    ("args", "parsed"),
    [
        ("Add an alert", FollowUpDraft("Add an alert")),
        ("Add an alert <@U0BO|bo>", FollowUpDraft("Add an alert", owner=BO)),
        ("Add an alert <@U0BO|bo> due 3d", FollowUpDraft("Add an alert", owner=BO, due="3d")),
        ("Add an alert due 2026-12-24 <@U0BO|bo>", FollowUpDraft("Add an alert", BO, "2026-12-24")),
        ("Ask <@U0BO|bo> about   spacing", FollowUpDraft("Ask <@U0BO|bo> about   spacing")),
        ("done with the migration", FollowUpDraft("done with the migration")),
        ("done FU-3", FollowUpChange("done", 3)),
        ("DONE fu3", FollowUpChange("done", 3)),
        (
            "drop FU-3 covered by the SLO alert",
            FollowUpChange("drop", 3, reason="covered by the SLO alert"),
        ),
        ("assign FU-3 <@U0BO|bo>", FollowUpChange("assign", 3, owner=BO)),
        ("due FU-3 2026-12-24", FollowUpChange("due", 3, due="2026-12-24")),
    ],
)
def test_parse_followup(args: str, parsed: FollowUpDraft | FollowUpChange) -> None:
    assert parse_followup(args) == parsed


@pytest.mark.parametrize(
    "args",
    [
        "",
        "<@U0BO|bo> due 3d",
        "done FU-3 now",
        "drop FU-3",
        "assign FU-3",
        "assign FU-3 bo",
        "due FU-3",
    ],
)
def test_parse_followup_refuses(args: str) -> None:
    with pytest.raises(UsageError):
        parse_followup(args)


@pytest.mark.parametrize(
    ("word", "day"),
    [
        ("2026-12-24", date(2026, 12, 24)),
        ("2026-12-04", TODAY),
        ("3d", date(2026, 12, 7)),
        ("1h", TODAY),
    ],
)
def test_parse_due(word: str, day: date) -> None:
    assert parse_due(word, today=TODAY) == day


@pytest.mark.parametrize(
    "word", ["2026-12-03", "2026-02-30", "someday", "0d", "99999999d", "12/24"]
)
def test_parse_due_refuses(word: str) -> None:
    with pytest.raises(UsageError):
        parse_due(word, today=TODAY)


@pytest.mark.parametrize(
    ("text", "number"),
    [("FU-3", 3), ("fu3", 3), ("3", 3), ("FU-0", None), ("FU-2147483648", None), ("FU-³", None)],
)
def test_followup_number(text: str, number: int | None) -> None:
    assert followup_number(text) == number


def test_reminder_kinds_name_their_followup() -> None:
    assert reminder_kind(12) == "fu:12"
    assert reminded_followup("fu:12") == 12
    assert reminded_followup("postmortem") is None


def test_prefill_takes_the_first_mention_and_the_first_date() -> None:
    prefill = prefill_from_message(
        "<@U0CY> and <@U0BO> fix it by 2026-12-24, not 2026-12-31 &amp; test", {"U0CY": "cy"}
    )
    assert prefill.owner_id == "U0CY" and prefill.due == "2026-12-24"
    assert prefill.text == "@cy and @U0BO fix it by 2026-12-24, not 2026-12-31 & test"
