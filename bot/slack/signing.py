"""The first thing done with a request on /slack/events: check Slack's signature on the raw bytes,
before anything reads them as text, JSON or a form. An unsigned, forged or stale request is
refused with a short reason and nothing of its body is read, logged or kept; a signed one whose
body is not what Slack sends is refused too, before Bolt would fail on it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# Slack's window for a request's timestamp (its replays are refused outside it).
WINDOW_SECONDS = 5 * 60
# A timestamp is Unix seconds: ten digits today; more is not a time Slack sends.
_MAX_TIMESTAMP_DIGITS = 12


@dataclass(frozen=True)
class Refusal:
    """Why a request is turned away, and with which status."""

    status: int
    reason: str


UNSIGNED = Refusal(401, "missing signature")
BAD_TIMESTAMP = Refusal(401, "malformed timestamp")
STALE = Refusal(401, "timestamp outside the 5-minute window")
FORGED = Refusal(401, "invalid signature")


class SlackSigning:
    """Checks requests against the app's signing secret, as Slack signs them."""

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self._clock = clock

    def refusal(self, body: bytes, headers: Mapping[str, str]) -> Refusal | None:
        """None for a request Slack signed within the window whose body is what Slack sends;
        otherwise why not. Reads the body only once the signature holds."""
        return self.checked(body, headers)[0]

    def checked(
        self, body: bytes, headers: Mapping[str, str]
    ) -> tuple[Refusal | None, dict[str, Any] | None]:
        """As `refusal`, with the JSON object a signed JSON body holds (None for a form), so
        that the body is parsed once."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if not timestamp or not signature:
            return UNSIGNED, None
        if (
            not (timestamp.isascii() and timestamp.isdigit())
            or len(timestamp) > _MAX_TIMESTAMP_DIGITS
        ):
            return BAD_TIMESTAMP, None
        if abs(self._clock() - int(timestamp)) > WINDOW_SECONDS:
            return STALE, None
        if not hmac.compare_digest(self._signature(timestamp, body), signature.encode()):
            return FORGED, None
        return _malformed(body, headers.get("Content-Type", ""))

    def _signature(self, timestamp: str, body: bytes) -> bytes:
        # Over the raw bytes: a body that is not UTF-8 is simply not signed, never an error.
        digest = hmac.new(self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
        return b"v0=" + digest.hexdigest().encode()


def is_ssl_check(body: bytes) -> bool:
    """Slack's `ssl_check=1` probe, sent when a request URL is saved, which Bolt answers
    unsigned with an empty 200 (it reads nothing else)."""
    return body.startswith(b"ssl_check=1") and len(body) < 1024


def _malformed(body: bytes, content_type: str) -> tuple[Refusal | None, dict[str, Any] | None]:
    """Why a signed body is not one Slack sends: not UTF-8, not a JSON object, or a form
    whose `payload` is not one; with a JSON body's object when it is one."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "body is not UTF-8"), None
    if content_type.split(";", 1)[0].strip().lower() == "application/json":
        return _json_object(text, "body")
    try:
        form = parse_qs(text, strict_parsing=False)
    except ValueError:
        return Refusal(400, "body is not a form"), None
    payloads = form.get("payload")
    if payloads is None:
        return None, None
    if len(payloads) != 1:
        return Refusal(400, "more than one payload"), None
    return _json_object(payloads[0], "payload")[0], None


def _json_object(text: str, what: str) -> tuple[Refusal | None, dict[str, Any] | None]:
    try:
        value = json.loads(text)
    except ValueError:
        return Refusal(400, f"{what} is not JSON"), None
    if not isinstance(value, dict):
        return Refusal(400, f"{what} is not a JSON object"), None
    return None, value
