"""When a war room is archived: resolved incidents after `archive_after` once their post-mortem
is done or not required; declined and merged ones `archive_closed_after` after they closed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.archive.rules import ArchiveFacts, archive_due, is_due, postmortem_required
from bot.config import WarroomConfig

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
CONFIG = WarroomConfig()


def facts(**changes: object) -> ArchiveFacts:
    base: dict[str, object] = {
        "status": "resolved",
        "severity": "sev1",
        "resolved_at": T0,
        "postmortem_done_at": T0 + timedelta(days=1),
        "closed_at": None,
    }
    return ArchiveFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_defaults_are_fourteen_days_and_one_hour() -> None:
    assert CONFIG.archive_after == timedelta(days=14)
    assert CONFIG.archive_closed_after == timedelta(hours=1)


def test_resolved_with_its_postmortem_done_is_due_after_archive_after() -> None:
    assert archive_due(facts(), CONFIG) == T0 + timedelta(days=14)
    assert not is_due(facts(), CONFIG, T0 + timedelta(days=14) - timedelta(seconds=1))
    assert is_due(facts(), CONFIG, T0 + timedelta(days=14))


def test_resolved_waits_for_a_required_postmortem() -> None:
    owed = facts(postmortem_done_at=None)
    assert postmortem_required("sev1", CONFIG)
    assert archive_due(owed, CONFIG) is None
    assert not is_due(owed, CONFIG, T0 + timedelta(days=400))


def test_a_postmortem_written_late_lets_the_room_go_then() -> None:
    late = facts(postmortem_done_at=T0 + timedelta(days=20))
    assert archive_due(late, CONFIG) == T0 + timedelta(days=20)


def test_a_severity_without_a_postmortem_deadline_needs_none() -> None:
    sev4 = facts(severity="sev4", postmortem_done_at=None)
    assert not postmortem_required("sev4", CONFIG)
    assert archive_due(sev4, CONFIG) == T0 + timedelta(days=14)


@pytest.mark.parametrize("status", ["declined", "merged"])
def test_closed_without_resolution_is_due_after_archive_closed_after(status: str) -> None:
    closed = facts(status=status, resolved_at=None, postmortem_done_at=None, closed_at=T0)
    assert archive_due(closed, CONFIG) == T0 + timedelta(hours=1)
    # No post-mortem is asked of them, whatever the severity.
    assert is_due(closed, CONFIG, T0 + timedelta(hours=1))


@pytest.mark.parametrize("status", ["triage", "investigating", "identified", "monitoring"])
def test_open_incidents_are_never_archived(status: str) -> None:
    assert archive_due(facts(status=status, resolved_at=None, closed_at=T0), CONFIG) is None


def test_null_turns_each_clock_off() -> None:
    off = WarroomConfig(archive_after=None, archive_closed_after=None)
    assert archive_due(facts(), off) is None
    closed = facts(status="declined", resolved_at=None, closed_at=T0)
    assert archive_due(closed, off) is None
    assert archive_due(facts(status="declined", resolved_at=None), CONFIG) is None


def test_durations_are_read_from_the_config_file() -> None:
    config = WarroomConfig.model_validate({"archive_after": "2d", "archive_closed_after": "30m"})
    assert config.archive_after == timedelta(days=2)
    assert config.archive_closed_after == timedelta(minutes=30)
