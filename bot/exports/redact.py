"""Masking personal data in exports: email addresses, phone numbers, IP addresses, and the
patterns a team configures."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from bot.errors import ConfigError

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
# Candidates only: each is confirmed by the ipaddress module before it is masked.
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?:%\w+)?(?![\w:])")
# International or national numbers of 7+ digits with the usual separators; not dates or times.
_PHONE = re.compile(r"(?<![\w.+:-])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{1,4}\)?){2,6}(?![\w.:-])")
_DATE_LIKE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}|^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}$")


def _ip(match: re.Match[str], label: str) -> str:
    candidate = match.group(0).split("%", 1)[0]
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return match.group(0)
    return label


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if digits < 7 or digits > 15 or _DATE_LIKE.match(text.strip()):
        return text
    return "[phone]"


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"redact_patterns: {pattern!r} is not a regular expression ({exc})"
        ) from None


class Redactor:
    """Masks what `--redact` promises; `Redactor.off()` passes text through unchanged."""

    def __init__(self, extra_patterns: Iterable[str] = (), *, enabled: bool = True) -> None:
        self.enabled = enabled
        self.extra = [_compile(pattern) for pattern in extra_patterns]

    @classmethod
    def off(cls) -> Redactor:
        """A redactor that changes nothing."""
        return cls(enabled=False)

    def text(self, value: str | None) -> str | None:
        """`value` with emails, phones, IPs and the configured patterns masked (when enabled)."""
        if value is None or not self.enabled:
            return value
        value = _EMAIL.sub("[email]", value)
        value = _IPV6.sub(lambda m: _ip(m, "[ip]"), value)
        value = _IPV4.sub(lambda m: _ip(m, "[ip]"), value)
        value = _PHONE.sub(_phone, value)
        for pattern in self.extra:
            value = pattern.sub("[redacted]", value)
        return value

    def data(self, value: Any) -> Any:
        """Mask every string inside a JSON-like value."""
        if not self.enabled:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.data(item) for item in value]
        return value
