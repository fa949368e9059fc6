"""Bearer tokens on the routes that are not Slack's (alerts, exports, metrics)."""

from __future__ import annotations

import hmac


def bearer_matches(header: str, token: str) -> bool:
    """`Bearer <token>` (the scheme in any case, RFC 9110), compared in constant time. Bytes, not
    str: `compare_digest` refuses non-ASCII text, and a stray header must get 401, not 500."""
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    given = credentials.strip().encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token.encode("utf-8", "surrogateescape"))
