"""The comms ledger's arithmetic: on time, late, never, and no cadence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.comms.ledger import comms_ledger

T0 = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)
EVERY = timedelta(minutes=30)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_updates_on_time_miss_nothing() -> None:
    ledger = comms_ledger(
        declared_at=T0, ended_at=at(90), every=EVERY, update_times=[at(10), at(40), at(70)]
    )
    assert ledger.first_update_at == at(10)
    assert ledger.first_update_after_seconds == 600
    assert (ledger.updates, ledger.due, ledger.missed) == (3, 3, 0)
    assert ledger.on_time_ratio == 1.0
    assert ledger.longest_gap_seconds == 30 * 60


def test_update_exactly_on_its_deadline_is_on_time() -> None:
    ledger = comms_ledger(
        declared_at=T0, ended_at=at(61), every=EVERY, update_times=[at(30), at(60)]
    )
    assert (ledger.due, ledger.missed, ledger.on_time_ratio) == (2, 0, 1.0)


def test_late_updates_miss_one_deadline_per_interval_overrun() -> None:
    # 0 -> 45 misses the 30 deadline; 45 -> 120 misses 75 and 105; 120 -> 130 misses none.
    ledger = comms_ledger(
        declared_at=T0, ended_at=at(130), every=EVERY, update_times=[at(120), at(45)]
    )
    assert (ledger.updates, ledger.due, ledger.missed) == (2, 4, 3)
    assert ledger.on_time_ratio == 0.25
    assert ledger.longest_gap_seconds == 75 * 60
    assert ledger.first_update_after_seconds == 45 * 60


def test_no_update_misses_every_deadline_and_the_gap_runs_to_the_end() -> None:
    ledger = comms_ledger(declared_at=T0, ended_at=at(90), every=EVERY, update_times=[])
    assert ledger.first_update_at is None
    assert ledger.first_update_after_seconds is None
    assert (ledger.updates, ledger.due, ledger.missed) == (0, 3, 3)
    assert ledger.on_time_ratio == 0.0
    assert ledger.longest_gap_seconds == 90 * 60


@pytest.mark.parametrize("every", [None, timedelta(0)])
def test_severity_without_cadence_has_nothing_due(every: timedelta | None) -> None:
    ledger = comms_ledger(declared_at=T0, ended_at=at(600), every=every, update_times=[at(5)])
    assert (ledger.updates, ledger.due, ledger.missed) == (1, 0, 0)
    assert ledger.on_time_ratio is None


def test_short_incident_has_nothing_due_yet() -> None:
    ledger = comms_ledger(declared_at=T0, ended_at=at(20), every=EVERY, update_times=[])
    assert (ledger.due, ledger.missed, ledger.on_time_ratio) == (0, 0, None)
