"""Private incidents through the real server and the fake Slack: declared by command, form
and alert into a private war room, and seen outside it only by its members and the admins."""

from __future__ import annotations

import json
import re

import pytest

from bot.ids import BlockId, CallbackId
from tests.support.fakes.slack_api import manifest_bot_scopes
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


# -- who sees it: the "done when" ----------------------------------------------------

OUTSIDER, MEMBER, ADMIN = "U0CY", "U0BO", "U0ADMIN"
FOLLOWUP = "Rotate the badge signing keys"
# What the outsider tries from #general, each aimed at the incident by number.
ATTEMPTS = (
    "roles",
    "note I saw something",
    "status resolved",
    "export html",
    "followups",
    "followup Look at the logs",
    "frobnicate",
)


async def _home(room: Warroom, user: str) -> str:
    reply = await room.event({"type": "app_home_opened", "user": user, "tab": "home"})
    assert reply.status == 200
    await room.settle()
    return json.dumps(room.slack.homes[user])


async def _says(room: Warroom, user: str, text: str) -> str:
    reply = await room.command(text, user=user)
    assert reply.status == 200, reply.text
    await room.settle()
    return reply.message


async def _get(room: Warroom, path: str) -> tuple[int, str]:
    async with room.http.get(str(room.server.make_url(path))) as response:
        return response.status, await response.text()


async def _everything_seen_by(room: Warroom, user: str, number: int) -> str:
    """What `user` sees of INC-`number` from outside its room, on every surface, as one text."""
    seen = [
        await _says(room, user, "list"),
        await _home(room, user),
        await _says(room, user, "followups mine"),
        await _says(room, user, "followup done FU-1"),
    ]
    seen += [await _says(room, user, f"INC-{number} {attempt}") for attempt in ATTEMPTS]
    link = re.search(r"<(https?://[^|>]+)\|", seen[4 + ATTEMPTS.index("export html")])
    if link:
        # A member's export link works, for them and whoever they hand it to.
        path = link.group(1).replace("&amp;", "&").split("warroom.example", 1)[1]
        status, page = await _get(room, path)
        assert status == 200
        seen.append(page)
    return "\n".join(seen)


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
async def test_only_members_and_admins_see_a_private_incident_anywhere(
    make_warroom: WarroomFactory, database_url: str, private: bool
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"escalate_to": [OUTSIDER]}}},
        database_url,
        env={"warroom_export_token": "s3cret", "warroom_public_url": "https://warroom.example"},
    )
    flag = "--private " if private else ""
    incident = await room.declare(f"{flag}{TITLE} sev1")
    room_id, room_name = incident.channel_id or "", incident.channel_name or ""
    # In the room: a follow-up for the outsider, and a message; the timeline keeps both.
    await room.command(f"followup {FOLLOWUP} <@{OUTSIDER}>", channel=room_id)
    before = len(room.slack.responses)
    secrets = (TITLE, FOLLOWUP, room_name, room_id, "U0ANA")

    # The outsider: a workspace member who is not in the room.
    outside = await _everything_seen_by(room, OUTSIDER, incident.number)
    status, listing = await _get(room, "/incidents")
    assert status == 401 and TITLE not in listing, "no token, no link: refused"
    status, metrics = await _get(room, "/metrics")
    assert status == 200
    outside += "\n" + metrics
    # And what Slack shows them: channels they can find, their DMs, the announcements.
    outside += "\n" + json.dumps(room.slack.visible_channel_names(OUTSIDER))
    for channel in ("C0ANNOUNCE", "C0GENERAL", OUTSIDER):
        outside += "\n" + json.dumps(room.slack.messages.get(channel, []))
    outside += "\n" + json.dumps(room.slack.responses[before:])
    refused = [e for e in room.timeline(incident.number) if e.kind == "access_refused"]

    if not private:
        # The check is not vacuous: a public incident shows on every one of those surfaces.
        for secret in (TITLE, FOLLOWUP, room_name):
            assert secret in outside, f"a public incident's {secret!r} shows outside"
        assert refused == []
        return

    for secret in secrets:
        assert secret not in outside, f"{secret!r} leaked to a non-member"
    assert metrics.count("warroom_incidents{") >= 1 and TITLE not in metrics
    # Word for word what an incident that does not exist gets.
    for attempt in ATTEMPTS:
        hidden = await _says(room, OUTSIDER, f"INC-{incident.number} {attempt}")
        missing = await _says(room, OUTSIDER, f"INC-99 {attempt}")
        assert hidden == missing.replace("INC-99", f"INC-{incident.number}"), attempt
    assert await _says(room, OUTSIDER, "followup done FU-1") == (
        await _says(room, OUTSIDER, "followup done FU-99")
    ).replace("FU-99", "FU-1")
    # Each attempt is on the incident's timeline: who, and what.
    assert refused and {e.actor_id for e in refused} == {OUTSIDER}
    assert f"/incident INC-{incident.number} roles" in {e.text for e in refused}
    assert "/incident followup done FU-1" in {e.text for e in refused}

    # A member (joined as Slack tells it) and an admin (in no room) see all of it.
    await room.event(
        {
            "type": "member_joined_channel",
            "user": MEMBER,
            "channel": room_id,
            "channel_type": "G",
            "event_ts": "1700000460.000800",
        }
    )
    for insider in (MEMBER, ADMIN):
        seen = await _everything_seen_by(room, insider, incident.number)
        for secret in (TITLE, FOLLOWUP, room_id):
            assert secret in seen, f"{secret!r} hidden from {insider}"
    # The export token is an operator's: the list shows every incident, a private one marked.
    async with room.http.get(
        str(room.server.make_url("/incidents")), headers={"Authorization": "Bearer s3cret"}
    ) as response:
        assert response.status == 200
        assert f"{TITLE} <em>(private)</em>" in await response.text()
    # Gone from the room, gone from view.
    await room.event(
        {
            "type": "member_left_channel",
            "user": MEMBER,
            "channel": room_id,
            "channel_type": "G",
            "event_ts": "1700000470.000800",
        }
    )
    assert TITLE not in await _says(room, MEMBER, "list")


