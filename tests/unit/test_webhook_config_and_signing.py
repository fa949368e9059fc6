"""Webhooks out: the config's webhooks entries validated by name, and the signature a
receiver checks (HMAC-SHA256 of "timestamp.body")."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import load_config
from bot.errors import ConfigError
from bot.webhooks.sender import backoff
from bot.webhooks.signing import is_valid, signature
from tests.support.cli import write_config

GOOD = "webhooks:\n  - url: https://hooks.example.com/warroom\n    secret: s3cret\n"


def test_no_webhooks_by_default() -> None:
    assert load_config(None).webhooks == []


def test_a_webhook_from_the_file(tmp_path: Path) -> None:
    config = load_config(
        write_config(tmp_path, GOOD + "    events: [declared, resolved, declared]\n")
    )
    [hook] = config.webhooks
    assert hook.url == "https://hooks.example.com/warroom" and hook.secret == "s3cret"
    assert hook.events == ["declared", "resolved"] and hook.include_private is False


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (
            "  - url: ftp://x.example.com\n    secret: s\n    events: [declared]\n",
            "webhooks.0.url: 'ftp://x.example.com' is not an http(s) URL",
        ),
        (
            "  - url: https://x.example.com\n    secret: ' '\n    events: [declared]\n",
            "webhooks.0.secret: must not be empty",
        ),
        (
            "  - url: https://x.example.com\n    secret: s\n    events: [declared, opened]\n",
            "webhooks.0.events: unknown event 'opened'",
        ),
        (
            "  - url: https://x.example.com\n    secret: s\n    events: []\n",
            "webhooks.0.events: name at least one event kind",
        ),
        (
            "  - url: https://x.example.com\n    secret: s\n    events: [declared]\n    foo: 1\n",
            "unknown key 'webhooks.0.foo'",
        ),
        ("  - url: https://x.example.com\n    events: [declared]\n", "webhooks.0.secret"),
    ],
)
def test_a_bad_webhook_is_refused_by_name(tmp_path: Path, entry: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path, "webhooks:\n" + entry))
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_signature_is_an_hmac_of_timestamp_dot_body() -> None:
    body = b'{"event":"declared"}'
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("s3cret", 1700000000, body) == "sha256=" + expected
    assert is_valid("s3cret", 1700000000, body, "sha256=" + expected)
    assert not is_valid("s3cret", 1700000001, body, "sha256=" + expected)
    assert not is_valid("other", 1700000000, body, "sha256=" + expected)
    assert not is_valid("s3cret", 1700000000, body + b" ", "sha256=" + expected)


def test_backoff_doubles_from_thirty_seconds_to_an_hour() -> None:
    assert [backoff(n) for n in (1, 2, 3)] == [timedelta(seconds=s) for s in (30, 60, 120)]
    assert backoff(30) == timedelta(hours=1)
