"""Logs from the CLI in its own process: one JSON object a line with LOG_FORMAT=json, never a
token (the masking alone: tests/unit/test_log_masking.py), no signed link's query in the access
log, and no response_url at any level."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.logs import configure_logging
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.warroom import SIGNING_SECRET, Warroom, WarroomFactory


def test_the_cli_logs_json_lines_when_asked(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "SLACK_BOT_TOKEN": "xoxb-never-logged",
    }
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines, "alembic logs its upgrades"
    for line in lines:
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record)
    assert "xoxb-never-logged" not in run.stderr + run.stdout


def _cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=tmp_path,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_log_format_is_read_from_dot_env_like_every_setting(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"LOG_FORMAT=json\nDATABASE_URL=sqlite:///{tmp_path / 'w.db'}\n")
    run = _cli(tmp_path, "db", "upgrade")
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["level"] for line in lines)


def test_a_bad_log_format_is_refused_by_name(tmp_path: Path) -> None:
    run = _cli(tmp_path, "db", "upgrade", LOG_FORMAT="xml", DATABASE_URL="sqlite:///w.db")
    assert run.returncode == 2
    assert run.stderr.strip() == "warroom: LOG_FORMAT must be plain or json, not 'xml'"
    assert not (tmp_path / "w.db").exists(), "nothing was done"


async def test_the_access_log_keeps_no_signed_link_query_and_bad_http_no_traceback(
    slack: FakeSlack, tmp_path: Path, processes: list[Process]
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'w.db'}",
        "WARROOM_EXPORT_TOKEN": "export-token-for-links",
    }
    process = await serve(tmp_path, env, "access")
    processes.append(process)
    link = "/incidents/1/timeline.json?expires=4102444800&sig=5eca1ed5eca1ed&redact=0"
    async with (
        aiohttp.ClientSession() as http,
        http.get(process.base + link, headers={"Referer": process.base + link}) as response,
    ):
        assert response.status in (401, 404)
    # A request aiohttp cannot parse: one INFO line, not its traceback quoting what was sent.
    reader, writer = await asyncio.open_connection("127.0.0.1", int(process.base.rsplit(":", 1)[1]))
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nForged\nCRITICAL Line\r\n\r\n")
    await writer.drain()
    assert (await asyncio.wait_for(reader.read(4096), timeout=30)).startswith(b"HTTP/1.0 400")
    writer.close()
    # Stopped, not killed: the access line is written after the answer has gone.
    process.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(process.proc.wait(), timeout=30) == 0
    log = process.output()
    assert '"GET /incidents/1/timeline.json" ' in log, log
    assert "5eca1ed5eca1ed" not in log and "expires=" not in log
    assert "INFO aiohttp.server refused a malformed HTTP request: 400 BadHttpMessage" in log
    assert "Traceback" not in log and "CRITICAL" not in log


@pytest.fixture
def debug_logging() -> Iterator[io.StringIO]:
    """The process's logging as `warroom serve` sets it up, at DEBUG, into a buffer rather than
    stderr; put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    quiet = {name: logging.getLogger(name).level for name in ("slack_bolt", "slack_sdk")}
    configure_logging(["xoxb-test", SIGNING_SECRET], level=logging.DEBUG)
    logged = io.StringIO()
    [handler] = root.handlers
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(logged)
    yield logged
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, was in quiet.items():
        logging.getLogger(name).setLevel(was)


async def test_a_response_url_slack_will_not_take_is_never_logged(
    debug_logging: io.StringIO, warroom: Warroom
) -> None:
    # Logging is set up first, as `warroom serve` does: Bolt copies its loggers' levels then.
    tried = await _declare_replying_to_a_refusing_hook(warroom)
    assert len(tried) > 1, "the reply was tried, and retried"
    logged = debug_logging.getvalue()
    assert "response_url reply refused: HTTP 500" in logged
    assert "HookPathCredential" not in logged
    assert " DEBUG slack_bolt" not in logged and " INFO slack_bolt" not in logged
    assert " DEBUG apscheduler" in logged, "the test logged at DEBUG"


@pytest.fixture
def bare_debug_logging() -> Iterator[io.StringIO]:
    """Logging as a library user or a debugging developer might set it up (`basicConfig` at
    DEBUG, no masking, every logger at its default), into a buffer; put back afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    names = ("slack_bolt", "slack_sdk")
    levels = {name: logging.getLogger(name).level for name in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.NOTSET)
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    yield logged
    root.handlers[:], level = saved
    root.setLevel(level)
    for name, was in levels.items():
        logging.getLogger(name).setLevel(was)


async def test_a_response_url_is_not_logged_even_without_warroom_logging(
    bare_debug_logging: io.StringIO, make_warroom: WarroomFactory
) -> None:
    # The app is built after logging is set up, as a developer's script would do it.
    tried = await _declare_replying_to_a_refusing_hook(await make_warroom())
    assert len(tried) > 1, "the reply was tried, and retried"
    logged = bare_debug_logging.getvalue()
    assert "response_url reply refused: HTTP 500" in logged
    assert "HookPathCredential" not in logged
    assert "DEBUG slack_sdk.web" in logged or "DEBUG apscheduler" in logged, "logged at DEBUG"


async def _declare_replying_to_a_refusing_hook(warroom: Warroom) -> list[str]:
    """Declare with a response_url whose endpoint always answers 500; the paths it was sent."""
    tried: list[str] = []

    async def refuse(request: web.Request) -> web.Response:
        tried.append(request.path)
        return web.Response(status=500, text="try later")

    hooks = web.Application()
    hooks.router.add_post("/commands/{team}/{id}/{secret}", refuse)
    # A stand-in for Slack's hooks endpoint: its own access log would be its, not warroom's.
    runner = web.AppRunner(hooks, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        response_url = f"http://127.0.0.1:{port}/commands/T0TEST/4242/HookPathCredential"
        body = warroom.command_body("declare Checkout down sev2", response_url=response_url)
        reply = await warroom.post(body, "application/x-www-form-urlencoded")
        assert reply.status == 200
        await warroom.settle()
    finally:
        await runner.cleanup()
    return tried
