"""/metrics counts the reminders that fired and how late (issue 18, point 3)."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.support.warroom import WarroomFactory


async def test_metrics_count_reminders_fired_and_how_late(make_warroom: WarroomFactory) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, "postmortem_remind_every": None}
    )
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""

    def reminders() -> list[float]:
        return [float(e.data["late_seconds"]) for e in room.timeline(1) if e.kind == "reminder"]

    await room.slack.wait_for(lambda: len(reminders()) >= 2, timeout=10)
    # Resolving stops the clock, so the counts below cannot move while they are read.
    reply = await room.command("resolve", channel=channel)
    assert reply.status == 200
    await room.settle()
    fired = reminders()

    async with (
        aiohttp.ClientSession() as http,
        http.get(room.server.make_url("/metrics")) as response,
    ):
        body = await response.text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }
    assert samples[("warroom_reminders_fired_total", (("kind", "update"),))] == len(fired)
    assert samples[("warroom_reminder_late_seconds_count", ())] == len(fired)
    # The timeline keeps lateness to the millisecond; the histogram keeps it whole.
    late_sum = samples[("warroom_reminder_late_seconds_sum", ())]
    assert abs(late_sum - sum(fired)) <= 0.001 * len(fired)
