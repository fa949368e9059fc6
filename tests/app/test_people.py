"""Naming people in commands: answered from the cache when known, within Slack's ack budget."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.incidents.people import UNKNOWN_FOR
from tests.support.home import Clock, ClockedFactory
from tests.support.paths import PAYLOADS
from tests.support.warroom import Warroom


async def test_a_known_handle_is_answered_without_asking_slack(warroom: Warroom) -> None:
    incident = await warroom.declare()
    first = await warroom.command("role resolver @bo", channel=incident.channel_id)
    assert "is now resolver" in first.message
    assert len(warroom.slack.calls_to("users.list")) == 1

    again = await warroom.command("role comms @bo", channel=incident.channel_id)
    assert "is now comms" in again.message
    assert len(warroom.slack.calls_to("users.list")) == 1, "the handle was looked up twice"


async def test_slow_slack_gets_a_clear_answer_in_time_and_changes_nothing(
    warroom: Warroom,
) -> None:
    incident = await warroom.declare()
    before = warroom.kinds(incident.number)
    warroom.slack.latency = 3.0  # users.info would outlast Slack's 3 s for the ack
    reply = await warroom.command("role comms <@U0CY|cy>", channel=incident.channel_id)
    warroom.slack.latency = 0.0
    assert reply.status == 200
    assert "Slack is slow" in reply.message
    after = warroom.timeline(incident.number)
    assert [e.kind for e in after[: len(before)]] == before
    assert "role_assigned" not in [e.kind for e in after[len(before) :]]


def _message(channel: str | None, n: int, user: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((PAYLOADS / "message.json").read_text())
    ts = f"17000003{n:02d}.000100"
    event.update(channel=channel, user=user, ts=ts, event_ts=ts, text=f"line {n}")
    return event


def _users_info_for(warroom: Warroom, user_id: str) -> int:
    return sum(1 for c in warroom.slack.calls_to("users.info") if c.args.get("user") == user_id)


async def test_an_author_slack_does_not_know_is_asked_about_once_a_while(
    make_clocked_warroom: ClockedFactory,
) -> None:
    """A guest from another workspace, say: users.info says user_not_found. Each of their
    messages must not cost a Slack call (and a database read); after a while Slack is asked
    again, and a name it has learned meanwhile is put on the entries."""
    clock = Clock()
    warroom = await make_clocked_warroom(clock)
    incident = await warroom.declare()
    for n in range(5):
        reply = await warroom.event(_message(incident.channel_id, n, "U0GUEST"))
        assert reply.status == 200
        await warroom.settle()
    assert _users_info_for(warroom, "U0GUEST") == 1
    lines = [e for e in warroom.timeline(incident.number) if e.kind == "message"]
    assert len(lines) == 5 and all(e.actor_name is None for e in lines)

    warroom.slack.add_user("U0GUEST", "gus")
    clock.advance(UNKNOWN_FOR + timedelta(seconds=1))
    reply = await warroom.event(_message(incident.channel_id, 5, "U0GUEST"))
    assert reply.status == 200
    await warroom.settle()
    assert _users_info_for(warroom, "U0GUEST") == 2
    lines = [e for e in warroom.timeline(incident.number) if e.kind == "message"]
    assert len(lines) == 6 and {e.actor_name for e in lines} == {"Gus"}
