"""/metrics reads MTTx histograms (time to acknowledge, mitigate, resolve, by severity) and a
gauge of open incidents owing a customer update from the database at each scrape (issue 17):
incidents seeded through storage, the expected counts worked out by hand below, declined and
merged incidents left out, the gauge judged on the services' injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from bot.incidents.enums import Status
from storage import incidents as incident_store
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom

# A severity named is taken as written: SEV4 has no cadence.
CONFIG = {
    "severities": {
        "sev1": {"update_every": "30m"},
        "sev2": {"update_every": "1h"},
        "sev3": {"update_every": "2h"},
        "sev4": {},
    },
    "postmortem_remind_every": None,
}
BOUNDS = ("60.0", "300.0", "900.0", "1800.0", "3600.0", "7200.0", "14400.0", "43200.0", "86400.0")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def seconds(n: float) -> timedelta:
    return timedelta(seconds=n)


async def scrape(room: Warroom) -> Samples:
    async with (
        aiohttp.ClientSession() as http,
        http.get(room.server.make_url("/metrics")) as response,
    ):
        assert response.status == 200
        body = await response.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def histogram(samples: Samples, milestone: str, severity: str) -> tuple[list[float], float, float]:
    """One severity's series: the cumulative bucket counts (BOUNDS, then +Inf), count and sum."""
    name = f"warroom_incident_time_to_{milestone}_seconds"
    buckets = [
        samples[(f"{name}_bucket", (("le", le), ("severity", severity)))]
        for le in (*BOUNDS, "+Inf")
    ]
    labels = (("severity", severity),)
    return buckets, samples[(f"{name}_count", labels)], samples[(f"{name}_sum", labels)]


def seed(session: Session, declared: datetime, now: datetime) -> None:
    """The incidents below, each declared at `declared` and changed as given."""

    def add(severity: str, status: Status, **times: datetime | None) -> None:
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title=f"{severity} {status}",
            severity=severity,
            declared_at=declared,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id="C0GENERAL",
            source="alertmanager",  # not acknowledged until told below
        )
        incident.status = status
        for name, value in times.items():
            setattr(incident, name, value)
        session.add(incident)

    at = declared
    # SEV1: acknowledged in 30 s, mitigated in 10 min, resolved in 1 h.
    add(
        "sev1",
        Status.RESOLVED,
        acknowledged_at=at + seconds(30),
        mitigated_at=at + seconds(600),
        resolved_at=at + seconds(3600),
    )
    # SEV1: acknowledged in 2 min, open, never updated: overdue (30 min cadence, 2 days on).
    add("sev1", Status.INVESTIGATING, acknowledged_at=at + seconds(120))
    # Declined and merged: fast, but left out of every histogram and never overdue.
    add("sev1", Status.DECLINED, acknowledged_at=at + seconds(5), resolved_at=at + seconds(10))
    add("sev2", Status.MERGED, acknowledged_at=at + seconds(1))
    # SEV2: acknowledged in 20 min, mitigated in 3 h, resolved in 2 days (past every bound).
    add(
        "sev2",
        Status.RESOLVED,
        acknowledged_at=at + seconds(1200),
        mitigated_at=at + seconds(10800),
        resolved_at=at + seconds(172800),
    )
    # SEV2: acknowledged at once; updated 10 min ago (1 h cadence): not overdue yet.
    add(
        "sev2",
        Status.MONITORING,
        acknowledged_at=at,
        last_update_at=now - timedelta(minutes=10),
    )
    # SEV2: acknowledged in 4 h; updated 2 h ago: overdue.
    add(
        "sev2",
        Status.IDENTIFIED,
        acknowledged_at=at + seconds(14400),
        last_update_at=now - timedelta(hours=2),
    )
    # SEV3 in triage: not acknowledged, and its update clock does not run yet.
    add("sev3", Status.TRIAGE)
    # SEV4: acknowledged in a day; no cadence, so never overdue.
    add("sev4", Status.INVESTIGATING, acknowledged_at=at + seconds(86400))


async def test_metrics_report_time_to_acknowledge_mitigate_and_resolve_by_severity(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, CONFIG, database_url=database_url)
    declared = clock.now - timedelta(days=2)
    await room.services.db.run(lambda session: seed(session, declared, clock.now))

    samples = await scrape(room)

    # acknowledge, SEV1: 30 s and 120 s (the declined incident's 5 s is left out).
    assert histogram(samples, "acknowledge", "sev1") == ([1, 2, 2, 2, 2, 2, 2, 2, 2, 2], 2, 150)
    # SEV2: 1,200 s, 0 s and 14,400 s (the merged incident's 1 s is left out).
    assert histogram(samples, "acknowledge", "sev2") == (
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3],
        3,
        15600,
    )
    # SEV3: nothing acknowledged; SEV4: exactly one day, on the last bound.
    assert histogram(samples, "acknowledge", "sev3") == ([0] * 10, 0, 0)
    assert histogram(samples, "acknowledge", "sev4") == ([0] * 8 + [1, 1], 1, 86400)
    # mitigate: SEV1 600 s; SEV2 10,800 s.
    assert histogram(samples, "mitigate", "sev1") == ([0, 0, 1, 1, 1, 1, 1, 1, 1, 1], 1, 600)
    assert histogram(samples, "mitigate", "sev2") == ([0] * 6 + [1, 1, 1, 1], 1, 10800)
    # resolve: SEV1 3,600 s (the declined one's 10 s left out); SEV2 two days, past 1 d.
    assert histogram(samples, "resolve", "sev1") == ([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], 1, 3600)
    assert histogram(samples, "resolve", "sev2") == ([0] * 9 + [1], 1, 172800)
    assert histogram(samples, "resolve", "sev4") == ([0] * 10, 0, 0)

    # The incidents gauge names the new states as stored (issue 16).
    for status, severity in (("declined", "sev1"), ("merged", "sev2"), ("triage", "sev3")):
        labels = (("severity", severity), ("status", status))
        assert samples[("warroom_incidents", labels)] == 1

    # Overdue now: the never-updated SEV1 and the SEV2 updated 2 h ago (1 h cadence).
    assert samples[("warroom_incidents_update_overdue", ())] == 2
    # 51 minutes on, the SEV2 updated 10 min ago is past its hour too.
    clock.advance(timedelta(minutes=51))
    assert (await scrape(room))[("warroom_incidents_update_overdue", ())] == 3


async def test_a_fresh_declaration_is_not_overdue_until_its_cadence_runs_out(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, CONFIG)
    await room.declare("Checkout down sev1")
    samples = await scrape(room)
    assert samples[("warroom_incidents_update_overdue", ())] == 0
    # Declared through Slack: acknowledged at once, so 0 s in the first bucket.
    assert histogram(samples, "acknowledge", "sev1") == ([1] * 10, 1, 0)

    clock.advance(timedelta(minutes=30))
    assert (await scrape(room))[("warroom_incidents_update_overdue", ())] == 0, "due, not past"
    clock.advance(timedelta(seconds=1))
    assert (await scrape(room))[("warroom_incidents_update_overdue", ())] == 1
