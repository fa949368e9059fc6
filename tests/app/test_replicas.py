"""Replicas: several real `warroom serve` processes on one PostgreSQL schema and one fake Slack.
One of them runs the scheduler; when it is killed another takes over within seconds, and no
reminder is lost or doubled. Any replica takes any request: incident numbers stay sequential,
a message event redelivered to another replica lands once, a reminder is posted once. (The
claim that keeps an owed message to one sender: tests/storage/test_outbox_claims.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg
import pytest
import yaml
from sqlmodel import Session, col, select

from bot.clock import utc_now
from bot.outbox.sender import OutboxSender
from bot.reminders.leader import LEADER
from bot.reminders.scheduler import Clocks
from storage.db import Database
from storage.election import election_key, lock_conninfo
from storage.models import Counter, Incident, OutboxMessage, Reminder, TimelineEvent
from tests.support.databases import migrated_pg_url
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.waiting import wait_until
from tests.support.warroom import SIGNING_SECRET, WarroomFactory

UPDATE = ":hourglass:"
EVERY = timedelta(seconds=4)
# Followers try for the lock this often; the failover test measures against it.
ELECTION_EVERY = 0.5


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A migrated, empty PostgreSQL schema (replicas need PostgreSQL)."""
    yield from migrated_pg_url("WARROOM_TEST_DATABASE_URL is not set: replicas need PostgreSQL")


@pytest.fixture
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url)
    yield database
    database.close()


@pytest.fixture
def env(pg_url: str, slack: FakeSlack, tmp_path: Path) -> dict[str, str]:
    """What every replica is started with: the same database, Slack and config."""
    config = tmp_path / "warroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "announce_channel": "C0ANNOUNCE",
                "severities": {"sev2": {"update_every": f"{int(EVERY.total_seconds())}s"}},
                "postmortem_remind_every": None,
                # One person declares a dozen incidents here, on purpose.
                "declare_limit": None,
            }
        ),
        encoding="utf-8",
    )
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": pg_url,
        "WARROOM_CONFIG": str(config),
        "WARROOM_ELECTION_EVERY": str(ELECTION_EVERY),
    }


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start_replicas(
    tmp_path: Path, env: dict[str, str], processes: list[Process], count: int
) -> list[Process]:
    started = []
    for n in range(count):
        process = await serve(tmp_path, env, f"replica{len(processes) + 1}-{n}")
        processes.append(process)
        started.append(process)
    return started


async def roles(http: aiohttp.ClientSession, replicas: list[Process]) -> list[str]:
    """Each replica's role as /readyz reports it; every replica must be ready."""
    found = []
    for replica in replicas:
        status, body = await replica.get_json(http, "/readyz")
        assert status == 200 and body["ready"], body
        found.append(body["role"])
    return found


async def the_leader(
    http: aiohttp.ClientSession, replicas: list[Process], within: float = 10
) -> Process:
    """The one replica that leads, once exactly one does."""
    deadline = time.monotonic() + within
    while True:
        found = await roles(http, replicas)
        if found.count(LEADER) == 1:
            return replicas[found.index(LEADER)]
        assert time.monotonic() < deadline, f"no single leader: {found}"
        await asyncio.sleep(0.05)


async def metric(http: aiohttp.ClientSession, replica: Process, name: str) -> float:
    async with http.get(f"{replica.base}/metrics") as response:
        text = await response.text()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match[1])


def incidents(db: Database) -> list[Incident]:
    with db.reading() as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def reminders(db: Database) -> list[TimelineEvent]:
    with db.reading() as session:
        return list(
            session.exec(
                select(TimelineEvent)
                .where(TimelineEvent.kind == "reminder")
                .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            ).all()
        )


def due(event: TimelineEvent) -> datetime:
    return datetime.fromisoformat(event.data["due_at"])


def posted(slack: FakeSlack, channel_id: str) -> list[str]:
    return [m["text"] for m in slack.messages.get(channel_id, []) if m["text"].startswith(UPDATE)]


# -- the scheduler fails over ------------------------------------------------------------


