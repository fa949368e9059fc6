"""Naming people in commands: answered from the cache when known, within Slack's ack budget."""

from __future__ import annotations

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
