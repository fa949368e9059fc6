"""The back-fill's pure rules: where reading starts, which threads are read, and which entries
the messages read make (keyed as their live events are)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.backfill.plan import (
    OVERLAP,
    entries_to_record,
    history_start,
    is_own,
    slack_ts,
    threads_to_read,
    ts_value,
)
from bot.slack.pacing import TIER3_PER_MINUTE, tier3_pacer
from bot.timeline.entries import entry_for_message, ts_to_datetime
from storage.backfill import RecordedText

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
OWN = frozenset({"UBOT0001", "B0BOT"})


def message(ts: str, text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "user": "U0ANA", "text": text, "ts": ts, **extra}


@pytest.mark.parametrize(
    ("newest", "since", "start"),
    [
        (NOW - timedelta(hours=1), None, NOW - timedelta(hours=1) - OVERLAP),
        (None, None, NOW - timedelta(days=1) - OVERLAP),
        (NOW - timedelta(hours=1), timedelta(hours=3), NOW - timedelta(hours=3)),
    ],
)
def test_history_starts_a_little_before_the_newest_message_or_since_ago(
    newest: datetime | None, since: timedelta | None, start: datetime
) -> None:
    declared = NOW - timedelta(days=1)
    assert (
        history_start(newest_message_at=newest, declared_at=declared, now=NOW, since=since) == start
    )


def test_a_slack_ts_round_trips_through_a_datetime() -> None:
    assert slack_ts(ts_to_datetime("1764039600.000100")) == "1764039600.000100"
    assert ts_value("1764039600.000100") is not None
    assert ts_value("soon") is None and ts_value(None) is None and ts_value("nan") is None


def test_threads_with_replies_since_the_start_are_read_with_the_known_ones() -> None:
    history = [
        message("100.000000", reply_count=2, latest_reply="150.000000", thread_ts="100.000000"),
        message("110.000000", reply_count=1, latest_reply="119.000000", thread_ts="110.000000"),
        message("120.000000"),
    ]
    assert threads_to_read(history, oldest="120.000000", known=["90.000000"]) == [
        "90.000000",
        "100.000000",
    ]


def test_warroom_s_own_posts_are_its_own() -> None:
    assert is_own({"user": "UBOT0001"}, OWN)
    assert is_own({"bot_id": "B0BOT", "subtype": "bot_message"}, OWN)
    assert not is_own({"user": "U0ANA"}, OWN)
    assert not is_own({"bot_id": "B0OTHER"}, OWN)


def test_missing_messages_become_the_entries_their_live_events_make() -> None:
    reply = message("101.000000", "yes", thread_ts="100.000000")
    shared = message("102.000000", "graph", subtype="file_share", files=[{"id": "F1"}])
    entries = entries_to_record("C1", [shared, reply], {}, own_ids=OWN)
    assert [(e.kind, e.slack_ts, e.thread_ts) for e in entries] == [
        ("message", "101.000000", "100.000000"),
        ("message", "102.000000", None),
    ]
    live = entry_for_message({**shared, "channel": "C1"})
    assert live is not None
    assert entries[1].dedupe_key == live.dedupe_key == "message:C1:102.000000"
    assert entries[1].data == {**live.data, "backfilled": True}
    assert entries[1].at == live.at == ts_to_datetime("102.000000")


def test_what_the_live_path_ignores_is_not_back_filled() -> None:
    skipped = [
        message("101.000000", user="UBOT0001"),
        message("102.000000", subtype="bot_message", bot_id="B0BOT"),
        message("103.000000", subtype="channel_join"),
        message("104.000000", subtype="tombstone", text="This message was deleted."),
    ]
    other_app = message("105.000000", subtype="bot_message", bot_id="B0OTHER", user=None)
    entries = entries_to_record("C1", [*skipped, other_app], {}, own_ids=OWN)
    assert [(e.slack_ts, e.actor_id) for e in entries] == [("105.000000", "B0OTHER")]


def test_recorded_messages_are_not_recorded_again() -> None:
    recorded = {"101.000000": RecordedText("hi", None)}
    assert entries_to_record("C1", [message("101.000000")], recorded, own_ids=OWN) == []


def test_an_edit_newer_than_the_recorded_text_is_an_edit_keyed_as_live() -> None:
    edited = message("101.000000", "hi all", edited={"user": "U0ANA", "ts": "130.000000"})
    [entry] = entries_to_record(
        "C1", [edited], {"101.000000": RecordedText("hi", None)}, own_ids=OWN
    )
    assert (entry.kind, entry.text, entry.slack_ts) == ("message_edited", "hi all", "101.000000")
    assert entry.at == ts_to_datetime("130.000000")
    assert entry.dedupe_key == "edit:C1:101.000000:130.000000"
    assert entry.data == {"previous_text": "hi", "backfilled": True}


@pytest.mark.parametrize(
    "known",
    [
        RecordedText("hi all", ts_to_datetime("130.000000")),  # that edit, recorded live
        RecordedText("hi all", None),  # the same text already
        RecordedText("older", ts_to_datetime("140.000000")),  # a newer edit is recorded
    ],
)
def test_an_edit_the_timeline_has_already_is_not_recorded(known: RecordedText) -> None:
    edited = message("101.000000", "hi all", edited={"user": "U0ANA", "ts": "130.000000"})
    assert entries_to_record("C1", [edited], {"101.000000": known}, own_ids=OWN) == []


def test_a_message_posted_and_edited_while_down_is_recorded_with_its_text_now() -> None:
    edited = message("101.000000", "hi all", edited={"user": "U0ANA", "ts": "130.000000"})
    [entry] = entries_to_record("C1", [edited], {}, own_ids=OWN)
    assert (entry.kind, entry.text) == ("message", "hi all")
    assert entry.data == {"edited_ts": "130.000000", "backfilled": True}


def test_history_and_thread_copies_of_one_message_make_one_entry() -> None:
    broadcast = message("101.000000", subtype="thread_broadcast", thread_ts="100.000000")
    entries = entries_to_record("C1", [broadcast, dict(broadcast)], {}, own_ids=OWN)
    assert len(entries) == 1


async def test_tier3_reads_are_paced_to_fifty_a_minute_after_a_burst() -> None:
    now = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = tier3_pacer(clock=lambda: now[0], sleep=sleep)
    for _ in range(5 + 50):
        await pacer.wait_turn("conversations.history")
    # The burst goes at once; the next 50 take a minute.
    assert now[0] == pytest.approx(60 * 50 / TIER3_PER_MINUTE)
    assert await pacer.wait_turn("conversations.replies") == 0, "each method has its own"