async def test_the_scheduler_fails_over_when_its_replica_is_killed(
    slack: FakeSlack,
    tmp_path: Path,
    env: dict[str, str],
    db: Database,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    replicas = await start_replicas(tmp_path, env, processes, 3)
    leader = await the_leader(http, replicas)
    assert await metric(http, leader, "warroom_scheduler_leader") == 1
    followers = [r for r in replicas if r is not leader]
    assert [await metric(http, r, "warroom_scheduler_leader") for r in followers] == [0, 0]
    assert [await metric(http, r, "warroom_scheduler_running") for r in followers] == [0, 0]

    # Declared on a follower: the leader's scheduler learns of the clock from the row.
    reply = await followers[0].command(http, slack, "declare Checkout down sev2")
    assert "*INC-1*" in reply, reply
    await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=10)
    [declared] = incidents(db)
    channel = declared.channel_id or ""
    first_due = declared.declared_at + EVERY

    # The leader dies before the reminder is due, without a word.
    await leader.kill()
    killed_at = time.monotonic()
    assert datetime.now(UTC) < first_due, "too slow: the reminder came due before the kill"
    successor = await the_leader(http, followers)
    takeover = time.monotonic() - killed_at
    print(f"scheduler takeover after SIGKILL: {takeover:.2f}s (election every {ELECTION_EVERY}s)")
    assert takeover < 5, f"takeover took {takeover:.1f}s"

    await slack.wait_for(lambda: len(posted(slack, channel)) >= 1, timeout=10)
    [fired] = reminders(db)
    assert due(fired) == first_due, "the reminder fired at its own time, once"
    assert fired.data["late_seconds"] < 2

    # Now a leader dies and nobody can take over for a while: the test holds the election
    # lock itself (queued behind the leader's, granted the moment the leader is gone).
    second_due = first_due + EVERY
    blocker = await psycopg.AsyncConnection.connect(lock_conninfo(db.url), autocommit=True)
    try:
        cursor = await blocker.execute("SELECT current_database(), current_schema()")
        row = await cursor.fetchone()
        assert row is not None
        key = election_key(row[0], row[1])
        waiting = asyncio.get_running_loop().create_task(
            blocker.execute("SELECT pg_advisory_lock(%s)", (key,))
        )
        await asyncio.sleep(0.2)
        assert not waiting.done(), "the successor should hold the lock"
        await successor.kill()
        await asyncio.wait_for(waiting, timeout=5)
        last = next(r for r in followers if r is not successor)
        assert await roles(http, [last]) == ["follower"]
        # Down past two due times; neither may fire while nobody leads.
        gap = (second_due + EVERY - datetime.now(UTC)).total_seconds() + 0.3
        await asyncio.sleep(max(gap, 0))
        assert len(posted(slack, channel)) == 1 and len(reminders(db)) == 1
    finally:
        await blocker.close()  # the lock goes with the session

    # The last replica takes over and fires the missed reminder once, late; then one interval
    # at a time from then on, no burst to catch up.
    await slack.wait_for(lambda: len(posted(slack, channel)) >= 2, timeout=5)
    assert await roles(http, [last]) == [LEADER]
    late = reminders(db)[1]
    assert due(late) == second_due, "the first missed due time fires, once"
    assert late.data["late_seconds"] > EVERY.total_seconds()
    await slack.wait_for(lambda: len(posted(slack, channel)) >= 3, timeout=EVERY.seconds + 5)
    following = reminders(db)[2]
    assert due(following) == late.at + EVERY

    # Every reminder on the timeline reached Slack once, and Slack has no other.
    events = reminders(db)
    texts = posted(slack, channel)
    assert sorted(e.text or "" for e in events) == sorted(texts)
    assert len(set(texts)) == len(texts)
    assert len({due(e) for e in events}) == len(events), "a due time fired twice"

    def owed() -> list[OutboxMessage]:
        with db.reading() as session:
            unposted = select(OutboxMessage).where(col(OutboxMessage.posted_at).is_(None))
            return list(session.exec(unposted))

    # The replica marks a post done once Slack has answered it: a moment after Slack saw it.
    await wait_until(lambda: not owed(), 10, "the outbox to record every post as posted")


