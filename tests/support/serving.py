"""`warroom serve` as a real process, for tests that kill it, stop it or restart it."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from tests.support.fakes.slack_api import FakeSlack
from tests.support.warroom import SIGNING_SECRET


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Process:
    """`warroom serve` as a real process, killed as a crash would kill it."""

    proc: asyncio.subprocess.Process
    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    async def command(self, http: aiohttp.ClientSession, slack: FakeSlack, text: str) -> str:
        """A signed `/incident` request, as Slack sends it; the ephemeral reply's text."""
        body = urlencode(
            {
                "command": "/incident",
                "text": text,
                "user_id": "U0ANA",
                "user_name": "ana",
                "channel_id": "C0GENERAL",
                "channel_name": "general",
                "team_id": "T0TEST",
                "trigger_id": f"trigger-{uuid.uuid4().hex}",
                "api_app_id": "A0WARROOM",
                "response_url": slack.response_url("restart"),
            }
        )
        ts = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        async with http.post(f"{self.base}/slack/events", data=body, headers=headers) as response:
            assert response.status == 200, await response.text()
            return str((await response.json())["text"])

    async def post_signed(
        self,
        http: aiohttp.ClientSession,
        body: str,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """Any request as Slack signs it (events, commands, retries); status and body."""
        ts = str(int(time.time()))
        signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(signature),
            **(headers or {}),
        }
        async with http.post(f"{self.base}/slack/events", data=body, headers=sent) as response:
            return response.status, await response.text()

    async def get_json(self, http: aiohttp.ClientSession, path: str) -> tuple[int, Any]:
        """GET a JSON route (/readyz, /healthz): status and parsed body."""
        async with http.get(f"{self.base}{path}") as response:
            return response.status, await response.json()

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()


async def serve(
    tmp_path: Path, env: dict[str, str], name: str, *, args: Sequence[str] = ()
) -> Process:
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *args,
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    process = Process(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while True:
            assert proc.returncode is None, f"warroom exited:\n{process.output()}"
            assert time.monotonic() < deadline, f"warroom never came up:\n{process.output()}"
            try:
                async with http.get(f"{process.base}/healthz") as response:
                    if response.status == 200:
                        return process
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)
