"""Times in Slack through the real path (issue 17): the pinned header's customer-update line,
rendered with the services' injected clock as a date token each reader sees in their own time
zone; fields Slack renders no token in (the notification text, the topic) carry none."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.slack.text import slack_date
from storage.models import Incident
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom

EVERY = timedelta(minutes=30)
# A severity named is taken as written: SEV1 with only an update cadence (nothing fires during
# the test), SEV3 with none.
CONFIG = {
    "severities": {"sev1": {"update_every": "30m"}, "sev3": {}},
    "postmortem_remind_every": None,
}


def header_message(room: Warroom, incident: Incident) -> dict[str, Any]:
    """The pinned header as the fake Slack holds it now (chat.update replaces it in place)."""
    [message] = [
        m for m in room.slack.messages[incident.channel_id or ""] if m["ts"] == incident.header_ts
    ]
    return message


def comms(room: Warroom, incident: Incident) -> str:
    """The header's customer-update line."""
    blocks = header_message(room, incident)["blocks"]
    lines = [
        e["text"]
        for b in blocks
        if b["type"] == "context"
        for e in b["elements"]
        if "customer update" in e["text"]
    ]
    assert len(lines) == 1, blocks
    return str(lines[0])


def assert_no_token_where_slack_renders_none(room: Warroom, incident: Incident) -> None:
    """The notification text of every header post and edit, and every topic: UTC text only."""
    header_calls = [
        c.args
        for c in room.slack.calls_to("chat.postMessage") + room.slack.calls_to("chat.update")
        if "blocks" in c.args
    ]
    assert header_calls
    assert not any("<!date" in str(args.get("text", "")) for args in header_calls)
    plain = [
        block["text"]["text"]
        for block in header_message(room, incident)["blocks"]
        if block.get("text", {}).get("type") == "plain_text"
    ]
    assert plain and not any("<!date" in text for text in plain)
    topics = [c.args["topic"] for c in room.slack.calls_to("conversations.setTopic")]
    assert topics and not any("<!date" in topic for topic in topics)


async def test_the_header_says_when_the_last_update_went_out_and_when_the_next_is_due(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, CONFIG)
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    assert comms(room, declared) == (
        f"*No customer update yet* · first due {slack_date(declared.declared_at + EVERY)}"
    )

    clock.advance(timedelta(minutes=10))
    reply = await room.command("update Checkout is failing for some customers.", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    updated_at = room.stored(1).last_update_at
    assert updated_at == clock.now
    assert comms(room, declared) == (
        f"*Last customer update* just now · next due {slack_date(updated_at + EVERY)}"
    )

    # The line is as of the last time the header was rendered: the next change re-renders it.
    clock.advance(timedelta(minutes=12))
    reply = await room.command("status monitoring", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    assert comms(room, declared) == (
        f"*Last customer update* 12 min ago · next due {slack_date(updated_at + EVERY)}"
    )

    # Past due, it says so.
    clock.advance(timedelta(minutes=30))
    reply = await room.command("status identified", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    assert comms(room, declared) == (
        f"*Last customer update* 42 min ago · :warning: next was due "
        f"{slack_date(updated_at + EVERY)}"
    )

    # Resolved: no update is due any more.
    reply = await room.command("resolve Rolled back", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    assert comms(room, declared) == "*Last customer update* 42 min ago"
    assert_no_token_where_slack_renders_none(room, room.stored(1))


async def test_a_severity_without_a_cadence_shows_no_due_time(
    make_clocked_warroom: ClockedFactory,
) -> None:
    room = await make_clocked_warroom(Clock(), CONFIG)
    declared = await room.declare("Search is slow sev3")
    assert comms(room, declared) == "*No customer update yet*"
    header = json.dumps(header_message(room, declared)["blocks"])
    assert "<!date" not in header
