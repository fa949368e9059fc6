"""kill -9 in the middle of a burst of Slack events, against real `warroom serve` processes:
nothing acknowledged is lost, and after a restart and Slack's redeliveries every message is on
the timeline exactly once. And `warroom export` reads the SQLite file while the server writes."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest
from sqlmodel import select

from storage.db import Database
from storage.models import Incident, TimelineEvent
from tests.support.cli import warroom_cli
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.waiting import wait_until
from tests.support.warroom import SIGNING_SECRET

BURST = 300
IN_FLIGHT = 24  # requests open at once, as Slack sends a busy channel's events
RETRY = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}


def serve_env(slack: FakeSlack, database_url: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
    }


def message_ts(n: int) -> str:
    return f"{1700003000 + n}.000100"


def event_body(channel: str, n: int) -> str:
    """Message `n` of the burst, with the event id Slack keeps for its redeliveries."""
    return json.dumps(
        {
            "token": "x",
            "team_id": "T0TEST",
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": f"EvBURST{n:04d}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT0001", "is_bot": True}],
            "event": {
                "type": "message",
                "channel": channel,
                "user": ("U0ANA", "U0BO", "U0CY")[n % 3],
                "text": f"burst message {n}",
                "ts": message_ts(n),
                "event_ts": message_ts(n),
                "channel_type": "channel",
            },
        }
    )


async def send_burst(
    process: Process,
    http: aiohttp.ClientSession,
    channel: str,
    numbers: Iterable[int],
    acked: set[int],
    *,
    retry: bool = False,
) -> None:
    """Deliver events several at a time; `acked` gets those answered 200. A process killed
    under a request leaves it unanswered, as Slack would see it."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def deliver(n: int) -> None:
        async with gate:
            try:
                status, _ = await process.post_signed(
                    http, event_body(channel, n), "application/json", RETRY if retry else None
                )
            except (aiohttp.ClientError, TimeoutError):
                return
            if status == 200:
                acked.add(n)

    await asyncio.gather(*(deliver(n) for n in numbers))


def recorded_ts(db: Database) -> list[str]:
    """The Slack ts of every message on the timeline, duplicates included."""
    with db.reading() as session:
        rows = session.exec(select(TimelineEvent).where(TimelineEvent.kind == "message")).all()
        return [e.slack_ts or "" for e in rows]


async def declared_war_room(
    process: Process, http: aiohttp.ClientSession, slack: FakeSlack, db: Database
) -> str:
    reply = await process.command(http, slack, "declare Checkout down sev2")
    assert "*INC-1*" in reply, reply
    await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=10)
    with db.reading() as session:
        incident = session.exec(select(Incident)).one()
    assert incident.channel_id
    return incident.channel_id


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_kill_9_mid_burst_then_redeliveries_leave_every_message_once(
    slack: FakeSlack,
    tmp_path: Path,
    database_url: str,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    env = serve_env(slack, database_url)
    db = Database(database_url)
    try:
        first = await serve(tmp_path, env, "first")
        processes.append(first)
        channel = await declared_war_room(first, http, slack, db)

        acked: set[int] = set()
        burst = asyncio.create_task(send_burst(first, http, channel, range(BURST), acked))
        await wait_until(lambda: len(acked) >= BURST // 3, 30, "a third of the burst", every=0.005)
        await first.kill()
        await burst
        assert len(acked) < BURST, "the burst finished before the kill: nothing was tested"

        # Durable before acknowledged: every event answered 200 was already committed.
        before_restart = recorded_ts(db)
        assert {message_ts(n) for n in acked} <= set(before_restart)
        assert len(before_restart) == len(set(before_restart))

        second = await serve(tmp_path, env, "second")
        processes.append(second)
        # Slack redelivers what it got no 2xx for; here, all of it (a superset).
        redelivered: set[int] = set()
        await send_burst(second, http, channel, range(BURST), redelivered, retry=True)
        assert redelivered == set(range(BURST)), "a redelivery was not answered 200"

        recorded = recorded_ts(db)
        assert len(recorded) == BURST, f"{len(recorded) - BURST} duplicates or gaps"
        assert sorted(recorded) == sorted(message_ts(n) for n in range(BURST))
    finally:
        db.close()


async def test_export_reads_the_sqlite_file_while_the_server_writes_a_burst(
    slack: FakeSlack,
    tmp_path: Path,
    sqlite_url: str,
    http: aiohttp.ClientSession,
    processes: list[Process],
) -> None:
    db = Database(sqlite_url)
    try:
        server = await serve(tmp_path, serve_env(slack, sqlite_url), "server")
        processes.append(server)
        channel = await declared_war_room(server, http, slack, db)

        acked: set[int] = set()
        stop = asyncio.Event()

        async def keep_writing() -> None:
            """Bursts of events, one after another, until the exports are done."""
            for start in range(0, 100 * BURST, BURST):  # bounded, should an export hang
                if stop.is_set():
                    return
                await send_burst(server, http, channel, range(start, start + BURST), acked)

        writing = asyncio.create_task(keep_writing())
        await wait_until(
            lambda: len(acked) >= IN_FLIGHT, 30, "the server to be writing", every=0.005
        )
        exported: list[int] = []
        for _ in range(3):
            written_before = len(acked)
            run = await warroom_cli(
                "export", "INC-1", "--format", "json", database_url=sqlite_url, cwd=tmp_path
            )
            assert run.returncode == 0, run.stderr
            assert "locked" not in run.stderr
            exported.append(sum(e["kind"] == "message" for e in run.json["events"]))
            assert len(acked) > written_before, "no write was acknowledged while exporting"
            assert written_before <= exported[-1] < len(acked)
        stop.set()
        await writing
        assert exported == sorted(exported), "each export saw at least what the one before did"

        # WAL is a property of the file (the server set it); the busy timeout is per connection.
        with closing(sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))) as plain:
            assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000

        # The server wrote everything it acknowledged, and the export reads all of it.
        run = await warroom_cli("export", "INC-1", database_url=sqlite_url, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert sum(e["kind"] == "message" for e in run.json["events"]) == len(acked)
        assert sorted(recorded_ts(db)) == sorted(message_ts(n) for n in acked)
    finally:
        db.close()