async def test_a_leader_that_loses_its_lock_connection_stops_scheduling(
    slack: FakeSlack,
    tmp_path: Path,
    env: dict[str, str],
    db: Database,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    """Fencing: the database ends the leader's lock session (as a restart would); the leader
    steps down, is elected again, and the clock goes on without a doubled reminder."""
    [replica] = await start_replicas(tmp_path, env, processes, 1)
    assert await roles(http, [replica]) == [LEADER]
    reply = await replica.command(http, slack, "declare Search is slow sev2")
    assert "*INC-1*" in reply, reply

    with db.engine.connect() as connection:
        database, schema = connection.exec_driver_sql(
            "SELECT current_database(), current_schema()"
        ).one()
        # An advisory lock on a bigint key shows in pg_locks as its high and low halves.
        ended = connection.exec_driver_sql(
            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND ((l.classid::bigint << 32) | l.objid::bigint) = %(key)s",
            {"key": election_key(database, schema)},
        ).all()
    assert ended == [(True,)], "the replica's lock session was not found"

    await wait_until(lambda: "stepping down" in replica.output(), 10, "the leader to step down")
    await wait_until(lambda: replica.output().count("this replica leads") == 2, 10, "re-election")
    [declared] = incidents(db)
    channel = declared.channel_id or ""
    await slack.wait_for(lambda: len(posted(slack, channel)) >= 2, timeout=2 * EVERY.seconds + 5)
    events = reminders(db)
    assert [due(e) for e in events[:2]] == [
        declared.declared_at + EVERY,
        declared.declared_at + 2 * EVERY,
    ]
    texts = posted(slack, channel)
    assert len(set(texts)) == len(texts)


# -- any replica takes any request ---------------------------------------------------------


async def test_incident_numbers_stay_sequential_across_replicas(
    slack: FakeSlack,
    tmp_path: Path,
    env: dict[str, str],
    db: Database,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    replicas = await start_replicas(tmp_path, env, processes, 3)
    count = 12
    replies = await asyncio.gather(
        *(
            replicas[n % len(replicas)].command(http, slack, f"declare Outage {n} sev4")
            for n in range(count)
        )
    )
    announced = sorted(int(m[1]) for r in replies if (m := re.search(r"\*INC-(\d+)\*", r)))
    assert announced == list(range(1, count + 1)), replies
    assert [i.number for i in incidents(db)] == list(range(1, count + 1))
    with db.reading() as session:
        assert session.get_one(Counter, "incident").value == count


def message_event(channel: str, ts: str, text: str, event_id: str) -> str:
    return json.dumps(
        {
            "token": "x",
            "team_id": "T0TEST",
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT0001", "is_bot": True}],
            "event": {
                "type": "message",
                "channel": channel,
                "user": "U0BO",
                "text": text,
                "ts": ts,
            },
        }
    )


async def test_a_message_redelivered_to_another_replica_is_recorded_once(
    slack: FakeSlack,
    tmp_path: Path,
    env: dict[str, str],
    db: Database,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    first, second = await start_replicas(tmp_path, env, processes, 2)
    reply = await first.command(http, slack, "declare Checkout down sev2")
    assert "*INC-1*" in reply, reply
    await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=10)
    [declared] = incidents(db)
    channel = declared.channel_id or ""
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    # Slack did not hear the first answer in time and sends it again, to the other replica.
    body = message_event(channel, "1700000200.000100", "rolling back", "Ev0REDELIVER1")
    assert (await first.post_signed(http, body, "application/json"))[0] == 200
    assert (await second.post_signed(http, body, "application/json", retry))[0] == 200
    # And a retry that races the first delivery on two replicas at once.
    body = message_event(channel, "1700000201.000100", "db is back", "Ev0REDELIVER2")
    answers = await asyncio.gather(
        first.post_signed(http, body, "application/json"),
        second.post_signed(http, body, "application/json", retry),
    )
    assert [status for status, _ in answers] == [200, 200]

    with db.reading() as session:
        messages = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.kind == "message")
            .order_by(col(TimelineEvent.at))
        ).all()
    assert [(m.slack_ts, m.text) for m in messages] == [
        ("1700000200.000100", "rolling back"),
        ("1700000201.000100", "db is back"),
    ]


# -- two schedulers at once (a partitioned leader and its successor) ---------------------


async def test_two_schedulers_firing_one_reminder_post_it_once(
    make_warroom: WarroomFactory, pg_url: str
) -> None:
    """At worst two replicas run a scheduler for a moment. Both jobs for one reminder run, each
    in its own process's connections: the row lock and its seq let one through."""
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, "postmortem_remind_every": None},
        database_url=pg_url,
    )
    await room.services.clocks.stop()  # the jobs are run by hand below
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    with Session(room.services.db.engine) as session:
        row = session.exec(select(Reminder).where(Reminder.kind == "update")).one()
    await asyncio.sleep(max(0.0, (row.due_at - datetime.now(UTC)).total_seconds()))

    other_db = Database(pg_url)  # another replica: its own engine and connections
    gateway, config = room.services.gateway, room.services.clocks.config
    other = Clocks(
        db=other_db, outbox=OutboxSender(db=other_db, gateway=gateway, clock=utc_now), config=config
    )
    mine = Clocks(db=room.services.db, outbox=room.services.outbox, config=config)
    try:
        await asyncio.gather(*(c.fire(row.id or 0, row.seq) for c in (mine, other, mine, other)))
        # Posts leave after the jobs return: wait for those under way, in either process.
        await asyncio.gather(mine.outbox.drain(), other.outbox.drain())
    finally:
        other_db.close()
    assert mine.fired + other.fired == 1
    events = [e for e in room.timeline(1) if e.kind == "reminder"]
    assert len(events) == 1 and due(events[0]) == row.due_at
    assert posted(room.slack, channel) == [events[0].text]
