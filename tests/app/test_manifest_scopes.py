"""The Web API methods the app really calls, through the real server against the fake Slack,
each with its scope in manifest.yml."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.manifest import read_manifest
from tests.support.warroom import Warroom, WarroomFactory


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return read_manifest()


# The scope each Web API method the app calls needs (a public channel war room).
METHOD_SCOPES = {
    "auth.test": None,
    "conversations.create": "channels:manage",
    "conversations.invite": "channels:manage",
    "conversations.setTopic": "channels:manage",
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "pins.add": "pins:write",
    "users.info": "users:read",
    "users.list": "users:read",
    "usergroups.users.list": "usergroups:read",
    # The back-fill reads war rooms' history (public channels).
    "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    # Views (modals, the Home tab) need no scope of their own.
    "views.open": None,
    "views.push": None,
    "views.update": None,
    "views.publish": None,
}


async def test_web_api_methods_the_app_calls_have_their_scopes(
    manifest: dict[str, Any], make_warroom: WarroomFactory
) -> None:
    room: Warroom = await make_warroom({"severities": {"sev1": {"invite": ["S0ONCALL"]}}})
    room.slack.usergroups["S0ONCALL"] = ["U0CY"]
    incident = await room.declare("Checkout down sev1")
    await room.command("role comms @bo", channel=incident.channel_id)
    await room.command("role resolver <@U0CY>", channel=incident.channel_id)
    reply = await room.event({"type": "app_home_opened", "user": "U0BO", "tab": "home"})
    assert reply.status == 200
    await room.settle()
    assert "U0BO" in room.slack.homes, "the Home tab was published, so its method is checked"

    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    for method in {c.method for c in room.slack.calls}:
        assert method in METHOD_SCOPES, f"say which scope {method} needs"
        needed = METHOD_SCOPES[method]
        assert needed is None or needed in scopes, f"{method} needs {needed}"
