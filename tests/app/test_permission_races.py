"""Who may act is decided inside the transaction that makes the change: a hand-over committed
after the caller's view was read is seen (issue 18, point 5)."""

from __future__ import annotations

import pytest

from bot.commands.parse import UserRef
from bot.errors import NotAllowedError
from bot.incidents.readmodels import IncidentView
from bot.incidents.service import Invocation
from tests.support.warroom import Warroom


async def stale_view_then_hand_over(warroom: Warroom) -> tuple[IncidentView, str]:
    """ana declares; her view of INC-1 is read; then she hands command to bo (committed)."""
    incident = await warroom.declare()
    channel = incident.channel_id or ""
    stale = await warroom.services.incidents.find(number=1, channel_id="")
    assert stale is not None and stale.commander is not None
    assert stale.commander.id == "U0ANA"
    reply = await warroom.command("role commander <@U0BO>", channel=channel)
    assert reply.status == 200
    await warroom.settle()
    return stale, channel


def by_ana(text: str, channel: str) -> Invocation:
    return Invocation(user_id="U0ANA", user_name="ana", channel_id=channel, text=text)


@pytest.mark.parametrize(
    "act",
    ["status", "severity", "update", "resolve"],
)
async def test_a_change_made_on_a_stale_view_is_refused(warroom: Warroom, act: str) -> None:
    stale, channel = await stale_view_then_hand_over(warroom)
    lifecycle = warroom.services.lifecycle
    before = warroom.stored(1)
    with pytest.raises(NotAllowedError, match="Only the commander"):
        if act == "status":
            await lifecycle.change_status(stale, "identified", by_ana("status identified", channel))
        elif act == "severity":
            await lifecycle.change_severity(stale, "sev2", by_ana("sev 2", channel))
        elif act == "update":
            await lifecycle.post_update(stale, "We are on it", by_ana("update x", channel))
        else:
            await lifecycle.resolve(stale, None, by_ana("resolve", channel))
    after = warroom.stored(1)
    assert (after.status, after.severity, after.last_update_at, after.resolved_at) == (
        before.status,
        before.severity,
        before.last_update_at,
        before.resolved_at,
    )
    assert "customer_update" not in warroom.kinds(1)


async def test_a_role_assigned_on_a_stale_view_is_refused(warroom: Warroom) -> None:
    stale, channel = await stale_view_then_hand_over(warroom)
    with pytest.raises(NotAllowedError, match="Only the commander"):
        await warroom.services.incidents.assign_role(
            stale, "comms", UserRef(user_id="U0CY"), by_ana("role comms <@U0CY>", channel)
        )
    roles = [e for e in warroom.timeline(1) if e.kind == "role_assigned"]
    assert [e.data["role"] for e in roles] == ["commander", "commander"]
