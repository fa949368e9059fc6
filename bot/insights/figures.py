"""The insights report's figures, computed from plain facts about each incident in a window.

Percentiles use the nearest-rank method: the p-th percentile of n sorted values is the value at
rank ceil(p * n) (1-based), so the median of 1, 2, 3, 4 is 2 and every figure is a real value."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.comms.ledger import comms_ledger
from bot.config import SeverityPolicy
from bot.followups.rules import FollowUpStatus
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, Severity, Status

MILESTONES = ("acknowledge", "mitigate", "resolve")
TOP = 5  # the noisiest alert groups and slowest incidents listed


@dataclass(frozen=True)
class IncidentFacts:
    """What the report needs of one incident, read from storage."""

    number: int
    title: str
    severity: str
    status: str
    private: bool
    declared_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    postmortem_done_at: datetime | None = None
    update_times: tuple[datetime, ...] = ()
    alert_group: str | None = None  # the alert group's key, for incidents an alert declared
    alertname: str | None = None
    followup_statuses: tuple[str, ...] = field(default_factory=tuple)


def nearest_rank(values: list[float], p: float) -> float | None:
    """The p-th percentile (0 < p <= 1) of `values` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(p * len(ordered)), 1) - 1]


def spread(values: list[float]) -> dict[str, Any]:
    """Count, median and p90 of some durations in seconds (whole seconds)."""
    median, p90 = nearest_rank(values, 0.5), nearest_rank(values, 0.9)
    return {
        "count": len(values),
        "median_seconds": None if median is None else int(median),
        "p90_seconds": None if p90 is None else int(p90),
    }


