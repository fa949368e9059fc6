"""The message fast path (bot/slack/fast_path.py) through the real server: a person's plain
message in a war room already seen is recorded and acked without Bolt, once, committed before
its 200; a request it does not handle goes to Bolt and comes out exactly as before.

The first message in a war room goes through Bolt (which learns the room); the tests send one
first, then count what the fast path answered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.signature import SignatureVerifier
from sqlmodel import select

from bot.app import FAST_PATH
from bot.slack.fast_path import MessageFastPath
from storage.db import Database
from storage.models import Incident, TimelineEvent
from tests.support.databases import (
    direct_backends,
    migrated_pg_url,
    opened_direct_backends,
    timeline_writes_failing,
)
from tests.support.warroom import Warroom, WarroomFactory

# -- helpers ------------------------------------------------------------------------------


def message(channel: str | None, n: int, **changes: Any) -> dict[str, Any]:
    """The n-th distinct plain message from U0BO in `channel`."""
    assert channel, "no channel: was the war room opened?"
    ts = f"17000003{n:02d}.000100"
    return {
        "type": "message",
        "channel": channel,
        "user": "U0BO",
        "text": f"update {n}",
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
        **changes,
    }


def fast_path(warroom: Warroom) -> MessageFastPath:
    return warroom.server.app[FAST_PATH]


def messages(warroom: Warroom, incident: Incident) -> list[TimelineEvent]:
    return [e for e in warroom.timeline(incident.number) if e.kind == "message"]


async def deliver(warroom: Warroom, event: dict[str, Any], **kwargs: Any) -> None:
    reply = await warroom.event(event, **kwargs)
    assert reply.status == 200, f"answered {reply.status} {reply.text!r}: Slack would retry"


async def warmed(warroom: Warroom) -> Incident:
    """A declared war room whose first message (through Bolt) has been recorded."""
    incident = await warroom.declare()
    await deliver(warroom, message(incident.channel_id, 0))
    assert fast_path(warroom).answered == 0, "the first message of a room is Bolt's"
    return incident


def requests_counted(text: str, kind: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "warroom_slack_requests_total" and sample.labels == {
                "outcome": "ok",
                "type": kind,
            }:
                return sample.value
    return 0.0


# -- what the fast path records ---------------------------------------------------------------


async def test_messages_are_recorded_once_each_on_every_database(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    """Overlapping deliveries, Slack's retries and the same message under a new event id: one
    entry per message, named, each committed before its 200, all answered by the fast path."""
    warroom = await make_warroom(database_url=database_url)
    incident = await warroom.declare()
    await deliver(warroom, message(incident.channel_id, 0))
    sent = [message(incident.channel_id, n) for n in range(1, 21)]

    replies = await asyncio.gather(
        *(
            warroom.event(event, event_id=f"Ev0FAST{n}", retry=retry)
            for n, event in enumerate(sent)
            for retry in (None, 1)
        ),
        *(warroom.event(event, event_id=f"Ev0OTHER{n}") for n, event in enumerate(sent[:5])),
    )
    assert [r.status for r in replies] == [200] * 45
    assert [r.text for r in replies] == [""] * 45
    assert fast_path(warroom).answered == 45

    # Committed before the 200s: another connection sees every one of them.
    other = Database(warroom.services.db.url)
    try:
        with other.reading() as session:
            committed = session.exec(
                select(TimelineEvent.slack_ts)
                .where(TimelineEvent.incident_id == incident.id)
                .where(TimelineEvent.kind == "message")
            ).all()
    finally:
        other.close()
    assert sorted(str(ts) for ts in committed) == sorted(
        [message(incident.channel_id, 0)["ts"], *(e["ts"] for e in sent)]
    )

    await warroom.settle()
    recorded = messages(warroom, incident)
    assert len(recorded) == 21
    assert {(e.actor_id, e.actor_name) for e in recorded} == {("U0BO", "Bo")}
    assert {e.text for e in recorded} == {f"update {n}" for n in range(21)}


async def test_a_thread_reply_keeps_its_thread(warroom: Warroom) -> None:
    incident = await warmed(warroom)
    parent = message(incident.channel_id, 0)["ts"]
    await deliver(warroom, message(incident.channel_id, 1, thread_ts=parent))

    assert fast_path(warroom).answered == 1
    reply = next(e for e in messages(warroom, incident) if e.text == "update 1")
    assert reply.thread_ts == parent


async def test_its_answer_and_metrics_are_bolt_s(warroom: Warroom) -> None:
    """Same status, body and content type as Bolt's ack, and counted as an event:message."""
    incident = await warmed(warroom)

    async def answer(event: dict[str, Any]) -> tuple[int, str, str]:
        body = warroom.event_body(event)
        stamp = str(int(time.time()))
        signature = warroom.verifier.generate_signature(timestamp=stamp, body=body)
        assert signature is not None
        headers = {
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature,
        }
        async with warroom.http.post(warroom.url, data=body.encode(), headers=headers) as reply:
            return reply.status, reply.headers.get("Content-Type", ""), await reply.text()

    by_bolt = await answer(message("C0GENERAL", 1))
    assert fast_path(warroom).answered == 0
    by_fast_path = await answer(message(incident.channel_id, 2))
    assert fast_path(warroom).answered == 1
    assert by_fast_path == by_bolt

    async with warroom.http.get(warroom.server.make_url("/metrics")) as reply:
        metrics = await reply.text()
    assert requests_counted(metrics, "event:message") == 3


