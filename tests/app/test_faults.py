"""A whole incident against a Slack that answers one Web API call in five with a 429 or a 500:
through the real server, the timeline is complete and every message the bot owed is posted
once. The fake Slack fails a call before doing its work, as Slack does with a 429."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.incidents.readmodels import incident_view
from bot.slack.blocks.common import topic_text
from storage.models import Incident, OutboxMessage
from tests.support.warroom import Warroom, WarroomFactory

# Seeds for the fault pattern, so that a failure can be replayed (call order still varies).
SEEDS = (20261125, 7, 42)
FAULT_RATE = 0.2
MESSAGES = 50
SPEAKERS = ("U0ANA", "U0BO", "U0CY")
REDELIVERED = range(0, MESSAGES, 5)  # Slack retries some events it thought were lost
UPDATE = ":hourglass:"


def message_event(channel: str, n: int) -> dict[str, Any]:
    ts = f"1700002{n:03d}.000100"
    return {
        "type": "message",
        "channel": channel,
        "user": SPEAKERS[n % len(SPEAKERS)],
        "text": f"finding {n}: p99 latency still high",
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
        "team": "T0TEST",
    }


async def send_messages(room: Warroom, channel: str, numbers: range) -> None:
    """Deliver messages as Slack does, several at once, each with its own event id."""
    replies = await asyncio.gather(
        *(room.event(message_event(channel, n), event_id=f"EvMSG{n:03d}") for n in numbers)
    )
    assert [r.status for r in replies] == [200] * len(replies)


async def command(room: Warroom, text: str, channel: str, user: str = "U0ANA") -> str:
    reply = await room.command(text, channel=channel, user=user)
    assert reply.status == 200, reply.text
    return reply.message


def owed(room: Warroom) -> list[OutboxMessage]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(OutboxMessage)).all())


def sent_ok(room: Warroom, method: str) -> float:
    """Calls Slack answered ok, as the gateway counted them (failed tries are not)."""
    value = room.services.metrics.registry.get_sample_value(
        "warroom_slack_web_api_calls_total", {"method": method, "outcome": "ok"}
    )
    return value or 0.0


def retried(room: Warroom) -> float:
    registry = room.services.metrics.registry
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "warroom_slack_web_api_calls_total" and sample.labels["outcome"] in (
                "ratelimited",
                "retried_server_error",
            ):
                total += sample.value
    return total


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_whole_incident_through_a_slack_that_fails_one_call_in_five(
    make_warroom: WarroomFactory, database_url: str, seed: int
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "2s"}}, "postmortem_remind_every": None},
        database_url=database_url,
        outbox_every=0.5,
    )
    slack = room.slack
    slack.fault_rng = random.Random(seed)
    slack.fault_retry_after = 1
    slack.fault_rate = FAULT_RATE

    incident = await room.declare("Checkout latency sev1")
    channel = incident.channel_id or ""
    # Everyone speaks before roles are handed out, so their names are known by then.
    await send_messages(room, channel, range(0, 10))
    await room.settle()
    assert "is now comms" in await command(room, "role comms <@U0BO|bo>", channel)
    assert "is now resolver" in await command(room, "role resolver <@U0CY|cy>", channel)
    await send_messages(room, channel, range(10, MESSAGES))
    await command(room, "status identified", channel)
    # A reminder falls due before the customer update, and again after it.
    await slack.wait_for(lambda: any(UPDATE in m["text"] for m in slack.messages[channel]), 10)
    await command(room, "update Checkout is slow for some customers; we are on it.", channel)
    for n in REDELIVERED:
        reply = await room.event(message_event(channel, n), event_id=f"EvMSG{n:03d}", retry=1)
        assert reply.status == 200
    await command(room, "resolve Rolled back the cache change", channel)
    await room.settle()
    await slack.wait_for(lambda: all(m.posted_at for m in owed(room)), timeout=30)
    await room.services.clocks.stop()
    await room.settle()

    events = room.timeline(1)
    # The timeline: every command, change and message once, and the reminders it sent.
    kinds = Counter(e.kind for e in events)
    reminders = kinds.pop("reminder")
    assert reminders >= 1
    assert kinds == {
        "command": 6,  # declare, two roles, status, update, resolve
        "declared": 1,
        "role_assigned": 3,
        "status_changed": 2,  # identified, then resolved
        "customer_update": 1,
        "resolved": 1,
        "message": MESSAGES,
    }
    message_ts = sorted(e.slack_ts or "" for e in events if e.kind == "message")
    assert message_ts == sorted(message_event(channel, n)["ts"] for n in range(MESSAGES))
    # Names were learned from Slack (users.info, retried) and filled in on every entry.
    assert {e.actor_name for e in events if e.kind == "message"} == {"Ana", "Bo", "Cy"}

    # One channel, its topic and pinned header in line with the end state.
    created = [c for c in slack.channels.values() if c.name.startswith("inc-")]
    assert [c.name for c in created] == ["inc-1-checkout-latency"]
    with Session(room.services.db.engine) as session:
        final = incident_view(session, session.exec(select(Incident)).one())
    assert final.status == "resolved"
    assert created[0].topic == topic_text(final)
    header = slack.messages[channel][0]
    assert created[0].pins == [header["ts"]]

    # Every message owed, posted once: in the war room...
    in_room = [m["text"] for m in slack.messages[channel]]
    assert len(in_room) == len(set(in_room)), in_room
    assert header["text"] == "INC-1 (SEV1): Checkout latency"
    assert sum(t.startswith(":loudspeaker: *Customer update") for t in in_room) == 1
    posted_reminders = sorted(t for t in in_room if t.startswith(UPDATE))
    assert posted_reminders == sorted(e.text or "" for e in events if e.kind == "reminder")
    assert len(in_room) == 2 + reminders
    # ...in the announcement channel (declared, the customer update, resolved)...
    announced = [m["text"] for m in slack.messages["C0ANNOUNCE"]]
    assert sorted(t.split(" ", 1)[0] for t in announced) == [
        ":loudspeaker:",
        ":rotating_light:",
        ":white_check_mark:",
    ]
    # ...the three role briefings, and the reply to the declaring command.
    assert sent_ok(room, "chat.postEphemeral") == 3
    assert sum("is open in" in r["text"] for r in slack.responses) == 1
    assert all(m.posted_at for m in owed(room))
    # Every post took its channel's turn (Slack wants about one a second per channel).
    paced = room.services.metrics.registry.get_sample_value("warroom_slack_post_wait_seconds_count")
    assert paced is not None and paced >= len(in_room) + len(announced)
    # And Slack did fail along the way: the retries above were needed.
    assert retried(room) >= 3
