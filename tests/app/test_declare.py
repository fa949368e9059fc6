"""Declaring an incident through the real server, against the fake Slack."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.commands.parse import Declaration
from bot.incidents.service import OPENING_CLAIM, Invocation
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom, WarroomFactory


async def test_declare_opens_a_war_room(warroom: Warroom) -> None:
    slack = warroom.slack
    slack.usergroups["S0ONCALL"] = ["U0BO", "U0CY"]
    reply = await warroom.command("declare Checkout API returning 500s sev1")
    assert reply.status == 200
    assert reply.json["response_type"] == "ephemeral"
    assert "INC-1" in reply.message

    await warroom.settle()
    channel = slack.channel_named("inc-1-checkout-api-returning-500s")
    assert "U0ANA" in channel.members
    assert channel.topic.startswith("INC-1 SEV1 | Investigating | Commander:")
    assert len(channel.pins) == 1
    header = slack.messages[channel.id][0]
    assert header["blocks"][0]["text"]["text"] == "INC-1: Checkout API returning 500s"
    announce = slack.messages["C0ANNOUNCE"][0]["text"]
    assert "INC-1" in announce and f"<#{channel.id}>" in announce
    assert warroom.kinds(1) == ["command", "declared", "role_assigned"]
    assert any("is open in" in r["text"] for r in slack.responses)


async def test_a_war_room_left_unopened_by_a_crash_opens_at_the_next_start(
    make_warroom: WarroomFactory, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    first = await make_warroom(database_url=url)
    # The declaration was committed and acknowledged, then the process died before Slack work.
    await first.services.incidents.declare(
        Invocation(user_id="U0ANA", user_name="ana", channel_id="C0GENERAL", text="declare x"),
        Declaration(title="Payments stuck", severity="sev2"),
    )
    assert not first.slack.calls_to("conversations.create")

    second = await make_warroom(database_url=url)
    await second.settle()
    channel = second.slack.channel_named("inc-1-payments-stuck")
    assert "U0ANA" in channel.members and channel.pins


async def test_a_war_room_being_opened_is_not_opened_again_by_a_resume(
    warroom: Warroom,
) -> None:
    # Slack is slow: the declaring process is still creating the channel when the leader (here,
    # the same services; on PostgreSQL, another replica) looks for unopened war rooms.
    warroom.slack.latency = 0.2
    reply = await warroom.command("declare Checkout API returning 500s sev1")
    assert reply.status == 200
    assert await warroom.services.incidents.resume_unopened_war_rooms() == 0
    await warroom.settle()
    assert len(warroom.slack.calls_to("conversations.create")) == 1
    assert warroom.stored(1).channel_id is not None


async def test_a_war_room_slack_refused_is_tried_again_once_its_claim_lapses(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    room.slack.fail("conversations.create", error="restricted_action")
    await room.command("declare Payments stuck sev2")
    await room.settle()
    assert room.stored(1).channel_id is None
    assert any("restricted_action" in r["text"] for r in room.slack.responses)

    # Within the minute the first attempt holds, nobody tries again.
    clock.advance(OPENING_CLAIM - timedelta(seconds=1))
    assert await room.services.incidents.resume_unopened_war_rooms() == 0
    # Then the leader's next look opens it (Slack is fine again), once.
    clock.advance(timedelta(seconds=2))
    assert await room.services.incidents.resume_unopened_war_rooms() == 1
    assert await room.services.incidents.resume_unopened_war_rooms() == 0
    await room.settle()
    assert len(room.slack.calls_to("conversations.create")) == 2
    channel = room.slack.channel_named("inc-1-payments-stuck")
    assert room.stored(1).channel_id == channel.id and channel.pins


async def test_a_header_slack_refused_is_posted_once_its_claim_lapses(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    # No announcement channel: the header is the only message this war room's opening posts.
    room = await make_clocked_warroom(clock, {"announce_channel": None})
    room.slack.fail("chat.postMessage", error="restricted_action")
    await room.command("declare Payments stuck sev2")
    await room.settle()
    incident = room.stored(1)
    assert incident.channel_id is not None and incident.header_ts is None
    assert not room.slack.messages.get(incident.channel_id)

    clock.advance(OPENING_CLAIM - timedelta(seconds=1))
    assert await room.services.incidents.resume_unopened_war_rooms() == 0
    clock.advance(timedelta(seconds=2))
    assert await room.services.incidents.resume_unopened_war_rooms() == 1
    await room.settle()
    assert await room.services.incidents.resume_unopened_war_rooms() == 0
    [header] = room.slack.messages[incident.channel_id]
    assert room.stored(1).header_ts == header["ts"]
    assert room.slack.channels[incident.channel_id].pins == [header["ts"]]


async def test_an_opening_that_outlasts_its_claim_renews_it_and_is_not_opened_twice(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    incidents = room.services.incidents
    incidents.claim_renewal_every = 0.02
    # Slack is slow enough (its retries, say) that the opening outlives its first claim.
    room.slack.latency = 0.3
    await room.command("declare Payments stuck sev2")
    clock.advance(OPENING_CLAIM + timedelta(seconds=1))
    # The opener is still at work, and renews its claim from the time it is now.
    await room.slack.wait_for(
        lambda: (room.stored(1).opening_until or clock.now) > clock.now, timeout=5
    )
    assert await incidents.resume_unopened_war_rooms() == 0
    await room.settle()
    assert len(room.slack.calls_to("conversations.create")) == 1
    assert room.stored(1).channel_id == room.slack.channel_named("inc-1-payments-stuck").id
