"""Key events, the pure parts: what the shortcut, a pin and a reaction mark (read from Slack's
payloads), and the reactions the config accepts."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import WarroomConfig, load_config
from bot.errors import ConfigError
from bot.slack.listeners.key_events import mark_from_pin, mark_from_reaction, reaction_name
from bot.slack.listeners.shortcuts import mark_from_shortcut
from bot.timeline.service import KeyMark
from tests.support.home import reaction_event

MESSAGE_TS = "1700000100.000200"
MESSAGE_TEXT = "rolling back <@U0CY|cy>'s deploy fixed it &amp; errors are down"


def test_mark_from_shortcut_reads_slacks_payload() -> None:
    message = {"ts": MESSAGE_TS, "text": MESSAGE_TEXT, "user": "U0ANA", "thread_ts": MESSAGE_TS}
    payload = shortcut_payload_for("C1", message)

    assert mark_from_shortcut(payload) == KeyMark(
        channel_id="C1",
        message_ts=MESSAGE_TS,
        marked_by="U0BO",
        via="shortcut",
        author_id="U0ANA",
        text=MESSAGE_TEXT,
        thread_ts=MESSAGE_TS,
    )


def shortcut_payload_for(channel: str, msg: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "add_to_timeline",
        "user": {"id": "U0BO"},
        "channel": {"id": channel},
        "message_ts": msg["ts"],
        "message": msg,
    }


@pytest.mark.parametrize(
    ("item", "expected_ts"),
    [
        ({"type": "message", "channel": "C1", "message": {"ts": "1.2", "user": "U0ANA"}}, "1.2"),
        ({"type": "file", "channel": "C1", "file": {"id": "F1"}}, None),
        ({"type": "message", "channel": "C1", "message": {}}, None),
    ],
)
def test_mark_from_pin(item: dict[str, Any], expected_ts: str | None) -> None:
    mark = mark_from_pin({"type": "pin_added", "user": "U0BO", "channel_id": "C1", "item": item})
    assert (mark.message_ts if mark else None) == expected_ts


@pytest.mark.parametrize(
    ("reaction", "item_type", "marks"),
    [
        ("star", "message", True),
        ("star::skin-tone-2", "message", True),
        ("starry", "message", False),
        ("star", "file", False),
    ],
)
def test_mark_from_reaction(reaction: str, item_type: str, marks: bool) -> None:
    event = reaction_event(channel="C1", ts="1.2", reaction=reaction)
    event["item"]["type"] = item_type
    assert (mark_from_reaction(event, ["pushpin", "star"]) is not None) == marks


def test_reaction_name_drops_the_skin_tone() -> None:
    assert reaction_name("thumbsup::skin-tone-2") == "thumbsup"
    assert reaction_name("star") == "star"


def test_key_event_reactions_default_and_accept_colons() -> None:
    assert WarroomConfig().key_event_reactions == ["pushpin", "star"]
    config = WarroomConfig.model_validate({"key_event_reactions": [":Fire:", " eyes "]})
    assert config.key_event_reactions == ["fire", "eyes"]
    assert WarroomConfig.model_validate({"key_event_reactions": []}).key_event_reactions == []


def test_a_bad_reaction_name_is_refused_by_key(tmp_path: Any) -> None:
    path = tmp_path / "warroom.yml"
    path.write_text("key_event_reactions: [star, 'two words']\n", encoding="utf-8")

    with pytest.raises(ConfigError) as refused:
        load_config(path)

    assert "key_event_reactions" in refused.value.message
    assert "'two words' is not an emoji name" in refused.value.message
