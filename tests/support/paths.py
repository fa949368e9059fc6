"""Where things are: the repository under test, and the data the tests read."""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
REPO = SUPPORT.parents[1]
# Canned Slack events, as Slack sends them.
PAYLOADS = SUPPORT / "payloads"
# The exports of one fixed incident, byte for byte (UPDATE_GOLDEN=1 rewrites them).
GOLDEN = SUPPORT / "golden"
