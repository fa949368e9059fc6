"""Exports of an incident's timeline. JSON follows DESIGN.md's schema exactly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from bot.errors import NotFoundError, UsageError
from bot.readmodels import IncidentView, incident_view
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.models import TimelineEvent

FORMATS = ("json",)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`."""
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _person(person_id: str | None, name: str | None) -> dict[str, Any] | None:
    if person_id is None and name is None:
        return None
    return {"id": person_id, "name": name}


def incident_document(incident: IncidentView) -> dict[str, Any]:
    return {
        "id": incident.ref,
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity,
        "status": incident.status,
        "channel": {"id": incident.channel_id, "name": incident.channel_name},
        "declared_by": _person(incident.declared_by.id, incident.declared_by.name),
        "declared_at": iso(incident.declared_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "mitigated_at": iso(incident.mitigated_at),
        "resolved_at": iso(incident.resolved_at),
        "roles": [
            {
                "role": r.role,
                "user": _person(r.user.id, r.user.name),
                "assigned_at": iso(r.assigned_at),
                "relieved_at": iso(r.relieved_at),
            }
            for r in incident.roles
        ],
    }


def event_document(event: TimelineEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "kind": event.kind,
        "actor": _person(event.actor_id, event.actor_name),
        "text": event.text,
        "slack_ts": event.slack_ts,
        "thread_ts": event.thread_ts,
        "data": event.data or {},
    }


def parse_incident_ref(ref: str) -> int:
    text = ref.strip().upper().removeprefix("INC-").removeprefix("INC")
    if not text.isdigit():
        raise UsageError(f"{ref!r} is not an incident id; write it like INC-7")
    return int(text)


def load_incident(session: Session, number: int) -> IncidentView:
    incident = incident_store.incident_by_number(session, number=number)
    if incident is None:
        raise NotFoundError(f"INC-{number} does not exist")
    return incident_view(session, incident)


def json_chunks(session: Session, incident: IncidentView) -> Iterator[str]:
    """The JSON export as chunks of text, one event at a time (never the whole list at once)."""
    head = json.dumps({"incident": incident_document(incident)}, ensure_ascii=False, indent=2)
    yield head[:-2] + ',\n  "events": ['
    first = True
    for event in timeline_store.events_for(session, incident_id=incident.id):
        yield ("\n    " if first else ",\n    ") + json.dumps(
            event_document(event), ensure_ascii=False
        )
        first = False
    yield "\n  ]\n}\n" if not first else "]\n}\n"
