"""manifest.yml against Slack's published schema, and against what the code actually handles (the
scopes of the Web API methods it calls: tests/app/test_manifest_scopes.py)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from jsonschema import Draft7Validator
from slack_bolt.async_app import AsyncApp
from slack_bolt.listener.async_listener import AsyncListener
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.app import SLACK_PATH
from bot.ids import ActionId, BotEvent, CallbackId, SlashCommand
from bot.slack.listeners import register_listeners
from tests.support.manifest import read_manifest
from tests.support.paths import SUPPORT

# Slack's schema, kept in the repository (MIT, licence beside it): a clone needs nothing else.
SCHEMA = SUPPORT / "slack" / "manifest.schema.1.0.0.json"

# What each bot event delivers on the wire: its type, and the channel type for message.*.
CHANNEL_TYPES = {"channels": "channel", "groups": "group", "im": "im", "mpim": "mpim"}
# The scopes Slack requires for a bot event subscription (any one of them).
EVENT_SCOPES = {
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "member_joined_channel": {"channels:read", "groups:read"},
    "member_left_channel": {"channels:read", "groups:read"},
    # Slack asks no scope for the App Home event.
    "app_home_opened": set(),
    "pin_added": {"pins:read"},
    "reaction_added": {"reactions:read"},
    # A war room archived by hand: public channels, and private ones.
    "channel_archive": {"channels:read"},
    "group_archive": {"groups:read"},
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return read_manifest()


@pytest.fixture(scope="module")
def validator() -> Draft7Validator:
    assert SCHEMA.exists(), f"Slack's manifest schema is expected at {SCHEMA}"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def errors_of(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_manifest_matches_slacks_schema(
    manifest: dict[str, Any], validator: Draft7Validator
) -> None:
    assert errors_of(validator, manifest) == []


def test_the_schema_check_has_teeth(manifest: dict[str, Any], validator: Draft7Validator) -> None:
    broken = copy.deepcopy(manifest)
    del broken["features"]["slash_commands"][0]["description"]
    broken["settings"]["event_subscriptions"]["bot_events"].append(42)
    assert len(errors_of(validator, broken)) >= 2


def test_the_slash_command_escapes_users_and_channels(manifest: dict[str, Any]) -> None:
    commands = manifest["features"]["slash_commands"]
    assert [c["command"] for c in commands] == ["/incident"]
    # The parser reads `<@U123|name>`; without escaping Slack sends `@name` and ids are lost.
    assert commands[0]["should_escape"] is True


def test_every_request_url_is_the_one_route(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    urls = [
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
        *(c["url"] for c in manifest["features"]["slash_commands"]),
    ]
    assert SLACK_PATH == "/slack/events"
    assert all(url.startswith("https://") and url.endswith(SLACK_PATH) for url in urls), urls
    assert len(set(urls)) == 1, "events, interactivity and commands share one request URL"
    assert settings["interactivity"]["is_enabled"] is True


def test_manifest_commands_are_the_code_commands(manifest: dict[str, Any]) -> None:
    declared = {c["command"] for c in manifest["features"]["slash_commands"]}
    assert declared == {c.value for c in SlashCommand}


def test_manifest_bot_events_are_the_code_events(manifest: dict[str, Any]) -> None:
    declared = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert len(declared) == len(set(declared))
    assert set(declared) == {e.value for e in BotEvent}


def test_bot_events_have_their_scopes(manifest: dict[str, Any]) -> None:
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert "commands" in scopes
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        assert event in EVENT_SCOPES, f"say which scope {event} needs"
        needed = EVENT_SCOPES[event]
        assert not needed or needed & scopes, f"{event} needs one of {needed}"


# -- the enums are what the listeners register -------------------------------------------


def registered_listeners() -> list[AsyncListener]:
    app = AsyncApp(token="xoxb-test", signing_secret="test")
    register_listeners(app)
    return list(app._async_listeners)


def command_request(command: SlashCommand) -> AsyncBoltRequest:
    body = {
        "command": command.value,
        "text": "help",
        "user_id": "U0ANA",
        "channel_id": "C1",
        "team_id": "T0TEST",
        "api_app_id": "A0WARROOM",
    }
    return AsyncBoltRequest(body=body, mode="socket_mode")


def event_request(event: BotEvent) -> AsyncBoltRequest:
    kind, _, where = event.value.partition(".")
    payload: dict[str, Any] = {
        "type": kind,
        "channel": "C1",
        "user": "U0ANA",
        "ts": "1700000000.000100",
        "event_ts": "1700000000.000100",
    }
    if where:
        payload["channel_type"] = CHANNEL_TYPES[where]
        payload["text"] = "hello"
    body = {
        "type": "event_callback",
        "team_id": "T0TEST",
        "api_app_id": "A0WARROOM",
        "event_id": "Ev0TEST",
        "event": payload,
    }
    return AsyncBoltRequest(body=body, mode="socket_mode")


def _interaction(body: dict[str, Any]) -> AsyncBoltRequest:
    common = {"team": {"id": "T0TEST"}, "user": {"id": "U0ANA"}, "api_app_id": "A0WARROOM"}
    return AsyncBoltRequest(body={**common, **body}, mode="socket_mode")


def shortcut_request(callback_id: str) -> AsyncBoltRequest:
    return _interaction(
        {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": "t1",
            "channel": {"id": "C1"},
            "message": {"ts": "1700000000.000100", "text": "hello", "user": "U0BO"},
            "response_url": "https://hooks.slack.invalid/r1",
        }
    )


def action_request(action_id: ActionId) -> AsyncBoltRequest:
    action = {"type": "button", "action_id": action_id.value, "block_id": "b1", "value": "1"}
    return _interaction({"type": "block_actions", "trigger_id": "t1", "actions": [action]})


def view_requests(callback_id: CallbackId) -> list[AsyncBoltRequest]:
    view = {"id": "V1", "type": "modal", "callback_id": callback_id.value, "state": {"values": {}}}
    return [
        _interaction({"type": kind, "view": view}) for kind in ("view_submission", "view_closed")
    ]


def declared_shortcuts(manifest: dict[str, Any]) -> list[str]:
    return [s["callback_id"] for s in manifest["features"].get("shortcuts", [])]


async def matching(
    listeners: list[AsyncListener],
    request: AsyncBoltRequest,
) -> list[AsyncListener]:
    response = BoltResponse(status=200)
    return [
        listener
        for listener in listeners
        if await listener.async_matches(req=request, resp=response)
    ]


@pytest.mark.parametrize("command", list(SlashCommand))
async def test_every_declared_command_has_a_listener(command: SlashCommand) -> None:
    assert await matching(registered_listeners(), command_request(command))


@pytest.mark.parametrize("event", list(BotEvent))
async def test_every_declared_event_has_a_listener(event: BotEvent) -> None:
    assert await matching(registered_listeners(), event_request(event))


def test_manifest_shortcuts_are_message_shortcuts_with_code_ids(manifest: dict[str, Any]) -> None:
    shortcuts = manifest["features"]["shortcuts"]
    assert [s["type"] for s in shortcuts] == ["message"] * len(shortcuts)
    assert set(declared_shortcuts(manifest)) <= {c.value for c in CallbackId}
    assert CallbackId.ADD_TO_TIMELINE.value in declared_shortcuts(manifest)


async def test_every_declared_shortcut_has_a_listener(manifest: dict[str, Any]) -> None:
    listeners = registered_listeners()
    for callback_id in declared_shortcuts(manifest):
        assert await matching(listeners, shortcut_request(callback_id)), callback_id


async def test_every_shortcut_listener_is_declared(manifest: dict[str, Any]) -> None:
    listeners = registered_listeners()
    handled = [c.value for c in CallbackId if await matching(listeners, shortcut_request(c))]
    assert sorted(handled) == sorted(declared_shortcuts(manifest))


@pytest.mark.parametrize("action_id", list(ActionId))
async def test_every_action_id_has_a_listener(action_id: ActionId) -> None:
    # A button nobody handles shows its user a warning triangle: every id in the enum is wired.
    assert await matching(registered_listeners(), action_request(action_id))


async def test_every_listener_handles_something_declared(manifest: dict[str, Any]) -> None:
    listeners = registered_listeners()
    requests = [
        *(command_request(c) for c in SlashCommand),
        *(event_request(e) for e in BotEvent),
        *(shortcut_request(c) for c in declared_shortcuts(manifest)),
        *(action_request(a) for a in ActionId),
        *(r for c in CallbackId for r in view_requests(c)),
    ]
    used: set[int] = set()
    for request in requests:
        used.update(id(listener) for listener in await matching(listeners, request))
    unused = [listener.ack_function.__name__ for listener in listeners if id(listener) not in used]
    assert unused == [], "listeners for ids that manifest.yml or bot/ids.py do not declare"


async def test_an_undeclared_event_has_no_listener() -> None:
    body = {
        "type": "event_callback",
        "event": {
            "type": "app_mention",
            "channel": "C1",
            "user": "U0ANA",
            "text": "hi",
            "ts": "1.0",
        },
    }
    request = AsyncBoltRequest(body=body, mode="socket_mode")
    assert await matching(registered_listeners(), request) == []


async def test_an_undeclared_shortcut_has_no_listener() -> None:
    assert await matching(registered_listeners(), shortcut_request("not_a_shortcut")) == []
