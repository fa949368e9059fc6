"""Read models built by hand, for the tests of pure functions (builders, reminders, Home)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.incidents.readmodels import IncidentView, Person, RoleView

AT = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def incident_view(**changes: Any) -> IncidentView:
    """INC-7, SEV1, investigating, declared by ana at `AT` and commanded by her; `changes`
    replace any field."""
    at = changes.get("declared_at", AT)
    base = IncidentView(
        id=1,
        number=7,
        title="Checkout down",
        severity="sev1",
        status="investigating",
        channel_id="C7",
        channel_name="inc-7-checkout-down",
        declared_by=Person("U0ANA", "ana"),
        declared_at=at,
        acknowledged_at=at,
        mitigated_at=None,
        resolved_at=None,
        header_ts=None,
        source="slack",
        last_update_at=None,
        postmortem_url=None,
        postmortem_done_at=None,
        roles=(RoleView("commander", Person("U0ANA", "ana"), at, None),),
    )
    return replace(base, **changes)