async def test_a_write_that_fails_is_answered_500_then_its_retry_recorded_once(
    warroom: Warroom,
) -> None:
    incident = await warmed(warroom)
    event = message(incident.channel_id, 1)
    with timeline_writes_failing(warroom.services.db.url):
        reply = await warroom.event(event, event_id="Ev0FAILS")
        assert reply.status == 500, "Slack must hear about a failed write, or it will not retry"
        assert reply.text == "" and "Traceback" not in reply.text
        assert fast_path(warroom).answered == 1

    await deliver(warroom, event, event_id="Ev0FAILS", retry=1)
    assert [e.text for e in messages(warroom, incident)] == ["update 0", "update 1"]


async def test_on_postgresql_messages_survive_a_restart_under_the_loop_s_connections(
    make_warroom: WarroomFactory,
) -> None:
    """On PostgreSQL the fast path's writes go over the event loop's own connections: when a
    restart drops them, the next message is still answered 200 and recorded once, on new ones."""
    for url in migrated_pg_url():
        warroom = await make_warroom(database_url=url)
        incident = await warmed(warroom)
        db = warroom.services.db
        await deliver(warroom, message(incident.channel_id, 1))
        before = await opened_direct_backends(db)
        with db.engine.connect() as admin:
            for pid in before:
                admin.exec_driver_sql("SELECT pg_terminate_backend(%(pid)s, 60000)", {"pid": pid})

        await deliver(warroom, message(incident.channel_id, 2))
        assert fast_path(warroom).answered == 2
        after = direct_backends(db)
        assert after and not after & before, "the write did not find its connection dropped"
        await warroom.settle()
        assert [e.text for e in messages(warroom, incident)] == ["update 0", "update 1", "update 2"]


# -- what it refuses, and what it leaves to Bolt ------------------------------------------------


@pytest.mark.parametrize("how", ["wrong-signature", "other-secret", "stale", "body-changed"])
async def test_a_badly_signed_message_is_refused_and_not_recorded(
    warroom: Warroom, how: str
) -> None:
    incident = await warmed(warroom)
    body = warroom.event_body(message(incident.channel_id, 1))
    now = int(time.time())
    stamp = str(now - 600 if how == "stale" else now)
    secret = "not-the-signing-secret" if how == "other-secret" else "test-signing-secret"
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    assert signature is not None
    if how == "wrong-signature":
        signature = "v0=" + "0" * 64
    sent = body.replace("update 1", "update 2") if how == "body-changed" else body
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    async with warroom.http.post(warroom.url, data=sent.encode(), headers=headers) as reply:
        assert reply.status == 401
    await warroom.settle()

    assert fast_path(warroom).answered == 0
    assert [e.text for e in messages(warroom, incident)] == ["update 0"]


async def test_what_it_does_not_handle_goes_to_bolt_as_before(warroom: Warroom) -> None:
    incident = await warmed(warroom)
    channel = incident.channel_id
    first_ts = message(channel, 0)["ts"]

    # An edit and a deletion of the first message, a file share, another app's post,
    # warroom's own posts (as its bot user, as a bot message), a message elsewhere.
    await deliver(
        warroom,
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": channel,
            "ts": "1700000400.000100",
            "event_ts": "1700000400.000100",
            "message": {
                "type": "message",
                "user": "U0BO",
                "text": "update 0, edited",
                "ts": first_ts,
                "edited": {"user": "U0BO", "ts": "1700000400.000000"},
            },
            "previous_message": {"type": "message", "user": "U0BO", "text": "update 0"},
        },
    )
    await deliver(
        warroom,
        message(channel, 5, subtype="file_share", files=[{"id": "F0ONE", "name": "graph.png"}]),
    )
    await deliver(
        warroom,
        message(channel, 6, subtype="bot_message", bot_id="B0OTHER", username="Grafana", user=None),
    )
    await deliver(warroom, message(channel, 7, user="UBOT0001", bot_id="B0BOT"))
    await deliver(warroom, message(channel, 8, user="UBOT0001"))
    await deliver(warroom, message("C0GENERAL", 9))
    await deliver(
        warroom,
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": channel,
            "ts": "1700000500.000100",
            "deleted_ts": message(channel, 5)["ts"],
            "previous_message": {"type": "message", "user": "U0BO", "text": "update 5"},
        },
    )
    await warroom.settle()

    assert fast_path(warroom).answered == 0
    kinds = [(e.kind, e.text) for e in warroom.timeline(incident.number) if e.actor_id]
    assert ("message_edited", "update 0, edited") in kinds
    assert ("message", "update 5") in kinds
    assert ("message", "update 6") in kinds
    assert ("message_deleted", None) in kinds
    recorded = {e.text for e in messages(warroom, incident)}
    assert recorded == {"update 0", "update 5", "update 6"}, "own posts and elsewhere: not kept"


async def test_an_unreadable_message_is_left_to_bolt(warroom: Warroom) -> None:
    """A message whose ts is not a time: the fast path does not guess; Bolt's path answers it
    as it always has (a 500 with nothing recorded, for Slack to resend)."""
    incident = await warmed(warroom)
    reply = await warroom.event(message(incident.channel_id, 1, ts="not-a-ts"))

    assert fast_path(warroom).answered == 0
    assert reply.status == 500 and "Traceback" not in reply.text
    assert [e.text for e in messages(warroom, incident)] == ["update 0"]
