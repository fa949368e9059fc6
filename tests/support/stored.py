"""Rows written straight through storage, for the storage tests that need an incident first."""

from __future__ import annotations

from datetime import datetime

from storage import incidents as incident_store
from storage.db import Database


def stored_incident(
    db: Database, *, declared_at: datetime, title: str = "Checkout down", private: bool = False
) -> int:
    """A new incident (sev2, declared by ana) committed in its own unit of work; its id."""
    with db.unit_of_work() as session:
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title=title,
            severity="sev2",
            declared_at=declared_at,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id=None,
            is_private=private,
        )
        assert incident.id is not None
        return incident.id
