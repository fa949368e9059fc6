"""`warroom ...` as a separate process, the way an operator runs it (beside the server, or
before it starts), and the config file it reads."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import REPO


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self) -> Any:
        return json.loads(self.stdout)


async def warroom_cli(
    *args: str, database_url: str, cwd: Path, env: dict[str, str] | None = None
) -> Run:
    """`warroom ...` in its own process (the server keeps running in this one); `env` adds
    settings (SLACK_BOT_TOKEN, SLACK_API_URL)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "PYTHONPATH": str(REPO),
        "DATABASE_URL": database_url,
        **(env or {}),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Run(process.returncode, stdout.decode("utf-8"), stderr.decode("utf-8"))


def run_cli(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`warroom ...` in a fresh process with a clean environment, run from `cwd`."""
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        # The code beside these tests, whatever is installed.
        "PYTHONPATH": str(REPO),
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_config(tmp_path: Path, text: str) -> Path:
    """`text` as `warroom.yml` in `tmp_path`."""
    path = tmp_path / "warroom.yml"
    path.write_text(text, encoding="utf-8")
    return path
