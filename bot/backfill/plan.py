"""The pure rules of a back-fill: where to start reading a war room's history, which threads to
read, and which timeline entries the messages read make (the same entries, with the same dedupe
keys, as the live events would have made)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.slack.text import printable
from bot.timeline.entries import Entry, entry_for_message, ts_to_datetime
from storage.backfill import RecordedText

# Read from this long before the newest recorded message: messages just before it may have been
# lost while it was recorded (an event that failed while a later one got through).
OVERLAP = timedelta(minutes=10)
# Threads with a reply recorded this long before the history's start are read too: replies to
# a thread whose parent is older than the history read are not in that history.
THREAD_REACH = timedelta(hours=1)
# Slack keeps these in history, but warroom's timeline does not take them from there: a deleted
# thread parent (the deletion itself cannot be seen afterwards).
_NOT_FROM_HISTORY = frozenset({"tombstone"})
# A ts read back from a stored datetime may be off by a microsecond (float rounding).
_TICK = timedelta(microseconds=1)


def history_start(
    *,
    newest_message_at: datetime | None,
    declared_at: datetime,
    now: datetime,
    since: timedelta | None = None,
) -> datetime:
    """Where reading a war room's history starts: `since` before now when asked, else a little
    before the newest recorded message (or the declaration, when none is)."""
    if since is not None:
        return now - since
    return (newest_message_at or declared_at) - OVERLAP


def slack_ts(moment: datetime) -> str:
    """A datetime as a Slack ts (`1700000000.000100`), for `oldest`."""
    return f"{moment.timestamp():.6f}"


def ts_value(ts: Any) -> Decimal | None:
    """A Slack ts as an exact number, for comparing; None when it is not one."""
    try:
        value = Decimal(str(ts))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def threads_to_read(
    history: Iterable[Mapping[str, Any]], *, oldest: str, known: Iterable[str] = ()
) -> list[str]:
    """The threads with replies at or after `oldest`: parents in `history` whose
    `latest_reply` says so, and `known` threads (replied to lately, parents maybe older)."""
    start = ts_value(oldest) or Decimal(0)
    found = set(known)
    for message in history:
        latest = ts_value(message.get("latest_reply"))
        if message.get("reply_count") and latest is not None and latest >= start:
            found.add(str(message.get("thread_ts") or message["ts"]))
    return sorted(found, key=lambda ts: ts_value(ts) or Decimal(0))


def is_own(message: Mapping[str, Any], own_ids: frozenset[str]) -> bool:
    """Whether warroom posted `message` (its bot user or bot id): live, Bolt drops those."""
    return bool(own_ids) and (message.get("user") in own_ids or message.get("bot_id") in own_ids)


def entries_to_record(
    channel_id: str,
    messages: Iterable[Mapping[str, Any]],
    recorded: Mapping[str, RecordedText],
    *,
    own_ids: frozenset[str],
) -> list[Entry]:
    """What the timeline lacks of `messages` (read from history and threads), in ts order: a
    `message` for each one never recorded, a `message_edited` for each whose `edited.ts` is
    newer than the recorded text. Each marked `backfilled`, and keyed as its live event is."""
    unique = {str(m["ts"]): m for m in messages if ts_value(m.get("ts")) is not None}
    entries: list[Entry] = []
    for ts in sorted(unique, key=lambda t: ts_value(t) or Decimal(0)):
        message = unique[ts]
        if is_own(message, own_ids) or message.get("subtype") in _NOT_FROM_HISTORY:
            continue
        known = recorded.get(ts)
        entry = (
            _message_entry(channel_id, message)
            if known is None
            else _edit_entry(channel_id, message, known)
        )
        if entry is not None:
            entries.append(dataclasses.replace(entry, data={**entry.data, "backfilled": True}))
    return entries


def _message_entry(channel_id: str, message: Mapping[str, Any]) -> Entry | None:
    """The entry the message's live event makes; posted and edited while warroom was down, it
    is recorded with the text it has now (its earlier text is gone)."""
    entry = entry_for_message({**message, "channel": channel_id})
    if entry is None or entry.kind != "message":
        return None
    edited_ts = (message.get("edited") or {}).get("ts")
    if edited_ts:
        return dataclasses.replace(entry, data={**entry.data, "edited_ts": str(edited_ts)})
    return entry


def _edit_entry(channel_id: str, message: Mapping[str, Any], known: RecordedText) -> Entry | None:
    """The `message_changed` event's entry for the message's last edit, when the timeline's
    text is older than that edit and differs from the text now."""
    edited_ts = (message.get("edited") or {}).get("ts")
    if not edited_ts or printable(str(message.get("text") or "")) == (known.text or ""):
        return None
    if ts_value(edited_ts) is None:
        return None
    # An edit older than the recorded one (a stale read) changes nothing.
    if known.edited_at is not None and ts_to_datetime(str(edited_ts)) < known.edited_at - _TICK:
        return None
    event = {
        "type": "message",
        "subtype": "message_changed",
        "channel": channel_id,
        "ts": str(edited_ts),
        "event_ts": str(edited_ts),
        "message": dict(message),
        "previous_message": {"ts": message["ts"], "text": known.text},
    }
    return entry_for_message(event)
