"""Logs from the CLI in its own process: one JSON object a line with LOG_FORMAT=json, and never
a token (the masking alone: tests/unit/test_log_masking.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


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
