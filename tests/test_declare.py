"""Declaring an incident through the real server, against the fake Slack."""

from __future__ import annotations

from tests.conftest import Warroom


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
