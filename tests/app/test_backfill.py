"""Back-fill: what a war room says while warroom is down (past Slack's retries) is read back
from Slack's history when it comes back, onto the timeline once, in ts order, marked
back-filled; Slack's late redeliveries then change nothing. Through the real server and the
fake Slack (which keeps every channel's history), on SQLite and PostgreSQL, and with two
`warroom serve` replicas on PostgreSQL, where only the leader reads."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import col, select

from bot.reminders.leader import LEADER
from storage.db import Database
from storage.models import Incident, TimelineEvent, WebhookDelivery
from tests.support.cli import warroom_cli
from tests.support.databases import migrated_pg_url
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.waiting import wait_until
from tests.support.warroom import SIGNING_SECRET, Warroom, WarroomFactory

MESSAGE_KINDS = ("message", "message_edited")
FILES = [{"id": "F0GRAPH", "name": "errors.png", "title": "error rate", "mimetype": "image/png"}]


async def dropped(room: Warroom, url: str, event: dict[str, Any], event_id: str) -> None:
    """Slack delivering `event` to the warroom that was at `url` and is down: the delivery
    fails, and once its retries fail too, Slack drops it."""
    signed = room.sign(room.event_body(event, event_id=event_id), "application/json")
    headers = {
        "Content-Type": signed.content_type,
        "X-Slack-Request-Timestamp": signed.timestamp,
        "X-Slack-Signature": signed.signature,
    }
    with pytest.raises(aiohttp.ClientConnectionError):
        await room.http.post(url, data=signed.body.encode(), headers=headers)


def messages_of(room: Warroom, number: int) -> list[TimelineEvent]:
    """The incident's message and edit entries, in timeline order."""
    return [e for e in room.timeline(number) if e.kind in MESSAGE_KINDS]


def seen(events: list[TimelineEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.kind, e.slack_ts, e.text, e.actor_id, e.thread_ts, bool(e.data.get("backfilled")))
        for e in events
    ]


async def metric(room: Warroom, name: str) -> float:
    async with room.http.get(room.server.make_url("/metrics")) as response:
        text = await response.text()
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


