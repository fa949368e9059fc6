"""The insights report: its window parsed from what a person typed, its facts read from
storage, its figures computed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlmodel import Session

from bot.config import WarroomConfig
from bot.durations import parse_duration
from bot.errors import UsageError
from bot.insights.figures import IncidentFacts, insights
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import timeline as timeline_store

DEFAULT_SINCE = "30d"
MAX_WINDOW = timedelta(days=366 * 5)  # a window bigger than this is a typo


@dataclass(frozen=True)
class Window:
    """Incidents declared at or after `since` and before `until` (UTC)."""

    since: datetime
    until: datetime


def _moment(text: str, name: str) -> datetime:
    """A date (YYYY-MM-DD, its midnight UTC) or an ISO 8601 time with an offset."""
    text = text.strip()
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{name} {text[:40]!r} is not a date like 2024-03-01 or a duration like 30d"
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"{name} {text[:40]!r} needs a time zone, like 2024-03-01T09:00Z")
    return moment.astimezone(UTC)


def parse_window(since: str | None, until: str | None, *, now: datetime) -> Window:
    """The window from `--since 30d|DATE` and `--until DATE` (default now); UsageError naming
    the problem otherwise."""
    end = _moment(until, "until") if until else now
    since_text = (since or DEFAULT_SINCE).strip()
    if since_text[:1].isdigit() and not since_text[-1:].isdigit():
        try:
            start = end - parse_duration(since_text)
        except ValueError as exc:
            raise UsageError(f"since: {exc}") from None
    else:
        start = _moment(since_text, "since")
    if start >= end:
        raise UsageError("since must come before until")
    if end - start > MAX_WINDOW:
        raise UsageError("the window is more than five years long; narrow it with --since")
    return Window(since=start, until=end)


def read_facts(session: Session, window: Window) -> list[IncidentFacts]:
    """What the report needs of every incident declared in the window, in a few queries."""
    rows = incident_store.declared_between(session, since=window.since, until=window.until)
    ids = [r.id for r in rows if r.id is not None]
    updates: dict[int, list[datetime]] = defaultdict(list)
    for event in timeline_store.events_of_kind_for(
        session, incident_ids=ids, kind="customer_update"
    ):
        updates[event.incident_id].append(event.at)
    alertnames: dict[int, str] = {}
    for event in timeline_store.events_of_kind_for(session, incident_ids=ids, kind="alert"):
        alertnames.setdefault(event.incident_id, _alertname(event.data or {}))
    statuses: dict[int, list[str]] = defaultdict(list)
    for followup in followup_store.followups_of_incidents(session, incident_ids=ids):
        statuses[followup.incident_id].append(followup.status)
    return [
        IncidentFacts(
            number=r.number,
            title=r.title,
            severity=r.severity,
            status=r.status,
            private=r.is_private,
            declared_at=r.declared_at,
            acknowledged_at=r.acknowledged_at,
            mitigated_at=r.mitigated_at,
            resolved_at=r.resolved_at,
            postmortem_done_at=r.postmortem_done_at,
            update_times=tuple(updates.get(r.id or 0, ())),
            alert_group=r.alert_group_key,
            alertname=alertnames.get(r.id or 0) or None,
            followup_statuses=tuple(statuses.get(r.id or 0, ())),
        )
        for r in rows
    ]


def _alertname(data: dict[str, Any]) -> str:
    """The `alertname` label of an alert event's first alert ('' when it has none)."""
    alerts = data.get("alerts") or [{}]
    labels = alerts[0].get("labels") if isinstance(alerts[0], dict) else None
    return str((labels or {}).get("alertname") or "")


def build_report(
    session: Session, window: Window, *, config: WarroomConfig, now: datetime
) -> dict[str, Any]:
    """The insights report over `window` as a JSON-ready document."""
    return insights(
        read_facts(session, window),
        since=window.since,
        until=window.until,
        now=now,
        policies=config.severities,
    )
