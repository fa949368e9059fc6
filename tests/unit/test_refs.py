"""Incident references: ASCII digits within the 32-bit column, or nothing."""

from __future__ import annotations

import pytest

from bot.incidents.refs import MAX_INCIDENT_NUMBER, incident_number


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("7", 7),
        ("INC-7", 7),
        ("inc7", 7),
        (" INC-42 ", 42),
        (str(MAX_INCIDENT_NUMBER), MAX_INCIDENT_NUMBER),
        (str(MAX_INCIDENT_NUMBER + 1), None),
        ("99999999999999999999999", None),
        ("9" * 5000, None),  # int() itself refuses over 4,300 digits
        ("0", None),
        ("-1", None),
        ("²", None),
        ("INC-²", None),
        ("１", None),  # fullwidth
        ("٣", None),  # Arabic-Indic
        ("INC-7x", None),
        ("INC--7", None),
        ("", None),
    ],
)
def test_incident_number(text: str, number: int | None) -> None:
    assert incident_number(text) == number