async def test_what_a_war_room_said_while_warroom_was_down_is_back_filled_once(
    make_warroom: WarroomFactory, slack: FakeSlack, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await room.declare("Checkout down sev2")
    channel = incident.channel_id or ""
    # Heard live before the outage: a message and a thread's parent.
    before = slack.user_says(channel, "U0BO", "checking the dashboards")
    parent = slack.user_says(channel, "U0CY", "is the db failing over?")
    for n, event in enumerate((before, parent)):
        assert (await room.event(event, event_id=f"EvLIVE{n}")).status == 200
    await room.settle()

    url = room.url
    await room.server.close()  # warroom is down; Slack keeps the channel's history
    said = slack.user_says(channel, "U0ANA", "rolling back 4.2.1")
    reply = slack.user_says(channel, "U0BO", "yes, primary is gone", thread_ts=parent["ts"])
    shared = slack.user_says(channel, "U0CY", "error graph", files=FILES)
    edit = slack.user_edits(channel, before["ts"], "checking the dashboards: 500s at 40%")
    missed = {"EvSAID": said, "EvREPLY": reply, "EvSHARED": shared, "EvEDIT": edit}
    for event_id, event in missed.items():
        await dropped(room, url, event, event_id)

    again = await make_warroom(database_url=database_url)
    await again.services.backfill.wait()
    await again.settle()
    expected = [
        ("message", before["ts"], "checking the dashboards", "U0BO", None, False),
        ("message", parent["ts"], "is the db failing over?", "U0CY", None, False),
        ("message", said["ts"], "rolling back 4.2.1", "U0ANA", None, True),
        ("message", reply["ts"], "yes, primary is gone", "U0BO", parent["ts"], True),
        ("message", shared["ts"], "error graph", "U0CY", None, True),
        (
            "message_edited",
            before["ts"],
            "checking the dashboards: 500s at 40%",
            "U0BO",
            None,
            True,
        ),
    ]
    events = messages_of(again, incident.number)
    assert seen(events) == expected
    by_ts = {(e.kind, e.slack_ts): e for e in events}
    assert by_ts["message", shared["ts"]].data["files"] == [
        {"id": "F0GRAPH", "name": "errors.png", "title": "error rate", "mimetype": "image/png"}
    ]
    assert by_ts["message", shared["ts"]].data["subtype"] == "file_share"
    assert by_ts["message_edited", before["ts"]].data["previous_text"] == "checking the dashboards"
    # Each at its own Slack ts, and named as live messages are.
    assert by_ts["message", said["ts"]].at.timestamp() == pytest.approx(float(said["ts"]))
    assert by_ts["message", said["ts"]].actor_name == "Ana"
    # warroom's own posts (the header, the announcement) are in the history, not back-filled.
    assert all(e.actor_id != "UBOT0001" for e in events)
    assert await metric(again, 'warroom_backfilled_events_total{kind="message"}') == 3
    assert await metric(again, 'warroom_backfilled_events_total{kind="message_edited"}') == 1

    # Slack's late retries (same event ids), and the same messages under fresh ids: no change.
    for event_id, event in missed.items():
        assert (await again.event(event, event_id=event_id, retry=3)).status == 200
        assert (await again.event(event)).status == 200
    await again.settle()
    assert seen(messages_of(again, incident.number)) == expected

    # A second run (the next election) finds nothing more to record.
    [report] = await again.services.backfill.backfill()
    assert (report.messages_recorded, report.edits_recorded) == (0, 0)
    assert seen(messages_of(again, incident.number)) == expected


async def test_a_live_event_racing_the_back_fill_makes_one_entry(
    make_warroom: WarroomFactory, slack: FakeSlack, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await room.declare("Checkout down sev2")
    channel = incident.channel_id or ""
    await room.server.close()
    said = [slack.user_says(channel, "U0ANA", f"step {n}") for n in range(20)]

    again = await make_warroom(database_url=database_url)
    # Slack's retries arrive while the back-fill records the same messages.
    replies = await asyncio.gather(
        *(again.event(event, event_id=f"EvRACE{n}", retry=2) for n, event in enumerate(said))
    )
    assert {r.status for r in replies} == {200}
    await again.services.backfill.wait()
    await again.settle()
    recorded = [e.slack_ts for e in messages_of(again, incident.number)]
    assert recorded == [event["ts"] for event in said]


async def test_a_late_retry_recorded_first_does_not_move_the_start_past_the_gap(
    make_warroom: WarroomFactory, slack: FakeSlack, sqlite_url: str
) -> None:
    room = await make_warroom(database_url=sqlite_url)
    incident = await room.declare("Checkout down sev2")
    channel = incident.channel_id or ""
    now = time.time()
    # Down for half an hour: the last message heard, one lost 20 minutes before the restart
    # (beyond the overlap), and one a minute before it that Slack still retries.
    heard = slack.user_says(channel, "U0BO", "heard", ts=f"{now - 1800:.6f}")
    assert (await room.event(heard)).status == 200
    await room.settle()
    await room.server.close()
    lost = slack.user_says(channel, "U0ANA", "lost", ts=f"{now - 1200:.6f}")
    retried = slack.user_says(channel, "U0CY", "retried", ts=f"{now - 60:.6f}")

    again = await make_warroom(database_url=sqlite_url)
    assert (await again.event(retried, event_id="EvRETRIED", retry=3)).status == 200
    await again.services.backfill.wait()
    await again.settle()
    recorded = [(e.slack_ts, e.text) for e in messages_of(again, incident.number)]
    assert recorded == [(heard["ts"], "heard"), (lost["ts"], "lost"), (retried["ts"], "retried")]


async def test_a_429_from_conversations_history_is_waited_out(
    make_warroom: WarroomFactory, slack: FakeSlack, sqlite_url: str
) -> None:
    room = await make_warroom(database_url=sqlite_url)
    incident = await room.declare("Checkout down sev2")
    await room.server.close()
    said = slack.user_says(incident.channel_id or "", "U0ANA", "rolling back")
    slack.fail("conversations.history", status=429, retry_after=1)

    again = await make_warroom(database_url=sqlite_url)
    await again.services.backfill.wait()
    first, second = slack.calls_to("conversations.history")
    assert second.at - first.at >= 1.0, "asked again before Slack's Retry-After"
    assert [e.slack_ts for e in messages_of(again, incident.number)] == [said["ts"]]
    limited = (
        'warroom_slack_web_api_calls_total{method="conversations.history",outcome="ratelimited"}'
    )
    assert await metric(again, limited) == 1


async def test_a_retry_after_too_long_for_the_client_is_waited_out_by_the_back_fill(
    make_warroom: WarroomFactory, slack: FakeSlack, sqlite_url: str
) -> None:
    room = await make_warroom(database_url=sqlite_url)
    incident = await room.declare("Checkout down sev2")
    said = slack.user_says(incident.channel_id or "", "U0ANA", "rolling back")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    room.services.gateway.sleep = sleep
    slack.fail("conversations.history", status=429, retry_after=90)
    [report] = await room.services.backfill.backfill(number=incident.number)
    assert waits == [90], "Slack's minute and a half waited out, not given up on"
    assert report.messages_recorded == 1
    assert [e.slack_ts for e in messages_of(room, incident.number)] == [said["ts"]]

    # Still limited after the waits: the room's back-fill fails with Slack's word, nothing else.
    slack.fail("conversations.history", status=429, retry_after=90, times=4)
    [report] = await room.services.backfill.backfill(number=incident.number)
    assert report.error == "Slack said `ratelimited`"
    assert report.summary() == "INC-1: back-fill failed (Slack said `ratelimited`)"


async def test_history_is_read_page_by_page_and_threads_with_new_replies(
    make_warroom: WarroomFactory, slack: FakeSlack, sqlite_url: str
) -> None:
    room = await make_warroom(database_url=sqlite_url)
    incident = await room.declare("Checkout down sev2")
    channel = incident.channel_id or ""
    parent = slack.user_says(channel, "U0CY", "thread for the db")
    assert (await room.event(parent)).status == 200
    await room.settle()
    # Read with pages of 3: every page is asked for in turn.
    page = room.services.gateway.channel_history
    said = [slack.user_says(channel, "U0ANA", f"line {n}") for n in range(7)]
    replies = [
        slack.user_says(channel, "U0BO", f"db {n}", thread_ts=parent["ts"]) for n in range(4)
    ]
    history = await page(channel, oldest=said[0]["ts"], limit=3)
    assert [m["ts"] for m in history] == [e["ts"] for e in reversed(said)]
    assert len(slack.calls_to("conversations.history")) == 3
    thread = await room.services.gateway.thread_replies(
        channel, parent["ts"], oldest=replies[1]["ts"], limit=2
    )
    assert [m["ts"] for m in thread] == [parent["ts"]] + [r["ts"] for r in replies[1:]]

    [report] = await room.services.backfill.backfill(number=incident.number)
    await room.settle()
    assert (report.messages_recorded, report.threads_read) == (11, 1)
    recorded = [e.slack_ts for e in messages_of(room, incident.number)]
    assert sorted(recorded) == sorted([parent["ts"]] + [e["ts"] for e in said + replies])
    assert len(recorded) == len(set(recorded))


# -- the command ------------------------------------------------------------------------


def cli_env(slack: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.api_url}


async def test_warroom_backfill_records_what_the_server_missed(
    make_warroom: WarroomFactory, slack: FakeSlack, sqlite_url: str, tmp_path: Path
) -> None:
    room = await make_warroom(database_url=sqlite_url)
    first = await room.declare("Checkout down sev2")
    second = await room.declare("Search slow sev3")
    # Said while the server is up but the events never came (a lost subscription, say).
    early = slack.user_says(first.channel_id or "", "U0ANA", "rolling back")
    late = slack.user_says(second.channel_id or "", "U0BO", "reindexing")

    # What the command records owes the configured webhooks, as the server's writes do.
    config = tmp_path / "warroom.yml"
    config.write_text(
        "webhooks:\n  - {url: 'https://hooks.example.com/in', secret: s, events: [message]}\n"
    )
    env = {**cli_env(slack), "WARROOM_CONFIG": str(config)}
    run = await warroom_cli("backfill", "INC-1", database_url=sqlite_url, cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    with room.services.db.reading() as session:
        [owed] = session.exec(select(WebhookDelivery)).all()
    assert owed.kind == "message" and owed.payload["entry"]["data"]["backfilled"] is True
    assert re.fullmatch(
        r"INC-1: read 1 messages and 0 threads since \S+ \S+Z; recorded 1 messages and 0 edits\n",
        run.stdout,
    ), run.stdout
    assert [e.slack_ts for e in messages_of(room, 1)] == [early["ts"]]
    assert messages_of(room, 1)[0].data["backfilled"] is True
    assert messages_of(room, 2) == [], "only the incident named"

    run = await warroom_cli(
        "backfill", "--since", "2h", database_url=sqlite_url, cwd=tmp_path, env=cli_env(slack)
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 2 and "recorded 1 messages" in run.stdout, run.stdout
    assert [e.slack_ts for e in messages_of(room, 2)] == [late["ts"]]
    assert [e.actor_name for e in messages_of(room, 2)] == ["Bo"]
    assert [e.slack_ts for e in messages_of(room, 1)] == [early["ts"]], "not twice"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("INC-x",), "warroom: 'INC-x' is not an incident id; write it like INC-7\n"),
        (("99999999999",), "warroom: '99999999999' is not an incident id; write it like INC-7\n"),
        (("INC-9",), "warroom: INC-9 does not exist\n"),
        (
            ("--since", "soon"),
            "warroom: --since: 'soon' is not a duration like 45s, 30m, 2h or 5d\n",
        ),
        (("--since", "0m"), "warroom: --since: '0m' is not a positive duration\n"),
    ],
)
async def test_warroom_backfill_refuses_bad_input_in_one_line(
    slack: FakeSlack, sqlite_url: str, tmp_path: Path, args: tuple[str, ...], error: str
) -> None:
    run = await warroom_cli(
        "backfill", *args, database_url=sqlite_url, cwd=tmp_path, env=cli_env(slack)
    )
    assert (run.returncode, run.stdout, run.stderr) == (2, "", error)
    assert slack.calls_to("conversations.history") == []


async def test_warroom_backfill_needs_the_bot_token(sqlite_url: str, tmp_path: Path) -> None:
    run = await warroom_cli("backfill", database_url=sqlite_url, cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr == (
        "warroom: SLACK_BOT_TOKEN is not set; put it in the environment or .env\n"
    )


# -- two replicas on PostgreSQL ----------------------------------------------------------


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from migrated_pg_url("WARROOM_TEST_DATABASE_URL is not set: replicas need PostgreSQL")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def event_body(event: dict[str, Any], event_id: str) -> str:
    """An Events API body for `event`, as Slack sends it (and sends it again)."""
    return json.dumps(
        {
            "token": "x",
            "team_id": "T0TEST",
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT0001", "is_bot": True}],
            "event": event,
        }
    )


def recorded(db: Database, number: int) -> list[TimelineEvent]:
    with db.reading() as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        return list(
            session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.incident_id == incident.id)
                .where(col(TimelineEvent.kind).in_(MESSAGE_KINDS))
                .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            ).all()
        )


