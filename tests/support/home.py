"""Signed App Home, shortcut, pin and reaction payloads, and the clock a test moves (the
`make_clocked_warroom` fixture hands it to the server)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bot.ids import CallbackId
from tests.support.fakes.slack_api import BOT_USER
from tests.support.warroom import Reply, Warroom


def _real_now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Clock:
    """The one thing faked by hand: what the services think the time is."""

    # Starts at the real time, so that reminders the scheduler keeps in real time never fall
    # due during a test; tests only move it forward.
    now: datetime = field(default_factory=_real_now)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


ClockedFactory = Callable[..., Awaitable[Warroom]]


# -- what Slack sends ----------------------------------------------------------------------


async def open_home(room: Warroom, user: str, *, tab: str = "home") -> Reply:
    """The `app_home_opened` event Slack sends when `user` opens a tab of the app."""
    return await room.event(
        {
            "type": "app_home_opened",
            "user": user,
            "channel": f"D{user[1:]}",
            "tab": tab,
            "event_ts": f"{datetime.now(UTC).timestamp():.6f}",
        }
    )


async def interaction(room: Warroom, payload: dict[str, Any]) -> Reply:
    """An interactivity request: a form with one field, `payload`, holding the JSON."""
    body = urlencode({"payload": json.dumps(payload)})
    return await room.post(body, "application/x-www-form-urlencoded")


def shortcut_payload(
    room: Warroom,
    *,
    channel: str,
    message: dict[str, Any],
    user: str = "U0BO",
    response_key: str | None = None,
) -> dict[str, Any]:
    """A `message_action` payload: `user` ran "Add to incident timeline" on `message`."""
    return {
        "type": "message_action",
        "token": "x",
        "action_ts": f"{datetime.now(UTC).timestamp():.6f}",
        "team": {"id": "T0TEST", "domain": "test"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "channel": {"id": channel, "name": "somewhere"},
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": CallbackId.ADD_TO_TIMELINE.value,
        "trigger_id": f"trigger-{uuid.uuid4().hex}",
        "response_url": room.slack.response_url(response_key or uuid.uuid4().hex[:8]),
        "message_ts": message["ts"],
        "message": {"type": "message", **message},
    }


async def run_shortcut(room: Warroom, **kwargs: Any) -> Reply:
    return await interaction(room, shortcut_payload(room, **kwargs))


def pin_event(*, channel: str, message: dict[str, Any], user: str = "U0BO") -> dict[str, Any]:
    """A `pin_added` event: `user` pinned `message` (Slack sends the whole message)."""
    return {
        "type": "pin_added",
        "user": user,
        "channel_id": channel,
        "item": {
            "type": "message",
            "channel": channel,
            "created": 1700000900,
            "created_by": user,
            "message": {"type": "message", **message},
        },
        "event_ts": f"{datetime.now(UTC).timestamp():.6f}",
    }


def reaction_event(
    *, channel: str, ts: str, reaction: str, user: str = "U0CY", item_user: str = "U0ANA"
) -> dict[str, Any]:
    """A `reaction_added` event: it names the message only by channel and ts."""
    return {
        "type": "reaction_added",
        "user": user,
        "reaction": reaction,
        "item_user": item_user,
        "item": {"type": "message", "channel": channel, "ts": ts},
        "event_ts": f"{datetime.now(UTC).timestamp():.6f}",
    }


def message_event(*, channel: str, ts: str, text: str, user: str = "U0ANA") -> dict[str, Any]:
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "channel_type": "channel",
        "event_ts": ts,
    }


__all__ = [
    "BOT_USER",
    "Clock",
    "ClockedFactory",
    "interaction",
    "message_event",
    "open_home",
    "pin_event",
    "reaction_event",
    "run_shortcut",
    "shortcut_payload",
]
