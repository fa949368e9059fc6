"""Signed, expiring links to export pages: an HMAC over the path, the options and the expiry."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode


def _signature(key: str, path: str, expires: int, redact: bool) -> str:
    message = f"{path}\n{expires}\n{int(redact)}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_query(key: str, path: str, *, now: datetime, ttl: timedelta, redact: bool) -> str:
    """The `expires` and `sig` query (and `redact=1`) that lets `path` in until `now + ttl`."""
    expires = int((now + ttl).timestamp())
    params = {"expires": str(expires), "sig": _signature(key, path, expires, redact)}
    if redact:
        params["redact"] = "1"
    return urlencode(params)


def signed_path(
    key: str, path: str, *, now: datetime, ttl: timedelta | None, redact: bool = False
) -> str:
    """`path` with the query that lets it in until `ttl` from `now` (a day when unset)."""
    query = signed_query(key, path, now=now, ttl=ttl or timedelta(hours=24), redact=redact)
    return f"{path}?{query}"


def verify(
    key: str, path: str, *, expires: str | None, sig: str | None, redact: bool, now: datetime
) -> bool:
    """True for a link signed with `key` for this path and options that has not expired."""
    # Whatever a stranger puts in the query is refused, never an error: a 40-digit expiry,
    # non-ASCII digits or a non-ASCII signature included.
    if not expires or not sig or len(expires) > 12 or not (expires + sig).isascii():
        return False
    if not expires.isdigit() or int(expires) < now.timestamp():
        return False
    expected = _signature(key, path, int(expires), redact)
    return hmac.compare_digest(sig.encode(), expected.encode())
