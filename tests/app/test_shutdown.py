"""SIGTERM: warroom stops taking requests, finishes what it owes, then stops its clocks and
closes the database, and exits cleanly; with Slack not answering, within shutdown_grace, and
what it could not post is posted by the next start."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from sqlmodel import col, select

from storage.db import Database
from storage.models import OutboxMessage
from tests.support.cli import write_config
from tests.support.fakes.held import HeldSlack
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.warroom import SIGNING_SECRET


async def test_sigterm_finishes_the_work_under_way_and_exits_cleanly(
    slack: FakeSlack, tmp_path: Path, processes: list[Process]
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
    }
    process = await serve(tmp_path, env, "graceful")
    processes.append(process)
    slack.latency = 0.5  # the war room takes a few slow Slack calls to open
    async with aiohttp.ClientSession() as http:
        reply = await process.command(http, slack, "declare Checkout down sev2")
    assert "*INC-1*" in reply
    assert not slack.calls_to("pins.add"), "the war room opened before the test could stop it"

    process.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.proc.wait(), timeout=30)
    assert code == 0, process.output()
    # The work promised before the signal was finished, not dropped.
    assert slack.calls_to("conversations.create")
    assert slack.calls_to("pins.add"), process.output()
    assert "Traceback" not in process.output()
    # And the server no longer takes requests.
    async with aiohttp.ClientSession() as http:
        try:
            async with http.get(f"{process.base}/healthz") as response:
                raise AssertionError(f"still answering: {response.status}")
        except aiohttp.ClientConnectionError:
            pass


GRACE_SECONDS = 2


def _outbox(url: str) -> list[OutboxMessage]:
    db = Database(url)
    try:
        with db.reading() as session:
            return list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))).all())
    finally:
        db.close()


async def test_sigterm_with_slack_not_answering_stops_within_the_grace_and_loses_nothing(
    held_slack: HeldSlack, tmp_path: Path, processes: list[Process]
) -> None:
    slack = held_slack
    url = f"sqlite:///{tmp_path / 'w.db'}"
    config = write_config(
        tmp_path, f"announce_channel: C0ANNOUNCE\nshutdown_grace: {GRACE_SECONDS}s\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": url,
        "WARROOM_CONFIG": str(config),
    }
    process = await serve(tmp_path, env, "first", args=())
    processes.append(process)
    async with aiohttp.ClientSession() as http:
        assert "*INC-1*" in await process.command(http, slack, "declare Checkout down sev2")
        await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=30)
        war_room = slack.channel_named("inc-1-checkout-down").id

        # Slack stops answering posts; a customer update is accepted (committed, then acked)
        # and its post is under way when the signal comes.
        posting = slack.hold("chat.postMessage")
        status, body = await process.post_signed(
            http,
            urlencode(
                {
                    "command": "/incident",
                    "text": "update Payments are flowing again",
                    "user_id": "U0ANA",
                    "user_name": "ana",
                    "channel_id": war_room,
                    "team_id": "T0TEST",
                    "trigger_id": "trigger-shutdown-update",
                    "api_app_id": "A0WARROOM",
                    "response_url": slack.response_url("update"),
                }
            ),
            "application/x-www-form-urlencoded",
        )
        assert status == 200 and "Customer update" in body, body
    await asyncio.wait_for(posting.arrived.wait(), timeout=30)

    process.proc.send_signal(signal.SIGTERM)
    # A bound on waiting, generous for a busy machine: without the grace, the post's retries
    # (10 s timeouts, backoff) kept the process up for minutes.
    code = await asyncio.wait_for(process.proc.wait(), timeout=GRACE_SECONDS + 15)
    assert code == 0, process.output()
    assert "Traceback" not in process.output()
    # The update is still owed (in the war room and the announcement channel), and given back:
    # no claim left for the next start to wait out.
    owed = [m for m in _outbox(url) if "Payments are flowing again" in m.text]
    assert sorted(m.channel_id for m in owed) == sorted([war_room, "C0ANNOUNCE"])
    assert [(m.posted_at, m.claimed_by) for m in owed] == [(None, None), (None, None)]

    # Slack answers again; the next start delivers both.
    slack.unhold("chat.postMessage")
    started = len(slack.calls)
    again = await serve(tmp_path, env, "second")
    processes.append(again)

    def delivered() -> list[str]:
        return [
            str(c.args.get("channel"))
            for c in slack.calls[started:]
            if c.method == "chat.postMessage"
            and "Payments are flowing again" in str(c.args.get("text"))
        ]

    await slack.wait_for(lambda: len(delivered()) == 2, timeout=30)
    assert sorted(delivered()) == sorted([war_room, "C0ANNOUNCE"])
    # And marked sent once Slack took them (Slack hears of a post before the outbox does).
    await slack.wait_for(lambda: all(m.posted_at for m in _outbox(url)), timeout=30)
