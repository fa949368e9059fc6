"""Times in Slack: a date token each reader sees in their own time zone, UTC text wherever Slack
renders no token, and the header's customer-update line (pure functions, an injected `now`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bot.config import WarroomConfig
from bot.incidents.enums import Status
from bot.slack.blocks.common import ago, comms_line, header_blocks, header_text, topic_text
from bot.slack.text import TIME_ONLY, slack_date, to_plain, utc_text
from tests.support.factories import incident_view

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
UNIX = 1795575600  # T0
CONFIG = WarroomConfig.model_validate(
    {
        "timezone": "Europe/Paris",
        "severities": {
            "sev1": {"update_every": "30m"},
            "sev4": {"update_every": None},
        },
    }
)


def token(moment: datetime) -> str:
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{utc_text(moment)}>"


def test_slack_date_is_a_date_token_with_a_utc_fallback() -> None:
    assert int(T0.timestamp()) == UNIX
    assert slack_date(T0) == f"<!date^{UNIX}^{{date_short_pretty}} {{time}}|2026-11-25 03:00 UTC>"
    assert slack_date(T0, TIME_ONLY) == f"<!date^{UNIX}^{{time}}|2026-11-25 03:00 UTC>"


def test_the_fallback_is_utc_whatever_zone_the_moment_came_in() -> None:
    paris = T0.astimezone(timezone(timedelta(hours=1)))
    assert slack_date(paris) == slack_date(T0)
    # Seconds are dropped, not rounded: the token and its fallback name the same minute.
    assert slack_date(T0 + timedelta(seconds=59, microseconds=999)).endswith(
        "|2026-11-25 03:00 UTC>"
    )


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        pytest.param(f"due {slack_date(T0)}.", "due 2026-11-25 03:00 UTC.", id="labelled"),
        pytest.param(f"due <!date^{UNIX}^{{time}}>.", "due 2026-11-25 03:00 UTC.", id="bare"),
        pytest.param("due <!date^soon^{time}>.", "due a date.", id="no-timestamp"),
        pytest.param("<!here> <!subteam^S1|@oncall>", "@here @oncall", id="others-unchanged"),
    ],
)
def test_to_plain_reads_a_date_token_as_its_utc_fallback(text: str, plain: str) -> None:
    assert to_plain(text) == plain


def test_to_plain_can_read_a_date_token_in_a_configured_zone() -> None:
    text = f"due {slack_date(T0)}, then <!date^{UNIX}^{{time}}> and <!date^soon^{{time}}|later>"
    assert to_plain(text, zone=ZoneInfo("Europe/Paris")) == (
        "due 2026-11-25 04:00 CET, then 2026-11-25 04:00 CET and later"
    )


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "just now"),
        (59, "just now"),
        (60, "1 min ago"),
        (719, "11 min ago"),
        (3599, "59 min ago"),
        (3600, "1h ago"),
        (7500, "2h 5m ago"),
        (90061, "1d 1h ago"),
    ],
)
def test_ago_counts_whole_minutes(seconds: int, said: str) -> None:
    assert ago(timedelta(seconds=seconds)) == said


def test_no_update_yet_shows_when_the_first_is_due() -> None:
    incident = incident_view(declared_at=T0)
    line = comms_line(incident, T0 + timedelta(minutes=12), CONFIG)
    assert line == f"*No customer update yet* · first due {token(T0 + timedelta(minutes=30))}"


def test_after_an_update_the_line_says_how_long_ago_and_when_the_next_is_due() -> None:
    updated = T0 + timedelta(minutes=40)
    incident = incident_view(declared_at=T0, last_update_at=updated)
    line = comms_line(incident, updated + timedelta(minutes=12, seconds=30), CONFIG)
    assert line == (
        f"*Last customer update* 12 min ago · next due {token(updated + timedelta(minutes=30))}"
    )


def test_an_overdue_update_says_so() -> None:
    incident = incident_view(declared_at=T0, last_update_at=T0)
    line = comms_line(incident, T0 + timedelta(minutes=45), CONFIG)
    assert line == (
        f"*Last customer update* 45 min ago · :warning: next was due "
        f"{token(T0 + timedelta(minutes=30))}"
    )


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.DECLINED, Status.MERGED])
def test_an_ended_incident_shows_no_next_due(status: Status) -> None:
    incident = incident_view(declared_at=T0, last_update_at=T0, status=status)
    assert comms_line(incident, T0 + timedelta(hours=2), CONFIG) == (
        "*Last customer update* 2h ago"
    )
    never = incident_view(declared_at=T0, status=status)
    assert comms_line(never, T0 + timedelta(hours=2), CONFIG) == "*No customer update yet*"


def test_a_severity_without_a_cadence_shows_no_next_due() -> None:
    incident = incident_view(declared_at=T0, severity="sev4")
    assert comms_line(incident, T0, CONFIG) == "*No customer update yet*"


def test_the_header_carries_the_comms_line_and_no_token_where_slack_renders_none() -> None:
    incident = incident_view(declared_at=T0, last_update_at=T0)
    blocks = header_blocks(incident, now=T0 + timedelta(minutes=5), config=CONFIG)
    contexts = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert contexts[0] == comms_line(incident, T0 + timedelta(minutes=5), CONFIG)
    assert contexts[0].startswith("*Last customer update* 5 min ago · next due <!date^")
    # plain_text (the title, buttons), the notification fallback and the topic: no token.
    assert "<!date" not in blocks[0]["text"]["text"]
    buttons = [e["text"]["text"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons and not any("<!date" in text for text in buttons)
    assert "<!date" not in header_text(incident) + topic_text(incident)
