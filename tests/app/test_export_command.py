"""`/incident export`: a signed link when the server is reachable, else the file in Slack."""

from __future__ import annotations

import re

import aiohttp

from tests.support.warroom import WarroomFactory


async def test_without_links_the_file_is_uploaded_to_the_war_room(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await room.declare("Checkout API returning 500s sev1")
    await room.event(
        {
            "type": "message",
            "channel": incident.channel_id,
            "user": "U0BO",
            "text": "rolling back 4.2.1",
            "ts": "1700000100.000100",
        }
    )
    reply = await room.command("export md", channel=incident.channel_id)
    assert reply.status == 200 and "Uploading the INC-1 timeline (md)" in reply.message
    await room.settle()

    [upload] = room.slack.uploads.values()
    assert upload["channel"] == incident.channel_id
    assert upload["filename"] == "INC-1.md"
    content = upload["content"].decode()
    assert content.startswith("# INC-1: Checkout API returning 500s")
    assert "rolling back 4.2.1" in content
    assert room.kinds(1)[-1] == "command"


async def test_with_a_public_url_the_reply_is_a_signed_link_that_works(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        env={"warroom_export_token": "s3cret", "warroom_public_url": "https://warroom.example"}
    )
    incident = await room.declare()
    reply = await room.command("export csv", channel=incident.channel_id)
    match = re.search(r"<https://warroom\.example(/[^|>]+)\|INC-1 timeline \(csv\)>", reply.message)
    assert match, reply.message
    path = match.group(1).replace("&amp;", "&")
    assert not room.slack.uploads

    async with aiohttp.ClientSession() as http:
        async with http.get(str(room.server.make_url("/")).rstrip("/") + path) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/csv")
            body = await response.text()
        assert body.splitlines()[0].startswith("at,local_time,kind")
        # The same link with its signature changed gives nothing.
        forged = re.sub(r"sig=[0-9a-f]+", "sig=" + "0" * 64, path)
        async with http.get(str(room.server.make_url("/")).rstrip("/") + forged) as response:
            assert response.status == 401
            assert "INC-1" not in await response.text()


async def test_an_unknown_format_is_refused_and_recorded(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    incident = await room.declare()
    reply = await room.command("export pdf", channel=incident.channel_id)
    assert "Usage: `/incident export [md|html|json|csv]`" in reply.message
    assert not room.slack.uploads
    last = room.timeline(1)[-1]
    assert last.kind == "command" and last.data.get("reason")