async def test_two_replicas_only_the_leader_back_fills_and_nothing_doubles(
    slack: FakeSlack,
    tmp_path: Path,
    pg_url: str,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": pg_url,
        "WARROOM_ELECTION_EVERY": "0.5",
    }
    db = Database(pg_url)
    try:
        first = await serve(tmp_path, env, "first")
        processes.append(first)
        reply = await first.command(http, slack, "declare Checkout down sev2")
        assert "*INC-1*" in reply, reply
        await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=10)
        with db.reading() as session:
            channel = session.exec(select(Incident)).one().channel_id or ""
        before = slack.user_says(channel, "U0BO", "checking the dashboards")
        status, _ = await first.post_signed(
            http, event_body(before, "EvBEFORE"), "application/json"
        )
        assert status == 200
        await first.kill()  # every replica down

        said = [slack.user_says(channel, ("U0ANA", "U0BO")[n % 2], f"step {n}") for n in range(6)]
        replies = [
            slack.user_says(channel, "U0CY", f"re {n}", thread_ts=said[0]["ts"]) for n in range(3)
        ]
        edit = slack.user_edits(channel, before["ts"], "checking the dashboards: all red")
        missed = said + replies
        expected = [("message", before["ts"])]
        expected += sorted((("message", m["ts"]) for m in missed), key=lambda k: float(k[1]))
        expected.append(("message_edited", before["ts"]))

        replicas = []
        for name in ("a", "b"):
            replicas.append(await serve(tmp_path, env, name))
            processes.append(replicas[-1])
        await wait_until(lambda: len(recorded(db, 1)) >= len(expected), 20, "the back-fill")

        # Slack's retries of everything, to both replicas at once.
        async def redeliver(replica: Process, event: dict[str, Any], event_id: str) -> int:
            status, _ = await replica.post_signed(
                http,
                event_body(event, event_id),
                "application/json",
                {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
            )
            return status

        statuses = await asyncio.gather(
            *(
                redeliver(replica, event, f"EvMISS{n}")
                for n, event in enumerate([*missed, edit])
                for replica in replicas
            )
        )
        assert set(statuses) == {200}
        events = recorded(db, 1)
        assert [(e.kind, e.slack_ts) for e in events] == expected
        assert [bool(e.data.get("backfilled")) for e in events] == [False] + [True] * (
            len(expected) - 1
        )

        # Only the leader read Slack's history.
        roles = []
        for replica in replicas:
            status, body = await replica.get_json(http, "/readyz")
            assert status == 200, body
            roles.append(body["role"])
        assert roles.count(LEADER) == 1
        leader = replicas[roles.index(LEADER)]
        follower = replicas[1 - roles.index(LEADER)]
        assert "back-fill INC-1: read" in leader.output()
        assert "back-fill INC-1" not in follower.output()
    finally:
        db.close()
