"""How a delivery is signed: HMAC-SHA256 of "timestamp.body" with the webhook's secret."""

from __future__ import annotations

import hashlib
import hmac


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Warroom-Signature value for `body` sent at `timestamp` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def is_valid(secret: str, timestamp: int, body: bytes, given: str) -> bool:
    """Whether `given` is the signature of `body` at `timestamp` (compared in constant time)."""
    return hmac.compare_digest(signature(secret, timestamp, body), given)