def week_start(at: datetime) -> datetime:
    """Monday 00:00 UTC of the week holding `at`."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if end is not None else None


def _durations(incidents: list[IncidentFacts]) -> dict[str, dict[str, Any]]:
    """Time to acknowledge, mitigate and resolve, for all and for each severity."""
    groups: dict[str, list[IncidentFacts]] = {"all": incidents}
    for severity in Severity:
        groups[severity] = [i for i in incidents if i.severity == severity]
    result = {}
    for name, group in groups.items():
        ends = {
            "acknowledge": [_seconds(i.declared_at, i.acknowledged_at) for i in group],
            "mitigate": [_seconds(i.declared_at, i.mitigated_at) for i in group],
            "resolve": [_seconds(i.declared_at, i.resolved_at) for i in group],
        }
        result[name] = {m: spread([s for s in ends[m] if s is not None]) for m in MILESTONES}
    return result


def _weekly(incidents: list[IncidentFacts], since: datetime, until: datetime) -> list[Any]:
    """Per week (Monday UTC) in the window: declared, resolved (of those), median resolve."""
    weeks = []
    start = week_start(since)
    while start < until:
        end = start + timedelta(days=7)
        declared = [i for i in incidents if start <= i.declared_at < end]
        resolved = [i for i in declared if i.resolved_at is not None]
        resolve = spread([_seconds(i.declared_at, i.resolved_at) or 0.0 for i in resolved])
        weeks.append(
            {
                "week_start": start.date().isoformat(),
                "declared": len(declared),
                "resolved": len(resolved),
                "resolve_median_seconds": resolve["median_seconds"],
            }
        )
        start = end
    return weeks


def _comms(
    incidents: list[IncidentFacts], policies: dict[str, SeverityPolicy], now: datetime
) -> dict[str, Any]:
    """Customer updates across incidents: deadlines met over deadlines due, first-update lag."""
    ledgers = [
        comms_ledger(
            declared_at=i.declared_at,
            ended_at=i.resolved_at or now,
            every=policies.get(i.severity, SeverityPolicy()).update_every,
            update_times=i.update_times,
        )
        for i in incidents
    ]
    due = sum(ledger.due for ledger in ledgers)
    missed = sum(ledger.missed for ledger in ledgers)
    firsts = [
        float(ledger.first_update_after_seconds)
        for ledger in ledgers
        if ledger.first_update_after_seconds is not None
    ]
    first = spread(firsts)
    return {
        "updates": sum(ledger.updates for ledger in ledgers),
        "due": due,
        "missed": missed,
        "on_time_ratio": round((due - missed) / due, 4) if due else None,
        "incidents_without_update": sum(1 for ledger in ledgers if ledger.updates == 0),
        "first_update_median_seconds": first["median_seconds"],
        "first_update_p90_seconds": first["p90_seconds"],
    }


def _postmortems(
    incidents: list[IncidentFacts], policies: dict[str, SeverityPolicy]
) -> dict[str, int]:
    """Resolved incidents whose severity wants a post-mortem; done; done by the deadline."""
    required = done = on_time = 0
    for incident in incidents:
        due_after = policies.get(incident.severity, SeverityPolicy()).postmortem_due
        if incident.resolved_at is None or due_after is None:
            continue
        required += 1
        if incident.postmortem_done_at is not None:
            done += 1
            on_time += incident.postmortem_done_at <= incident.resolved_at + due_after
    return {"required": required, "done": done, "done_on_time": on_time}


def _noisiest(incidents: list[IncidentFacts]) -> list[dict[str, Any]]:
    """Alert groups by how many incidents they declared, most first; names of private only
    incidents withheld."""
    counts = Counter(i.alert_group for i in incidents if i.alert_group)
    names: dict[str, str | None] = {}
    for incident in incidents:
        if incident.alert_group and not incident.private and incident.alertname:
            names.setdefault(incident.alert_group, incident.alertname)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], names.get(kv[0]) or "", kv[0]))
    return [{"alertname": names.get(key), "incidents": n} for key, n in ranked[:TOP]]


def _slowest(incidents: list[IncidentFacts]) -> list[dict[str, Any]]:
    resolved = [i for i in incidents if i.resolved_at is not None]
    resolved.sort(key=lambda i: (-(_seconds(i.declared_at, i.resolved_at) or 0), i.number))
    return [
        {
            "ref": f"INC-{i.number}",
            "title": None if i.private else i.title,
            "severity": i.severity,
            "resolve_seconds": int(_seconds(i.declared_at, i.resolved_at) or 0),
        }
        for i in resolved[:TOP]
    ]


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def insights(
    facts: list[IncidentFacts],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    policies: dict[str, SeverityPolicy],
) -> dict[str, Any]:
    """The report over incidents declared in [since, until): the JSON document's shape.
    Declined and merged incidents are counted as excluded and left out of every figure."""
    counted = [i for i in facts if i.status not in CLOSED_WITHOUT_RESOLUTION]
    statuses = Counter(i.status for i in counted)
    severities = Counter(i.severity for i in counted)
    followups = [s for i in counted for s in i.followup_statuses]
    return {
        "window": {"since": _iso(since), "until": _iso(until)},
        "incidents": {
            "declared": len(facts),
            "counted": len(counted),
            "excluded": {
                "declined": sum(1 for i in facts if i.status == Status.DECLINED),
                "merged": sum(1 for i in facts if i.status == Status.MERGED),
            },
            "private": sum(1 for i in counted if i.private),
            "by_severity": {s.value: severities.get(s, 0) for s in Severity},
            "by_status": {
                s.value: statuses.get(s, 0) for s in Status if s not in CLOSED_WITHOUT_RESOLUTION
            },
        },
        "durations": _durations(counted),
        "weekly": _weekly(counted, since, until),
        "comms": _comms(counted, policies, min(now, until)),
        "postmortems": _postmortems(counted, policies),
        "followups": {
            "opened": len(followups),
            "completed": followups.count(FollowUpStatus.DONE),
            "dropped": followups.count(FollowUpStatus.DROPPED),
            "open": followups.count(FollowUpStatus.OPEN),
        },
        "noisiest_alert_groups": _noisiest(counted),
        "slowest": _slowest(counted),
    }