async def test_a_private_room_needs_groups_write(warroom: Warroom) -> None:
    # Without the scope the manifest asks for, Slack refuses the private channel: the fake
    # checks it, so a manifest that lost it fails here as it would in a workspace.
    warroom.slack.granted_scopes = manifest_bot_scopes() - {"groups:write"}
    reply = await warroom.command(f"declare --private {TITLE}")
    assert reply.status == 200
    await warroom.settle()
    assert warroom.stored(1).channel_id is None
    assert not warroom.slack.channels.keys() - {"C0GENERAL", "C0ANNOUNCE"}
    assert any("missing_scope" in r["text"] for r in warroom.slack.responses)


UPDATE_THEN_RESOLVE = (
    "update Badges disabled at the Leeds site",
    "resolve Reader firmware rolled back",
)


@pytest.mark.parametrize("announce_private", [False, True])
async def test_a_private_incidents_updates_and_resolution_stay_out_of_the_announcement_channel(
    make_warroom: WarroomFactory, announce_private: bool
) -> None:
    room = await make_warroom({"announce_private": announce_private})
    incident = await room.declare(f"--private {TITLE} sev1")
    channel = incident.channel_id or ""
    for words in (
        "update Badges disabled at the Leeds site",
        "resolve Reader firmware rolled back",
    ):
        reply = await room.command(words, channel=channel)
        assert reply.status == 200, reply.text
    await room.settle()
    in_room = " ".join(m["text"] for m in room.slack.messages[channel])
    assert "Badges disabled at the Leeds site" in in_room, "the room hears the update"
    heard = [m["text"] for m in room.slack.messages.get("C0ANNOUNCE", [])]
    if announce_private:
        assert heard == [
            "INC-1, a private incident, was declared.",
            ":white_check_mark: *INC-1*, a private incident, is resolved.",
        ]
    else:
        assert heard == []


async def test_a_public_incidents_update_and_resolution_are_announced(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await room.declare(f"{TITLE} sev1")
    channel = incident.channel_id or ""
    for words in (
        "update Badges disabled at the Leeds site",
        "resolve Reader firmware rolled back",
    ):
        assert (await room.command(words, channel=channel)).status == 200
    await room.settle()
    heard = " ".join(m["text"] for m in room.slack.messages["C0ANNOUNCE"])
    assert "Badges disabled at the Leeds site" in heard and "resolved after" in heard
    assert TITLE in heard
