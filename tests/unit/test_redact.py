"""What `--redact` masks (email addresses, phone numbers, IPv4 and IPv6 addresses, configured
patterns), and what it leaves alone so that the timeline still reads."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.exports.redact import Redactor

REDACT = Redactor()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail ana@example.com now", "mail [email] now"),
        ("first.last+tag@mail.example.co.uk", "[email]"),
        ("<mailto:ops@example.com|ops@example.com>", "<mailto:[email]|[email]>"),
        ("call +49 30 1234567", "call [phone]"),
        ("call +1 (555) 123-4567 today", "call [phone] today"),
        ("call 030 1234 5678", "call [phone]"),
        ("call 555.123.4567", "call [phone]"),
        ("from 10.0.0.12 to 192.168.1.1", "from [ip] to [ip]"),
        ("http://10.0.0.12:8080/health", "http://[ip]:8080/health"),
        ("v6 2001:db8::1 and ::1", "v6 [ip] and [ip]"),
        ("link-local fe80::1%eth0 here", "link-local [ip] here"),
        ("full 2001:0db8:85a3:0000:0000:8a2e:0370:7334", "full [ip]"),
    ],
)
def test_masks(text: str, expected: str) -> None:
    assert REDACT.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "at 09:58 and 10:15:30",
        "on 2024-03-05 and 05.03.2024",
        "deploy 4711, PR #12345",
        "not an ip: 999.1.1.1",
        "mac aa:bb:cc:dd:ee:ff",
        "ts 1709629500.000100",
        "version 1.2.3",
        "@channel <@U0ANA> <!here>",
        "",
    ],
)
def test_leaves_the_story_alone(text: str) -> None:
    assert REDACT.text(text) == text


def test_configured_patterns() -> None:
    redactor = Redactor([r"ACME-\d{4}", r"(?i)secret\w*"])
    assert redactor.text("ticket ACME-1234 SecretSauce") == "ticket [redacted] [redacted]"


def test_a_bad_configured_pattern_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"redact_patterns: '\(' is not a regular expression"):
        Redactor(["("])


def test_off_passes_everything_through() -> None:
    off = Redactor.off()
    assert not off.enabled
    assert off.text("ana@example.com 10.0.0.1") == "ana@example.com 10.0.0.1"
    assert off.data({"a": ["ana@example.com"]}) == {"a": ["ana@example.com"]}
    assert off.text(None) is None


def test_data_is_masked_all_the_way_down() -> None:
    data = {
        "previous_text": "ask ana@example.com",
        "files": [{"name": "dump-10.0.0.12.txt", "size": 12}],
        "n": 3,
        "none": None,
    }
    assert REDACT.data(data) == {
        "previous_text": "ask [email]",
        "files": [{"name": "dump-[ip].txt", "size": 12}],
        "n": 3,
        "none": None,
    }
