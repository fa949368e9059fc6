"""SIGTERM: warroom stops taking requests, finishes what it owes, then stops its clocks and
closes the database, and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp

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
