"""Logs: one JSON object a line with LOG_FORMAT=json, and never a token or a secret."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from pythonjsonlogger.json import JsonFormatter

from bot.config import Settings
from bot.logs import MASK, SecretMaskingFormatter


def _log_through(formatter: logging.Formatter, message: str, *args: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("warroom.test.logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        raise RuntimeError("token xoxb-1234-secret was refused")
    except RuntimeError:
        logger.exception(message, *args)
    return stream.getvalue()


def test_secrets_are_masked_in_messages_arguments_and_tracebacks() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-1234-secret",
        slack_signing_secret="signing-secret-abc",
        database_url="postgresql://warroom:pg-password-9@db/warroom",
    )
    formatter = SecretMaskingFormatter(
        JsonFormatter("%(levelname)s %(message)s"), settings.secret_values()
    )
    text = _log_through(
        formatter,
        "calling with %s and %s",
        "signing-secret-abc",
        "postgresql://warroom:pg-password-9@db/warroom",
    )
    for secret in ("xoxb-1234-secret", "signing-secret-abc", "pg-password-9"):
        assert secret not in text
    [line] = text.splitlines()
    record = json.loads(line)
    assert record["levelname"] == "ERROR"
    assert MASK in record["message"] and MASK in record["exc_info"]


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
