"""Durations as the config file writes them: 45s, 30m, 2h, 5d."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse `45s`, `30m`, `2h` or `5d` into a timedelta; raise ValueError naming the text."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration like 45s, 30m, 2h or 5d")
    amount, unit = int(match.group(1)), match.group(2)
    if amount == 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(delta: timedelta) -> str:
    """Render a duration for people: `1h 5m`, `45s`, `2d 3h`."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts[:2])
