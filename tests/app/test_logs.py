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
