"""Slack text, both ways: user text read out of Slack markup, and our text made safe to post."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

_MARKUP = re.compile(r"<([^<>]*)>")
_BROADCAST_WORDS = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_ZERO_WIDTH_JOINER = "\u2060"
_SPECIAL_MARKUP = re.compile(r"<(?=[!@#])")
# What user text must not carry into storage or out again: control characters (a NUL fails
# PostgreSQL's insert; tab and newline stay, a CR becomes a newline), lone surrogates (not
# UTF-8 at all), and the bidi embeddings, overrides and isolates that reorder what follows
# them (shown as their code point instead, so a reviewer sees they were there).
_UNPRINTABLE = re.compile(
    "\r\n?|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]|[\ud800-\udfff]|[\u202a-\u202e\u2066-\u2069]"
)


def _plain_token(token: str, names: Mapping[str, str], zone: tzinfo | None) -> str:
    target, _, label = token.partition("|")
    if target.startswith("@"):
        return "@" + (label or names.get(target[1:]) or target[1:])
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        # <!here>, <!channel>, <!subteam^S123|@oncall>, <!date^...|fallback>
        name, _, rest = target[1:].partition("^")
        if name == "date":
            return _plain_date(rest, label, zone)
        return label or "@" + name
    return f"{label} ({target})" if label and label != target else target


def _plain_date(rest: str, label: str, zone: tzinfo | None) -> str:
    stamp = rest.split("^", 1)[0]
    if not stamp.isdigit():
        return label or "a date"
    moment = datetime.fromtimestamp(int(stamp), UTC)
    if zone is None:
        return label or utc_text(moment)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")


def to_plain(
    text: str, names: Mapping[str, str] | None = None, *, zone: tzinfo | None = None
) -> str:
    """Slack's escaped, marked-up text as a person would read it: `<@U1|ana>` -> `@ana`
    (and `<@U1>` -> `@ana` too when `names` knows U1); a date token reads as its UTC fallback,
    or as the time in `zone` when one is given (an export's configured time zone)."""
    known = names or {}
    return html.unescape(_MARKUP.sub(lambda m: _plain_token(m.group(1), known, zone), text))


def slack_encoded(text: str) -> str:
    """Typed text as Slack encodes a slash command's text (`&`, `<`, `>` as entities), so that
    a form feeds the same parsers, and lands on the timeline the same way, as a command."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape(text: str) -> str:
    """Make any text safe to post: no markup, no links, and no broadcast mention can fire."""
    # Printable first: text stored before warroom cleaned it at the edge is shown clean too.
    escaped = slack_encoded(printable(text))
    return _BROADCAST_WORDS.sub(lambda m: "@" + _ZERO_WIDTH_JOINER + m.group(1), escaped)


def inert(text: str) -> str:
    """Text for a `plain_text` field or a channel topic, shown as it is (no entities): only keep
    anything that looks like a broadcast or a mention (`@here`, `<!here>`, `<@U…>`, `<#C…>`)
    from firing."""
    text = _SPECIAL_MARKUP.sub("<" + _ZERO_WIDTH_JOINER, printable(text))
    return _BROADCAST_WORDS.sub(lambda m: "@" + _ZERO_WIDTH_JOINER + m.group(1), text)


def mention(user_id: str) -> str:
    """A user mention; ids are checked by the command parser, never free text."""
    return f"<@{user_id}>"


def channel_link(channel_id: str) -> str:
    """A link to the channel, which Slack shows as its name."""
    return f"<#{channel_id}>"


# Slack's date tokens: https://docs.slack.dev/messaging/formatting-message-text#date-formatting
DATE_AND_TIME = "{date_short_pretty} {time}"
TIME_ONLY = "{time}"


def utc_text(moment: datetime) -> str:
    """A moment as UTC text, for where Slack renders no date token: `2026-11-25 03:00 UTC`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def slack_date(moment: datetime, fmt: str = DATE_AND_TIME) -> str:
    """A moment each reader sees in their own time zone (mrkdwn and message text only; plain
    text, modal titles, topics and notifications show the UTC fallback or the raw token)."""
    return f"<!date^{int(moment.timestamp())}^{fmt}|{utc_text(moment)}>"


def printable(text: str) -> str:
    """`text` safe to store and show: see _UNPRINTABLE for what goes and what it becomes."""
    return _UNPRINTABLE.sub(_printable_stand_in, text)


def printable_data(value: Any) -> Any:
    """Every string in a JSON-like value (keys too) made printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [printable_data(v) for v in value]
    return value


def _printable_stand_in(match: re.Match[str]) -> str:
    char = match.group()
    if char[0] == "\r":
        return "\n"
    if "\ud800" <= char <= "\udfff":
        return "\ufffd"
    if "\u202a" <= char <= "\u202e" or "\u2066" <= char <= "\u2069":
        return f"[U+{ord(char):04X}]"
    return ""
