"""The fiddly pure functions: command parsing, channel naming, Slack text and durations."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.commands.parse import (
    MAX_TITLE,
    Command,
    Declaration,
    RoleChange,
    UserRef,
    incident_number_in,
    parse_command,
    parse_declaration,
    parse_role_change,
    parse_user,
)
from bot.durations import parse_duration
from bot.errors import UsageError
from bot.incidents.naming import MAX_CHANNEL_NAME, channel_name, name_candidates, slugify
from bot.slack.text import escape, inert, to_plain

WJ = "\u2060"  # what escape() puts after an @ so that a broadcast mention cannot fire
AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SLACK_NAME = re.compile(r"^[a-z0-9_-]{1,80}$")
LIVE_BROADCAST = re.compile(r"<!(channel|here|everyone)\b|@(channel|here|everyone)\b", re.I)


# -- parse_command -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("HELP", Command("help")),
        ("list", Command("list")),
        (
            "declare Checkout down sev1",
            Command("declare", None, "Checkout down sev1", ("Checkout", "down", "sev1")),
        ),
        ("open Checkout down", Command("declare", None, "Checkout down", ("Checkout", "down"))),
        ("new Checkout down", Command("declare", None, "Checkout down", ("Checkout", "down"))),
        (
            "declare   spaced    out  ",
            Command("declare", None, "spaced    out  ", ("spaced", "out")),
        ),
        (
            "role comms <@U0BO|bo>",
            Command("role", None, "comms <@U0BO|bo>", ("comms", "<@U0BO|bo>")),
        ),
        ("ic @bo", Command("role", None, "commander @bo", ("commander", "@bo"))),
        ("lead <@U0BO>", Command("role", None, "commander <@U0BO>", ("commander", "<@U0BO>"))),
        ("roles", Command("roles")),
        ("note a b", Command("note", None, "a b", ("a", "b"))),
        ("INC-7", Command("help", 7)),
        ("INC-7 roles", Command("roles", 7)),
        ("inc-7 note db is back", Command("note", 7, "db is back", ("db", "is", "back"))),
        ("INC7 role comms @bo", Command("role", 7, "comms @bo", ("comms", "@bo"))),
        ("INC-12 ic @bo", Command("role", 12, "commander @bo", ("commander", "@bo"))),
    ],
)
def test_parse_command(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frobnicate", "Unknown subcommand `frobnicate`"),
        ("INC-x roles", "`INC-x` is not an incident id"),
        ("INCIDENT roles", "`INCIDENT` is not an incident id"),
        ("INC-7 frobnicate", "Unknown subcommand `frobnicate`"),
        ("x" * 100, "Unknown subcommand `" + "x" * 40 + "`"),
        # Echoed words are read as plain text and cannot fire a broadcast mention.
        ("<!channel>", f"Unknown subcommand `@{WJ}channel`"),
        ("@here", f"Unknown subcommand `@{WJ}here`"),
        ("INC<!everyone>", f"`INC@{WJ}everyone` is not an incident id"),
        ("<https://evil.example|click>", "Unknown subcommand `click (https://evil.example)`"),
    ],
)
def test_parse_command_refuses(text: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_command(text)
    assert message in caught.value.message
    assert not LIVE_BROADCAST.search(caught.value.message)
    assert "<http" not in caught.value.message


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("INC-7 frobnicate", 7),
        ("inc7 role", 7),
        ("INC-7", 7),
        ("INC-x roles", None),
        ("frobnicate INC-7", None),
        ("", None),
    ],
)
def test_incident_number_in(text: str, number: int | None) -> None:
    assert incident_number_in(text) == number


# -- parse_declaration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("Checkout API returning 500s sev1", Declaration("Checkout API returning 500s", "sev1")),
        ("Checkout API returning 500s SEV-2", Declaration("Checkout API returning 500s", "sev2")),
        ("Checkout sev3", Declaration("Checkout", "sev3")),
        ("Checkout Sev4", Declaration("Checkout", "sev4")),
        ("Checkout down", Declaration("Checkout down", None)),
        # Only the last word is a severity, and only sev1 to sev4.
        ("sev1 is only a word here", Declaration("sev1 is only a word here", None)),
        ("Checkout sev5", Declaration("Checkout sev5", None)),
        ("Checkout severity1", Declaration("Checkout severity1", None)),
        ("  lots   of\tspace  ", Declaration("lots of space", None)),
        # Slack markup is read as text: the title stores what a person saw.
        ("<!channel> checkout down", Declaration("@channel checkout down", None)),
        ("DB down for <@U0BO|bo>", Declaration("DB down for @bo", None)),
        ("Fish &amp; chips &lt;3", Declaration("Fish & chips <3", None)),
        ("Café Zürich paiement", Declaration("Café Zürich paiement", None)),
        ("DB :fire: down", Declaration("DB :fire: down", None)),
        ("x" * MAX_TITLE, Declaration("x" * MAX_TITLE, None)),
    ],
)
def test_parse_declaration(args: str, expected: Declaration) -> None:
    assert parse_declaration(args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("", "Give the incident a title"),
        ("sev1", "Give the incident a title"),
        ("x" * (MAX_TITLE + 1), f"{MAX_TITLE + 1} characters"),
        ("x" * 500 + " sev1", "500 characters"),
        ("🔥🔥🔥", "not only emoji"),
        (":fire: :fire:", "not only emoji"),
        (":+1::skin-tone-2: sev2", "not only emoji"),
        ("!!! ??? ---", "not only emoji"),
        ("___", "not only emoji"),
    ],
)
def test_parse_declaration_refuses(args: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_declaration(args)


# -- parse_user and parse_role_change ---------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("<@U0BO|bo>", UserRef("U0BO", "bo")),
        ("<@U0BO>", UserRef("U0BO", None)),
        ("<@U0BO|>", UserRef("U0BO", None)),
        ("<@W0ENTERPRISE|ent>", UserRef("W0ENTERPRISE", "ent")),
        ("@bo", UserRef(None, "bo")),
        ("@ana.lopez-2", UserRef(None, "ana.lopez-2")),
    ],
)
def test_parse_user(word: str, expected: UserRef) -> None:
    assert parse_user(word) == expected


@pytest.mark.parametrize(
    "word",
    [
        "bo",
        "<#C0GENERAL|general>",
        "<!channel>",
        "<!subteam^S0ONCALL|@oncall>",
        "@",
        "<@u0bo>",
        "<@X0BO>",
        "@<!here>",
    ],
)
def test_parse_user_refuses_what_is_not_a_person(word: str) -> None:
    with pytest.raises(UsageError, match="is not a person") as caught:
        parse_user(word)
    assert not LIVE_BROADCAST.search(caught.value.message)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("commander <@U0BO|bo>", RoleChange("commander", UserRef("U0BO", "bo"))),
        ("ic @bo", RoleChange("commander", UserRef(None, "bo"))),
        ("lead @bo", RoleChange("commander", UserRef(None, "bo"))),
        ("Commander @bo", RoleChange("commander", UserRef(None, "bo"))),
        ("comms <@U0BO>", RoleChange("comms", UserRef("U0BO", None))),
        ("communications @bo", RoleChange("comms", UserRef(None, "bo"))),
        ("resolver @bo", RoleChange("resolver", UserRef(None, "bo"))),
        ("tech @bo", RoleChange("resolver", UserRef(None, "bo"))),
    ],
)
def test_parse_role_change(args: str, expected: RoleChange) -> None:
    assert parse_role_change(args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("", "Usage: `/incident role"),
        ("commander", "Usage: `/incident role"),
        ("commander @bo @cy", "Usage: `/incident role"),
        ("janitor @bo", "`janitor` is not a role"),
        ("<!here> @bo", f"`@{WJ}here` is not a role"),
        ("commander bo", "`bo` is not a person"),
    ],
)
def test_parse_role_change_refuses(args: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_role_change(args)
    assert message in caught.value.message


# -- channel names -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Café down!", "cafe-down"),
        ("Café Zürich paiement", "cafe-zurich-paiement"),
        ("Straße Ærø Łódź", "strasse-aero-lodz"),
        ("Checkout API returning 500s", "checkout-api-returning-500s"),
        ("  --DB -- down--  ", "db-down"),
        ("snake_case_name", "snake_case_name"),
        ("___edges___", "edges"),
        ("a/b\\c.d:e", "a-b-c-d-e"),
        # Emoji are transliterated to their names, like any other character.
        ("🔥 prod", "fire-prod"),
        ("", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


@pytest.mark.parametrize(
    ("pattern", "number", "title", "severity", "expected"),
    [
        ("inc-{number}-{slug}", 1, "Café Zürich paiement", "sev3", "inc-1-cafe-zurich-paiement"),
        (
            "inc-{number}-{slug}",
            12,
            "Checkout API returning 500s",
            "sev1",
            "inc-12-checkout-api-returning-500s",
        ),
        ("inc-{number}-{slug}", 3, "DB — down!!! ¿¡", "sev2", "inc-3-db-down"),
        # A title with nothing left after transliteration leaves no trailing dash.
        ("inc-{number}-{slug}", 4, "!!! ???", "sev2", "inc-4"),
        (
            "{date}-{severity}-inc{number}-{slug}",
            5,
            "Disk full",
            "sev2",
            "20240501-sev2-inc5-disk-full",
        ),
        ("INC_{number}_{slug}", 6, "Disk Full", "sev4", "inc_6_disk-full"),
        ("incident {number} {slug}", 7, "Disk full", "sev4", "incident-7-disk-full"),
    ],
)
def test_channel_name(pattern: str, number: int, title: str, severity: str, expected: str) -> None:
    name = channel_name(pattern, number=number, title=title, severity=severity, at=AT)
    assert name == expected
    assert SLACK_NAME.match(name)


@pytest.mark.parametrize(
    "title",
    [
        "word " * 40,
        "x" * 200,
        "Database replica lag in eu-west-1 causing stale reads on the checkout and billing "
        "services for enterprise customers",
        "é" * 300,
    ],
)
def test_channel_name_is_cut_to_80_characters(title: str) -> None:
    name = channel_name("inc-{number}-{slug}", number=123456, title=title, severity="sev1", at=AT)
    assert len(name) <= MAX_CHANNEL_NAME
    assert name.startswith("inc-123456-")
    assert SLACK_NAME.match(name)
    assert not name.endswith(("-", "_"))


def test_channel_name_cuts_at_a_word_boundary() -> None:
    title = "database replica lag causing stale reads " * 3
    name = channel_name("inc-{number}-{slug}", number=1, title=title, severity="sev1", at=AT)
    words = set(slugify(title).split("-"))
    assert all(word in words for word in name.removeprefix("inc-1-").split("-"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("inc-1-db", ["inc-1-db", "inc-1-db-2", "inc-1-db-3", "inc-1-db-4"]),
        ("a" * 80, ["a" * 80, "a" * 78 + "-2", "a" * 78 + "-3", "a" * 78 + "-4"]),
        ("a" * 77 + "-bc", ["a" * 77 + "-bc", "a" * 77 + "-2", "a" * 77 + "-3", "a" * 77 + "-4"]),
    ],
)
def test_name_candidates(name: str, expected: list[str]) -> None:
    assert list(name_candidates(name, attempts=3)) == expected


def test_name_candidates_stay_within_slack_rules() -> None:
    candidates = list(name_candidates("x" * 80))
    assert len(candidates) == 21 and len(set(candidates)) == 21
    assert all(len(c) <= MAX_CHANNEL_NAME and SLACK_NAME.match(c) for c in candidates)


# -- Slack text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("<@U0BO|bo> is on it", "@bo is on it"),
        ("<@U0BO>", "@U0BO"),
        ("<#C0GENERAL|general>", "#general"),
        ("<#C0GENERAL>", "#C0GENERAL"),
        ("<!channel> <!here> <!everyone>", "@channel @here @everyone"),
        ("<!subteam^S0ONCALL|@oncall>", "@oncall"),
        ("<!subteam^S0ONCALL>", "@subteam"),
        ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
        ("<https://status.example.com|status page>", "status page (https://status.example.com)"),
        ("<https://status.example.com>", "https://status.example.com"),
        ("<mailto:ops@example.com|ops@example.com>", "ops@example.com (mailto:ops@example.com)"),
        ("a &lt;b&gt; &amp; c", "a <b> & c"),
        ("&lt;!channel&gt;", "<!channel>"),
        ("no markup", "no markup"),
    ],
)
def test_to_plain(text: str, plain: str) -> None:
    assert to_plain(text) == plain


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain", "plain"),
        ("a < b > c & d", "a &lt; b &gt; c &amp; d"),
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U0BO>", "&lt;@U0BO&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("@channel", f"@{WJ}channel"),
        ("@here now", f"@{WJ}here now"),
        ("@EVERYONE!", f"@{WJ}EVERYONE!"),
        ("@channels and @heres", "@channels and @heres"),
        ("@bo", "@bo"),
        ("&amp;", "&amp;amp;"),
    ],
)
def test_escape(text: str, escaped: str) -> None:
    assert escape(text) == escaped


@pytest.mark.parametrize(
    "text",
    [
        "<!channel>",
        "<!here|here>",
        "@channel",
        "@here",
        "@everyone",
        "<<!channel>>",
        "&lt;!channel&gt;",
        "x@here",
        "<!subteam^S1|@oncall>",
    ],
)
def test_escape_of_plain_text_never_leaves_a_live_mention(text: str) -> None:
    safe = escape(to_plain(text))
    assert not LIVE_BROADCAST.search(safe)
    assert "<" not in safe and ">" not in safe


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("INC-1: Checkout down", "INC-1: Checkout down"),
        ("Fish & chips <3", "Fish & chips <3"),
        ("@channel is down", f"@{WJ}channel is down"),
        ("<!here> it is", f"<{WJ}!here> it is"),
        ("@bo and @channels", "@bo and @channels"),
    ],
)
def test_inert_text_for_plain_text_fields(text: str, shown: str) -> None:
    assert inert(text) == shown
    assert not LIVE_BROADCAST.search(inert(text))


# -- durations -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("45s", timedelta(seconds=45)),
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("5d", timedelta(days=5)),
        ("90m", timedelta(minutes=90)),
        (" 15 m ", timedelta(minutes=15)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "30", "m", "30 minutes", "1h30m", "-5m", "0m", "1.5h", "2w", "30M", "1e3s"]
)
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        parse_duration(text)
