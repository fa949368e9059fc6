"""Incident references as people and Slack hand them to us: `INC-7`, `inc7`, `7`."""

from __future__ import annotations

import re

# The incident number column is a 32-bit integer on PostgreSQL: anything larger names nothing.
MAX_INCIDENT_NUMBER = 2**31 - 1
# ASCII digits only: `\d` and `isdigit` also take '²' and other scripts' digits.
_REF = re.compile(r"(?:inc-?)?([0-9]{1,10})", re.IGNORECASE | re.ASCII)


def incident_number(text: str) -> int | None:
    """The number in `INC-7`, `inc7` or `7` (1 to 2**31-1); None for anything else."""
    match = _REF.fullmatch(text.strip())
    if match is None:
        return None
    number = int(match.group(1))
    return number if 1 <= number <= MAX_INCIDENT_NUMBER else None
