"""Log records never carry a token or a secret: in the message, its arguments or a traceback."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest
from pythonjsonlogger.json import JsonFormatter

from bot.cli import _configure_logging
from bot.config import Settings
from bot.logs import MASK, MAX_LINE, PLAIN, SecretMaskingFormatter, configure_logging


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


def _plain() -> SecretMaskingFormatter:
    return SecretMaskingFormatter(logging.Formatter(PLAIN), ["xoxb-1234-secret"], one_line=True)


def test_user_text_cannot_start_a_line_of_its_own_in_plain_logs() -> None:
    forged = "ok\n2026-12-03 07:20:00,000 CRITICAL bot.app wiped\r\u2028\u2029\x00\x1b[2J"
    text = _log_through(_plain(), "message from %s", forged)
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith("2026-12-03 07:20")]
    [first, *traceback] = lines
    assert first.endswith(
        "message from ok\\n2026-12-03 07:20:00,000 CRITICAL bot.app wiped"
        "\\r\\u2028\\u2029\\x00\\x1b[2J"
    )
    # The traceback stays readable, each of its lines marked as part of the record above.
    assert traceback and all(line.startswith("    | ") for line in traceback)


def test_credentials_that_are_not_ours_are_masked_too() -> None:
    formatter = SecretMaskingFormatter(JsonFormatter("%(message)s %(url)s"), [])
    record = logging.makeLogRecord(
        {
            "msg": "posting to %s with xoxp-99-another-apps-token and xapp-1-A0-app-level",
            "args": ("https://hooks.slack.com/commands/T0/1234/AbCdEfSecretPath",),
            "url": "/incidents/1/timeline.csv?expires=4102444800&sig=5eca1ed&redact=1",
        }
    )
    line = formatter.format(record)
    for credential in ("AbCdEfSecretPath", "another-apps-token", "A0-app-level", "5eca1ed"):
        assert credential not in line, line
    assert "expires=4102444800&sig=[secret]&redact=1" in line


@pytest.mark.parametrize(
    ("text", "credential"),
    [
        ("GET /x?token=t0ken-value&a=1", "t0ken-value"),
        ("GET /x;signature=s1gnature-value", "s1gnature-value"),
        ("GET /x?sig=s1g-value", "s1g-value"),
        ("a xoxe-1-refresh token alone", "1-refresh"),
        ("https://hooks.slack-gov.com/actions/T0/1/Gov5ecret", "Gov5ecret"),
    ],
)
def test_each_credential_pattern_masks_on_its_own(text: str, credential: str) -> None:
    # Lines are checked for the patterns' fixed parts before the patterns run: each pattern
    # must still mask when its own is the only one in the line.
    line = _plain().format(logging.makeLogRecord({"msg": text}))
    assert credential not in line and MASK in line, line


def test_the_record_other_handlers_see_is_unchanged() -> None:
    record = logging.makeLogRecord({"msg": "said %s", "args": ("xoxb-1234-secret\nline",)})
    _plain().format(record)
    assert (record.msg, record.args) == ("said %s", ("xoxb-1234-secret\nline",))
    assert record.getMessage() == "said xoxb-1234-secret\nline"


def test_a_huge_message_makes_one_bounded_line() -> None:
    text = _log_through(_plain(), "body %s", "A" * 5_000_000)
    [first, *_] = text.splitlines()
    assert len(first) <= MAX_LINE
    assert first.endswith(" more characters]")


def test_third_party_loggers_that_log_bodies_stay_quiet_below_warning() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(level=logging.DEBUG)
        for name in ("slack_bolt.AsyncApp", "slack_sdk.webhook.async_client", "slack_sdk.web"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
        assert logging.getLogger("bot.app").isEnabledFor(logging.DEBUG)
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_the_cli_masks_webhook_secrets_from_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "warroom.yml"
    config.write_text(
        "webhooks:\n"
        "  - url: https://bridge:url-password-7@hooks.example.com/in\n"
        "    secret: webhook-secret-42\n"
        "    events: [declared]\n"
    )
    monkeypatch.setenv("WARROOM_CONFIG", str(config))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        _configure_logging()
        logged = io.StringIO()
        [handler] = root.handlers
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(logged)
        logging.getLogger("warroom.test").warning(
            "posting to %s with webhook-secret-42", "https://bridge:url-password-7@hooks"
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    text = logged.getvalue()
    assert "posting to" in text
    assert "webhook-secret-42" not in text and "url-password-7" not in text
    assert text.count(MASK) == 2
