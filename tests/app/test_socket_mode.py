"""`warroom serve --socket-mode` as a real process: Slack's requests come over a WebSocket
(a fake Socket Mode server), the acks go back over it after the commit, and health and metrics
are still served over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlmodel import Session, col, select

from storage import outbox as outbox_store
from storage.db import Database
from storage.models import Incident, TimelineEvent
from tests.support.databases import migrate
from tests.support.fakes.held import HeldSlack
from tests.support.fakes.slack_api import FakeSlack
from tests.support.fakes.socket_mode import FakeSocketMode
from tests.support.paths import PAYLOADS
from tests.support.serving import Process, free_port, serve


@pytest.fixture
async def socket_mode(slack: FakeSlack) -> AsyncIterator[FakeSocketMode]:
    fake = FakeSocketMode()
    await fake.start()
    slack.socket_mode_url = fake.url
    yield fake
    await fake.close()


def _env(slack: FakeSlack, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        **extra,
    }


def _command(slack: FakeSlack, text: str) -> dict[str, Any]:
    return {
        "envelope_id": f"e-{uuid.uuid4().hex}",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": {
            "token": "x",
            "command": "/incident",
            "text": text,
            "user_id": "U0ANA",
            "user_name": "ana",
            "channel_id": "C0GENERAL",
            "channel_name": "general",
            "team_id": "T0TEST",
            "team_domain": "test",
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "api_app_id": "A0WARROOM",
            "is_enterprise_install": "false",
            "response_url": slack.response_url("socket"),
        },
    }


def _event(event: dict[str, Any], *, event_id: str, retry: int = 0) -> dict[str, Any]:
    return {
        "envelope_id": f"e-{uuid.uuid4().hex}",
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry,
        "retry_reason": "timeout" if retry else "",
        "payload": {
            "token": "x",
            "team_id": "T0TEST",
            "api_app_id": "A0WARROOM",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT0001", "is_bot": True}],
            "event": event,
        },
    }


def _incidents(db: Database) -> list[Incident]:
    with Session(db.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def _messages(db: Database) -> list[TimelineEvent]:
    with Session(db.engine) as session:
        query = select(TimelineEvent).where(TimelineEvent.kind == "message")
        return list(session.exec(query).all())


async def test_socket_mode_takes_commands_and_events_and_serves_health_over_http(
    slack: FakeSlack,
    socket_mode: FakeSocketMode,
    tmp_path: Path,
    processes: list[Process],
) -> None:
    env = _env(slack, tmp_path, SLACK_APP_TOKEN="xapp-test")  # and no signing secret
    process = await serve(tmp_path, env, "socket", args=["--socket-mode"])
    processes.append(process)
    opened = slack.calls_to("apps.connections.open")
    assert opened, process.output()
    db = Database(env["DATABASE_URL"])
    try:
        # A slash command: the ack carries the ephemeral reply, and comes after the commit.
        ack = await socket_mode.deliver(_command(slack, "declare Checkout down sev2"))
        incidents = _incidents(db)
        assert [i.number for i in incidents] == [1], "the ack came before the commit"
        assert "*INC-1*" in ack["payload"]["text"], ack
        assert ack["payload"].get("response_type") == "ephemeral", ack

        # The war room opens after the ack, as over HTTP.
        deadline = time.monotonic() + 10
        while not (incidents := _incidents(db))[0].channel_id:
            assert time.monotonic() < deadline, process.output()
            await asyncio.sleep(0.05)
        channel = incidents[0].channel_id
        assert channel

        # A message in the war room, acked once it is recorded; the redelivery makes no second.
        message = json.loads((PAYLOADS / "message.json").read_text())
        message["channel"] = channel
        first = _event(message, event_id="Ev0SOCKET1")
        ack = await socket_mode.deliver(first)
        assert ack["envelope_id"] == first["envelope_id"]
        assert [m.text for m in _messages(db)] == [message["text"]], "acked before recording"
        again = _event(message, event_id="Ev0SOCKET1", retry=1)
        ack = await socket_mode.deliver(again)
        assert ack["envelope_id"] == again["envelope_id"]
        assert len(_messages(db)) == 1
    finally:
        db.close()

    # Health and metrics still answer over HTTP; Slack's HTTP route is not served.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{process.base}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{process.base}/readyz") as response:
            assert response.status == 200, await response.text()
        async with http.get(f"{process.base}/metrics") as response:
            assert response.status == 200
            metrics = await response.text()
        # Requests that came over the socket are counted like those over HTTP.
        assert 'warroom_slack_requests_total{outcome="ok",type="command"} 1.0' in metrics
        assert 'warroom_slack_ack_seconds_count{type="event:message"}' in metrics
        async with http.post(f"{process.base}/slack/events", data="{}") as response:
            assert response.status in (404, 405)

    # SIGTERM closes the socket and the rest as in HTTP mode.
    process.proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(process.proc.wait(), timeout=30)
    assert code == 0, process.output()
    assert "Traceback" not in process.output()


async def test_socket_mode_without_an_app_token_is_one_line(
    slack: FakeSlack, tmp_path: Path
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--socket-mode",
        cwd=tmp_path,
        env=_env(slack, tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2
    assert out == b""
    assert err.decode().strip().splitlines() == [
        "warroom: SLACK_APP_TOKEN is not set; put it in the environment or .env"
    ]


async def _serve_and_fail(env: dict[str, str], tmp_path: Path) -> tuple[int | None, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--socket-mode",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode, err.decode()


async def test_a_refused_app_token_stops_start_up_with_one_line(
    slack: FakeSlack, socket_mode: FakeSocketMode, tmp_path: Path
) -> None:
    slack.fail("apps.connections.open", error="invalid_auth")
    env = _env(slack, tmp_path, SLACK_APP_TOKEN="xapp-revoked")
    code, err = await _serve_and_fail(env, tmp_path)
    assert code == 2, err
    assert "warroom: Slack refused SLACK_APP_TOKEN (invalid_auth)" in err.splitlines(), err
    assert "xapp-revoked" not in err
    # That nothing else is said is checked below, with the scheduler's first job under way when
    # the refusal comes: here it may or may not be, depending on how busy the machine is.


async def test_a_refused_app_token_says_one_line_even_with_work_under_way(
    held_slack: HeldSlack, tmp_path: Path
) -> None:
    """The race behind the one-line promise, made to happen every time: a message owed from
    before the restart is being posted (the outbox's first flush) when Slack refuses the app
    token. Start-up stops with one line, and what it had started ends quietly."""
    slack = held_slack
    url = f"sqlite:///{tmp_path / 'w.db'}"
    migrate(url)
    db = Database(url)
    try:
        with db.unit_of_work() as session:
            outbox_store.enqueue(
                session, channel_id="C0GENERAL", text="owed", at=datetime.now(UTC), incident_id=None
            )
    finally:
        db.close()
    slack.fail("apps.connections.open", error="invalid_auth")
    posting = slack.hold("chat.postMessage")  # never answered: the post stays under way
    refusing = slack.hold("apps.connections.open")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--socket-mode",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        cwd=tmp_path,
        env=_env(slack, tmp_path, SLACK_APP_TOKEN="xapp-revoked", DATABASE_URL=url),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # Bounds on waiting (a hang fails the test), not on how long anything took.
        await asyncio.wait_for(refusing.arrived.wait(), timeout=60)
        if slack.calls_to("auth.test"):
            # Start-up had started the services (the first thing they do is ask Slack who the
            # bot is), so the outbox flushes: the refusal goes once the owed message is being
            # posted. A start-up that checks the app token before starting anything has
            # nothing under way to cut off, and gets its refusal at once.
            await asyncio.wait_for(posting.arrived.wait(), timeout=60)
        refusing.release()
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        slack.release_all()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    err = stderr.decode()
    assert proc.returncode == 2, err
    assert "warroom: Slack refused SLACK_APP_TOKEN (invalid_auth)" in err.splitlines(), err
    assert "Traceback" not in err, err
    assert "xapp-revoked" not in err
