"""What each Slack event becomes on the timeline: pure functions from an event's JSON to an
Entry, with the key that makes a redelivery a duplicate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.slack.text import printable, printable_data

# Joins and leaves arrive twice: as these messages and as member_* events; keep the events.
_SKIPPED = {"channel_join", "channel_leave", "group_join", "group_leave", "message_replied"}


def ts_to_datetime(ts: str) -> datetime:
    """A Slack ts (`1700000000.000100`) as an aware UTC datetime."""
    return datetime.fromtimestamp(float(ts), tz=UTC)


@dataclass(frozen=True)
class Entry:
    """One timeline entry, described without any storage or Slack types."""

    channel_id: str
    kind: str
    at: datetime
    dedupe_key: str
    actor_id: str | None = None
    actor_name: str | None = None
    text: str | None = None
    slack_ts: str | None = None
    thread_ts: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    # For an edit or deletion that arrives without the old text: look it up by this ts.
    previous_ts: str | None = None

    def __post_init__(self) -> None:
        # Whatever Slack sent, what is stored is printable (a NUL would fail PostgreSQL).
        if self.text:
            object.__setattr__(self, "text", printable(self.text))
        if self.actor_name:
            object.__setattr__(self, "actor_name", printable(self.actor_name))
        if self.data:
            object.__setattr__(self, "data", printable_data(self.data))


def _files(message: dict[str, Any]) -> list[dict[str, Any]]:
    keep = ("id", "name", "title", "mimetype", "permalink")
    return [{k: f.get(k) for k in keep if f.get(k)} for f in message.get("files", [])]


def _actor(message: dict[str, Any]) -> tuple[str | None, str | None]:
    if message.get("user"):
        return message["user"], None
    bot_name = (message.get("bot_profile") or {}).get("name") or message.get("username")
    return message.get("bot_id"), bot_name


def entry_for_message(event: dict[str, Any]) -> Entry | None:
    """The timeline entry a `message` event makes, or None for housekeeping that makes none."""
    subtype = event.get("subtype")
    channel = event["channel"]
    if subtype in _SKIPPED:
        return None
    if subtype == "message_changed":
        new, old = event.get("message") or {}, event.get("previous_message") or {}
        if new.get("text") == old.get("text") and old:
            return None  # an unfurl or attachment refresh, not an edit by a person
        actor_id, actor_name = _actor(new)
        edited_ts = (new.get("edited") or {}).get("ts") or event.get("event_ts") or event["ts"]
        return Entry(
            channel_id=channel,
            kind="message_edited",
            at=ts_to_datetime(edited_ts),
            dedupe_key=f"edit:{channel}:{new.get('ts')}:{edited_ts}",
            actor_id=actor_id,
            actor_name=actor_name,
            text=new.get("text"),
            slack_ts=new.get("ts"),
            thread_ts=_thread(new),
            previous_ts=None if old else new.get("ts"),
            data={"previous_text": old.get("text")} if old else {},
        )
    if subtype == "message_deleted":
        old = event.get("previous_message") or {}
        actor_id, actor_name = _actor(old)
        deleted_ts = event.get("deleted_ts") or old.get("ts")
        return Entry(
            channel_id=channel,
            kind="message_deleted",
            at=ts_to_datetime(event["ts"]),
            dedupe_key=f"delete:{channel}:{deleted_ts}",
            actor_id=actor_id,
            actor_name=actor_name,
            text=None,
            slack_ts=deleted_ts,
            thread_ts=_thread(old),
            previous_ts=None if old else deleted_ts,
            data={"previous_text": old.get("text")} if old else {},
        )
    actor_id, actor_name = _actor(event)
    data: dict[str, Any] = {}
    if subtype:
        data["subtype"] = subtype
    if event.get("files"):
        data["files"] = _files(event)
    if event.get("bot_id"):
        data["bot_id"] = event["bot_id"]
    return Entry(
        channel_id=channel,
        kind="message",
        at=ts_to_datetime(event["ts"]),
        dedupe_key=f"message:{channel}:{event['ts']}",
        actor_id=actor_id,
        actor_name=actor_name,
        text=event.get("text"),
        slack_ts=event["ts"],
        thread_ts=_thread(event),
        data=data,
    )


def entry_for_membership(event: dict[str, Any], event_id: str | None, joined: bool) -> Entry:
    """The entry for a join or leave, known again by its event id (else user, channel and ts)."""
    channel = event["channel"]
    ts = event.get("event_ts") or f"{datetime.now(UTC).timestamp():.6f}"
    data = {k: event[k] for k in ("inviter", "channel_type") if event.get(k)}
    return Entry(
        channel_id=channel,
        kind="member_joined" if joined else "member_left",
        at=ts_to_datetime(ts),
        dedupe_key=f"event:{event_id}" if event_id else f"member:{channel}:{event['user']}:{ts}",
        actor_id=event["user"],
        data=data,
    )


def _thread(message: dict[str, Any]) -> str | None:
    thread_ts = message.get("thread_ts")
    return thread_ts if thread_ts and thread_ts != message.get("ts") else None
