"""A seeded set of incidents for the insights tests, written through the storage functions:
resolved, open, in triage, declined, merged, private, and one outside the window. The figures
the report should give are worked out by hand in tests/app/test_insights.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from storage import followups as followup_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday
SINCE = "2024-03-01"
UNTIL = "2024-03-12T14:00:00Z"
PRIVATE_TITLE = "Secret payroll leak"
PRIVATE_ALERT = "SecretPayrollAlert"


@dataclass(frozen=True)
class Seed:
    """One incident to write: its facts, minutes after its declaration."""

    title: str
    severity: str
    status: str
    declared_at: datetime
    ack: float | None = None
    mitigated: float | None = None
    resolved: float | None = None
    postmortem_done: float | None = None
    updates: tuple[float, ...] = ()
    alert: tuple[str, str] | None = None  # (group key, alertname)
    followups: tuple[str, ...] = ()
    private: bool = False


SEEDS = (
    Seed(  # INC-1: before the window
        "Old outage", "sev1", "resolved", datetime(2024, 2, 20, 9, 0, tzinfo=UTC), 0, 10, 20
    ),
    Seed(  # INC-2: sev1, updates on time, post-mortem on time
        "Checkout down",
        "sev1",
        "resolved",
        T0,
        ack=0,
        mitigated=30,
        resolved=60,
        postmortem_done=60 + 24 * 60,
        updates=(10, 40),
        alert=("g1", "HighErrorRate"),
        followups=("done", "open"),
    ),
    Seed(  # INC-3: private sev2, no update, post-mortem late
        PRIVATE_TITLE,
        "sev2",
        "resolved",
        T0 + timedelta(days=1),
        ack=20,
        resolved=180,
        postmortem_done=180 + 4 * 24 * 60,
        alert=("g1", PRIVATE_ALERT),
        followups=("dropped",),
        private=True,
    ),
    Seed(  # INC-4: declined: excluded
        "False alarm",
        "sev1",
        "declined",
        T0 + timedelta(days=2),
        updates=(5,),
        alert=("g3", "Flappy"),
        followups=("open",),
    ),
    Seed("Duplicate of checkout", "sev2", "merged", T0 + timedelta(days=2)),  # INC-5: merged
    Seed(  # INC-6: open sev3 in the next week
        "Disk filling up",
        "sev3",
        "investigating",
        datetime(2024, 3, 12, 10, 0, tzinfo=UTC),
        ack=5,
        updates=(30,),
        alert=("g2", "DiskFull"),
    ),
    Seed(  # INC-7: still in triage, sev4: counts as open
        "Odd latency", "sev4", "triage", datetime(2024, 3, 12, 11, 0, tzinfo=UTC)
    ),
)


def _at(seed: Seed, minutes: float | None) -> datetime | None:
    return None if minutes is None else seed.declared_at + timedelta(minutes=minutes)


def seed_incidents(db: Database) -> None:
    """Write SEEDS as INC-1 to INC-7."""
    with db.unit_of_work() as session:
        for seed in SEEDS:
            incident = incident_store.create_incident(
                session,
                number=incident_store.next_incident_number(session),
                title=seed.title,
                severity=seed.severity,
                declared_at=seed.declared_at,
                declared_by_id="U0ANA",
                declared_by_name="ana",
                origin_channel_id=None,
                source="alert" if seed.alert else "slack",
                alert_group_key=seed.alert[0] if seed.alert else None,
                is_private=seed.private,
            )
            assert incident.id is not None
            incident.status = seed.status
            incident.acknowledged_at = _at(seed, seed.ack)
            incident.mitigated_at = _at(seed, seed.mitigated)
            incident.resolved_at = _at(seed, seed.resolved)
            incident.postmortem_done_at = _at(seed, seed.postmortem_done)
            session.add(incident)
            session.flush()
            for minutes in seed.updates:
                timeline_store.add_event(
                    session,
                    incident_id=incident.id,
                    kind="customer_update",
                    at=seed.declared_at + timedelta(minutes=minutes),
                    actor_id="U0ANA",
                    actor_name="ana",
                    text="We are on it.",
                )
            if seed.alert:
                timeline_store.add_event(
                    session,
                    incident_id=incident.id,
                    kind="alert",
                    at=seed.declared_at,
                    actor_id=None,
                    actor_name="Alertmanager",
                    text=f"firing: {seed.alert[1]}",
                    data={"alerts": [{"labels": {"alertname": seed.alert[1]}}]},
                )
            for status in seed.followups:
                followup = followup_store.add_followup(
                    session,
                    incident_id=incident.id,
                    text=f"Follow-up ({status})",
                    at=seed.declared_at,
                    created_by_id="U0ANA",
                    created_by_name="ana",
                )
                followup.status = status
                session.add(followup)
            session.flush()
