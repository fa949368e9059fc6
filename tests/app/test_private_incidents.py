"""Private incidents through the real server and the fake Slack: declared by command, form
and alert into a private war room, and seen outside it only by its members and the admins."""

from __future__ import annotations

import json

from bot.ids import BlockId, CallbackId
from tests.support.interactions import Interactions
from tests.support.warroom import Warroom, WarroomFactory

TITLE = "Badge reader breach in Leeds"


async def test_declare_private_opens_a_private_room_with_only_its_people(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"invite": ["S0ONCALL", "U0CY"], "escalate_to": ["U0CY"]}}}
    )
    room.slack.usergroups["S0ONCALL"] = ["U0BO"]
    incident = await room.declare(f"--private {TITLE} sev1")
    channel = room.slack.channels[incident.channel_id or ""]
    assert channel.is_private and channel.name == "inc-1-private"
    [create] = room.slack.calls_to("conversations.create")
    assert create.args["is_private"] in (True, "true", "1")
    # The severity's invite lists are not applied: only the declarer (and the bot).
    assert channel.members == {"UBOT0001", "U0ANA"}
    assert incident.is_private and incident.title == TITLE
    assert "C0ANNOUNCE" not in room.slack.messages, "the announcement channel hears nothing"
    assert room.kinds(1) == ["command", "declared", "role_assigned"]


async def test_private_invites_and_announce_private_when_configured(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {
            "private_invites": True,
            "announce_private": True,
            "private_channel_pattern": "sec-{number}",
            "severities": {"sev1": {"invite": ["U0CY"]}},
        }
    )
    incident = await room.declare(f"{TITLE} --private sev1")
    channel = room.slack.channels[incident.channel_id or ""]
    assert channel.name == "sec-1" and "U0CY" in channel.members
    [announcement] = room.slack.messages["C0ANNOUNCE"]
    assert announcement["text"] == "INC-1, a private incident, was declared."


async def test_the_declare_form_has_a_private_box(warroom: Warroom) -> None:
    ui = Interactions(warroom)
    reply = await warroom.command("declare --private")
    assert reply.status == 200 and reply.text == ""
    view = ui.opened(CallbackId.DECLARE_MODAL)
    box = next(b for b in view["blocks"] if b["block_id"] == BlockId.PRIVATE)["element"]
    assert box["initial_options"][0]["value"] == "private", "--private ticks the box"
    reply = await ui.submit(view, {BlockId.TITLE: TITLE, BlockId.RESPONDERS: ["U0BO"]})
    assert reply.status == 200, reply.text
    await warroom.settle()
    incident = warroom.stored(1)
    assert incident.is_private and incident.channel_id
    channel = warroom.slack.channels[incident.channel_id]
    assert channel.is_private and channel.members == {"UBOT0001", "U0ANA", "U0BO"}
    [declared] = [e for e in warroom.timeline(1) if e.kind == "command"][:1]
    assert declared.text == f"/incident declare --private {TITLE} sev3"

    # Unticked, the form declares a public incident.
    await warroom.command("declare")
    view = ui.opened(CallbackId.DECLARE_MODAL)
    assert (
        "initial_options"
        not in next(b for b in view["blocks"] if b["block_id"] == BlockId.PRIVATE)["element"]
    )
    await ui.submit(view, {BlockId.TITLE: "Checkout slow"})
    await warroom.settle()
    assert not warroom.stored(2).is_private


async def test_an_alert_labelled_private_declares_a_private_incident(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(env={"warroom_alert_token": "alert-token"})
    body = {
        "version": "4",
        "groupKey": '{}:{alertname="Exfiltration"}',
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": "Exfiltration"},
        "commonLabels": {"alertname": "Exfiltration", "severity": "critical", "private": "true"},
        "commonAnnotations": {"summary": "Data leaving through the VPN"},
        "externalURL": "http://alertmanager",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "Exfiltration", "private": "true"},
                "annotations": {},
                "startsAt": "2026-12-04T07:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus",
                "fingerprint": "abc",
            }
        ],
    }
    async with room.http.post(
        str(room.server.make_url("/hooks/alertmanager")),
        data=json.dumps(body),
        headers={"Authorization": "Bearer alert-token", "Content-Type": "application/json"},
    ) as response:
        assert response.status == 200, await response.text()
    await room.settle()
    incident = room.stored(1)
    assert incident.is_private
    channel = room.slack.channels[incident.channel_id or ""]
    assert channel.is_private and channel.name == "inc-1-private"
    assert "C0ANNOUNCE" not in room.slack.messages
