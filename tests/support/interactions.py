"""Interactivity as Slack sends it: block_actions and view_submission payloads, form-encoded
(`payload=` JSON) and signed, posted to the real server."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlencode

from tests.support.warroom import Reply, Signed, Warroom

FORM = "application/x-www-form-urlencoded"


def new_trigger() -> str:
    return f"trigger-{uuid.uuid4().hex}"


def user_of(room: Warroom, user_id: str) -> dict[str, str]:
    name = room.slack.users.get(user_id, {}).get("name", "someone")
    return {"id": user_id, "username": name, "name": name, "team_id": "T0TEST"}


def element_state(element: dict[str, Any], value: Any) -> dict[str, Any]:
    """What Slack puts in `view.state.values` for one input element; `value` None means
    untouched (the element's initial value, if any, is what Slack reports)."""
    kind = element["type"]
    if kind == "plain_text_input":
        typed = element.get("initial_value") if value is None else value
        return {"type": kind, "value": typed}
    if kind == "static_select":
        if value is None:
            return {"type": kind, "selected_option": element.get("initial_option")}
        chosen = next((o for o in element["options"] if o["value"] == value), None)
        return {"type": kind, "selected_option": chosen or {"value": value}}
    if kind == "users_select":
        return {"type": kind, "selected_user": value or element.get("initial_user")}
    if kind == "multi_users_select":
        return {"type": kind, "selected_users": value or element.get("initial_users", [])}
    if kind == "checkboxes":
        if value is None:
            return {"type": kind, "selected_options": element.get("initial_options", [])}
        chosen = [o for o in element["options"] if o["value"] in value]
        return {"type": kind, "selected_options": chosen}
    raise AssertionError(f"no state for a {kind} element")


def filled_state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` for a modal: every input block, with `answers` by block id."""
    unknown = set(answers) - {b.get("block_id") for b in view["blocks"]}
    assert not unknown, f"the modal has no blocks {unknown}"
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        if block["type"] != "input":
            continue
        element = block["element"]
        values[block["block_id"]] = {
            element["action_id"]: element_state(element, answers.get(block["block_id"]))
        }
    return {"values": values}


class Interactions:
    """Clicks and submissions from a user, signed like Slack's."""

    def __init__(self, room: Warroom) -> None:
        self.room = room

    async def post_payload(self, payload: dict[str, Any]) -> Reply:
        return await self.room.post(urlencode({"payload": json.dumps(payload)}), FORM)

    async def click(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str = "U0ANA",
        channel: str | None = None,
        message_ts: str | None = None,
        trigger_id: str | None = None,
    ) -> Reply:
        """A button click: on a message in `channel`, else on the App Home tab."""
        return await self.post_payload(
            self.click_payload(
                action_id,
                value,
                user=user,
                channel=channel,
                message_ts=message_ts,
                trigger_id=trigger_id,
            )
        )

    def click_payload(
        self,
        action_id: str,
        value: str = "",
        *,
        user: str = "U0ANA",
        channel: str | None = None,
        message_ts: str | None = None,
        trigger_id: str | None = None,
    ) -> dict[str, Any]:
        """The block_actions payload `click` sends."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": "T0TEST", "domain": "test"},
            "user": user_of(self.room, user),
            "api_app_id": "A0WARROOM",
            "token": "x",
            "trigger_id": trigger_id or new_trigger(),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b",
                    "value": value,
                    "action_ts": "1700000000.000001",
                }
            ],
        }
        if channel:
            payload["container"] = {
                "type": "message",
                "message_ts": message_ts or "1700000000.000100",
                "channel_id": channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": channel, "name": "war-room"}
        else:
            payload["container"] = {"type": "view", "view_id": "VHOME"}
        return payload

    async def submit(
        self, view: dict[str, Any], answers: dict[str, Any] | None = None, *, user: str = "U0ANA"
    ) -> Reply:
        """Submit a modal the fake Slack opened, with `answers` by block id."""
        return await self.post_payload(self.submission_payload(view, answers, user=user))

    def submission_payload(
        self, view: dict[str, Any], answers: dict[str, Any] | None = None, *, user: str = "U0ANA"
    ) -> dict[str, Any]:
        """The view_submission payload `submit` sends."""
        return {
            "type": "view_submission",
            "team": {"id": "T0TEST", "domain": "test"},
            "user": user_of(self.room, user),
            "api_app_id": "A0WARROOM",
            "token": "x",
            "trigger_id": new_trigger(),
            "view": {**view, "state": filled_state(view, answers or {})},
        }

    def signed(self, payload: dict[str, Any]) -> Signed:
        """`payload` form-encoded and signed as Slack sends it, to send (again) with `send`."""
        return self.room.sign(urlencode({"payload": json.dumps(payload)}), FORM)

    def opened(self, callback_id: str | None = None) -> dict[str, Any]:
        """The last modal opened (with that callback id), as the fake Slack holds it."""
        views = [
            v
            for v in self.room.slack.views.values()
            if callback_id is None or v.get("callback_id") == callback_id
        ]
        assert views, f"no modal {callback_id or ''} was opened"
        return views[-1]
