"""Log records never carry a token or a secret: in the message, its arguments or a traceback."""

from __future__ import annotations

import io
import json
import logging

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
