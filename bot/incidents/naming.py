"""Channel names that obey Slack's rules, from the configured pattern."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from anyascii import anyascii

MAX_CHANNEL_NAME = 80
_NOT_ALLOWED = re.compile(r"[^a-z0-9_-]+")
_DASHES = re.compile(r"-{2,}")


def slugify(text: str) -> str:
    """Lower-case ASCII words joined by dashes: `Café down!` -> `cafe-down`."""
    ascii_text = anyascii(text).lower()
    return _DASHES.sub("-", _NOT_ALLOWED.sub("-", ascii_text)).strip("-_")


def channel_name(pattern: str, *, number: int, title: str, severity: str, at: datetime) -> str:
    """The channel name for an incident, cut to Slack's 80 characters at a word boundary."""
    fixed = pattern.format(number=number, slug="\0", severity=severity, date=at.strftime("%Y%m%d"))
    fixed = fixed.lower()
    room = MAX_CHANNEL_NAME - (len(fixed) - 1)
    slug = slugify(title)
    if len(slug) > room:
        cut = slug[: room + 1]
        slug = cut.rsplit("-", 1)[0] if "-" in cut else slug[:room]
        slug = slug[:room].strip("-_")
    name = fixed.replace("\0", slug)
    name = _DASHES.sub("-", _NOT_ALLOWED.sub("-", slugify_keep(name))).strip("-_")
    return name[:MAX_CHANNEL_NAME]


def slugify_keep(name: str) -> str:
    """Transliterate a whole name but keep `_` and `-` where the pattern put them."""
    return anyascii(name).lower()


def name_candidates(name: str, attempts: int = 20) -> Iterator[str]:
    """The name, then `name-2`, `name-3`, ... each still within 80 characters."""
    yield name
    for suffix in range(2, attempts + 2):
        tail = f"-{suffix}"
        yield name[: MAX_CHANNEL_NAME - len(tail)].rstrip("-_") + tail
