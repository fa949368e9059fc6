"""Requests on /slack/events that Slack did not send, or did not send like this: refused before
anything reads the body (401 unsigned, 400 signed but malformed), with one short log line that
says what was refused and why, never a traceback and never a byte of the body."""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import pytest

from tests.support.warroom import SIGNING_SECRET, Warroom

FORGED_LINE = b"\n2026-12-03 07:20:00,000 CRITICAL bot.app database wiped by admin"


def signature(timestamp: str, body: bytes, secret: str = SIGNING_SECRET) -> str:
    """Slack's v0 signature over the raw bytes (slack_sdk's own helper needs UTF-8)."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


async def post_raw(
    room: Warroom, body: bytes, content_type: str, *, timestamp: str | None = None, sign: bool
) -> tuple[int, str]:
    ts = timestamp if timestamp is not None else str(int(time.time()))
    headers = {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts}
    headers["X-Slack-Signature"] = signature(ts, body) if sign else "v0=" + "0" * 64
    async with room.http.post(room.url, data=body, headers=headers) as response:
        return response.status, await response.text()


def assert_quietly_refused(caplog: pytest.LogCaptureFixture, reason: str, *body_parts: str) -> None:
    """One INFO line naming the refusal; no error, no traceback, nothing of the body."""
    refused = [r for r in caplog.records if r.getMessage().startswith("refused POST /slack/events")]
    assert [r.levelno for r in refused] == [logging.INFO]
    assert refused[0].getMessage().endswith(f"bytes): {reason}")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for part in body_parts:
        assert part not in everything


MALFORMED = {
    "malformed JSON": (b'{"type": "event_callback", ', "application/json", "body is not JSON"),
    "a JSON array": (
        b'[{"type": "event_callback"}]',
        "application/json",
        "body is not a JSON object",
    ),
    "invalid UTF-8": (
        b'{"type": "\xff\xfe event_callback"}',
        "application/json",
        "body is not UTF-8",
    ),
    "a bad payload field": (
        b"payload=%7B%22type%22%3A+not+json",
        "application/x-www-form-urlencoded",
        "payload is not JSON",
    ),
    "a payload that is a list": (
        b"payload=%5B1%2C2%5D",
        "application/x-www-form-urlencoded",
        "payload is not a JSON object",
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
async def test_an_unsigned_malformed_body_is_refused_before_it_is_read(
    warroom: Warroom, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    body, content_type, _ = MALFORMED[case]
    caplog.set_level(logging.DEBUG)
    status, text = await post_raw(warroom, body, content_type, sign=False)
    assert (status, text) == (401, "invalid signature\n")
    assert_quietly_refused(caplog, "invalid signature", "event_callback", "not json")


@pytest.mark.parametrize("case", MALFORMED)
async def test_a_signed_malformed_body_is_a_400_with_its_reason(
    warroom: Warroom, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    body, content_type, reason = MALFORMED[case]
    caplog.set_level(logging.DEBUG)
    status, text = await post_raw(warroom, body, content_type, sign=True)
    assert (status, text) == (400, f"{reason}\n")
    assert_quietly_refused(caplog, reason, "event_callback", "not json")
    assert warroom.timeline() == []


@pytest.mark.parametrize(
    ("timestamp", "reason"),
    [
        ("yesterday", "malformed timestamp"),
        ("１７００００００００", "malformed timestamp"),  # fullwidth digits: int() would take them
        ("9" * 40, "malformed timestamp"),
        ("1000000000", "timestamp outside the 5-minute window"),
    ],
)
async def test_a_bad_timestamp_is_a_401_not_an_error(
    warroom: Warroom, caplog: pytest.LogCaptureFixture, timestamp: str, reason: str
) -> None:
    caplog.set_level(logging.DEBUG)
    body = b'{"type": "event_callback"}'
    status, text = await post_raw(warroom, body, "application/json", timestamp=timestamp, sign=True)
    assert (status, text) == (401, f"{reason}\n")
    assert_quietly_refused(caplog, reason, "event_callback")


async def test_an_unsigned_body_cannot_forge_a_log_line_or_flood_the_log(
    warroom: Warroom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    forged = b"token=x&text=" + FORGED_LINE
    huge = b"text=" + b"A" * (1024**2 - 100)
    for body in (forged, huge):
        status, _ = await post_raw(warroom, body, "application/x-www-form-urlencoded", sign=False)
        assert status == 401
    lines = [r.getMessage() for r in caplog.records]
    assert not [line for line in lines if "CRITICAL" in line or "wiped" in line or "AAAA" in line]
    refusals = [line for line in lines if line.startswith("refused POST /slack/events")]
    assert refusals == [
        f"refused POST /slack/events ({len(forged)} bytes): invalid signature",
        f"refused POST /slack/events ({len(huge)} bytes): invalid signature",
    ]


async def test_slacks_ssl_check_is_still_answered(warroom: Warroom) -> None:
    status, text = await post_raw(
        warroom, b"ssl_check=1&token=x", "application/x-www-form-urlencoded", sign=False
    )
    assert (status, text) == (200, "")
