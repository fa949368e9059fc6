"""Prometheus metrics: one registry per app, counters fed where things happen, and the
database-backed figures read when Prometheus scrapes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.config import WarroomConfig
from bot.followups.rules import FollowUpStatus
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, WORKING_STATUSES, Severity
from bot.reminders.rules import first_update_due
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage import webhooks as webhook_store
from storage.db import Database

ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
PACING_BUCKETS = (0.0, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
LATE_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
# Incidents take minutes to days: 1m, 5m, 15m, 30m, 1h, 2h, 4h, 12h, 1d (then +Inf).
INCIDENT_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0, 86400.0)
# Each MTTx histogram: the milestone it times from declaration.
MILESTONES = {
    "acknowledge": "acknowledged_at",
    "mitigate": "mitigated_at",
    "resolve": "resolved_at",
}


class StoredCounts(Collector):
    """Incidents by status and severity, and timeline events by kind, as stored (so every
    replica reports the same totals)."""

    def __init__(self, db: Database, today: Callable[[], date]) -> None:
        self.db = db
        self.today = today

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """The stored counts, read from the database at each scrape."""
        incidents = GaugeMetricFamily(
            "warroom_incidents", "Incidents by status and severity.", labels=["status", "severity"]
        )
        events = GaugeMetricFamily(
            "warroom_timeline_events", "Timeline events recorded, by kind.", labels=["kind"]
        )
        followups = GaugeMetricFamily(
            "warroom_followups", "Follow-ups by status.", labels=["status"]
        )
        overdue = GaugeMetricFamily(
            "warroom_followups_overdue", "Open follow-ups whose due day has passed."
        )
        deliveries = GaugeMetricFamily(
            "warroom_webhook_deliveries",
            "Webhook deliveries by outcome (pending, delivered, given_up).",
            labels=["outcome"],
        )
        given_up = GaugeMetricFamily(
            "warroom_webhook_deliveries_given_up",
            "Webhook deliveries given up (a 4xx, or still failing a day after the first try).",
        )
        with self.db.reading() as session:
            for status, severity, count in incident_store.count_by_status_and_severity(session):
                incidents.add_metric([status, severity], count)
            for kind, count in timeline_store.count_by_kind(session):
                events.add_metric([kind], count)
            counted = dict(followup_store.count_by_status(session))
            # Every status, 0 included, so that a dashboard's series never vanish.
            for status in FollowUpStatus:
                followups.add_metric([status], counted.get(status, 0))
            overdue.add_metric([], followup_store.count_overdue(session, today=self.today()))
            by_outcome = dict(webhook_store.count_by_outcome(session))
        for outcome in ("pending", webhook_store.DELIVERED, webhook_store.GIVEN_UP):
            deliveries.add_metric([outcome], by_outcome.get(outcome, 0))
        given_up.add_metric([], by_outcome.get(webhook_store.GIVEN_UP, 0))
        yield incidents
        yield events
        yield followups
        yield overdue
        yield deliveries
        yield given_up


def histogram_buckets(seconds: list[float]) -> list[tuple[str, float]]:
    """Cumulative counts of `seconds` at each of INCIDENT_BUCKETS' bounds, then +Inf."""
    counts = [
        (str(bound), float(sum(1 for s in seconds if s <= bound))) for bound in INCIDENT_BUCKETS
    ]
    return [*counts, ("+Inf", float(len(seconds)))]


class IncidentClocks(Collector):
    """Time to acknowledge, mitigate and resolve by severity (declined and merged incidents left
    out), and how many open incidents owe a customer update: read from the database, in one
    query, at each scrape."""

    def __init__(self, db: Database, config: WarroomConfig, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.config = config
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        """The MTTx histograms and the overdue gauge, as of now."""
        with self.db.reading() as session:
            incidents = incident_store.incident_times(session)
        now = self.clock()
        counted = [i for i in incidents if i.status not in CLOSED_WITHOUT_RESOLUTION]
        for milestone, field in MILESTONES.items():
            family = HistogramMetricFamily(
                f"warroom_incident_time_to_{milestone}_seconds",
                f"Time from declaration to {milestone}, by severity (declined and merged "
                "incidents left out).",
                labels=["severity"],
            )
            for severity in Severity:
                seconds = [
                    max((reached - i.declared_at).total_seconds(), 0.0)
                    for i in counted
                    if i.severity == severity and (reached := getattr(i, field)) is not None
                ]
                family.add_metric([severity], histogram_buckets(seconds), sum(seconds))
            yield family
        overdue = GaugeMetricFamily(
            "warroom_incidents_update_overdue",
            "Open incidents whose customer update is overdue (by their severity's cadence).",
        )
        overdue.add_metric([], sum(1 for i in incidents if self._update_overdue(i, now)))
        yield overdue

    def _update_overdue(self, incident: incident_store.IncidentTimes, now: datetime) -> bool:
        if incident.status not in WORKING_STATUSES:
            return False
        # The reminder clock's own rule, so the gauge and the reminders agree.
        due = first_update_due(incident, self.config)
        return due is not None and due < now


class Metrics:
    """Every Prometheus metric warroom reports, in a registry of the app's own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.slack_requests = Counter(
            "warroom_slack_requests",
            "Requests from Slack by type and outcome.",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.ack_seconds = Histogram(
            "warroom_slack_ack_seconds",
            "Time from a Slack request to warroom's answer.",
            ["type"],
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.web_api_calls = Counter(
            "warroom_slack_web_api_calls",
            "Slack Web API calls by method and outcome (ok, an error code, ratelimited, ...).",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.post_wait_seconds = Histogram(
            "warroom_slack_post_wait_seconds",
            "Time a post waited for its channel's turn (about one message a second a channel).",
            buckets=PACING_BUCKETS,
            registry=self.registry,
        )
        self.reminders_fired = Counter(
            "warroom_reminders_fired",
            "Reminders and escalations sent, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.reminder_late = Histogram(
            "warroom_reminder_late_seconds",
            "How late reminders fired after they were due.",
            buckets=LATE_BUCKETS,
            registry=self.registry,
        )
        # Refusals with no incident to put them on (a declaration over the limit); the others
        # are `command_refused` timeline events, counted in warroom_timeline_events.
        self.commands_refused = Counter(
            "warroom_commands_refused",
            "Commands refused before any incident was involved, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.scheduler_running = Gauge(
            "warroom_scheduler_running",
            "1 while this process runs the reminder scheduler.",
            registry=self.registry,
        )
        self.scheduler_leader = Gauge(
            "warroom_scheduler_leader",
            "1 while this replica is elected to run the scheduler, 0 while it follows.",
            registry=self.registry,
        )
        self.backfilled_events = Counter(
            "warroom_backfilled_events",
            "Timeline entries recovered from Slack's history after downtime, by kind.",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("message", "message_edited"):
            self.backfilled_events.labels(kind=kind)
        self._ack_by_kind: dict[str, Any] = {}
        self._requests_by_kind: dict[tuple[str, str], Any] = {}

    def count_request(self, kind: str, outcome: str, seconds: float) -> None:
        """One Slack request answered: how long it took, and how it ended. On every event's
        path, so the labelled series are looked up once and kept."""
        timer = self._ack_by_kind.get(kind)
        if timer is None:
            timer = self._ack_by_kind[kind] = self.ack_seconds.labels(type=kind)
        timer.observe(seconds)
        counter = self._requests_by_kind.get((kind, outcome))
        if counter is None:
            counter = self.slack_requests.labels(type=kind, outcome=outcome)
            self._requests_by_kind[(kind, outcome)] = counter
        counter.inc()

    def watch(
        self,
        db: Database,
        scheduler_running: Callable[[], bool],
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        """Add the figures read at scrape time (`today`: the day due dates are judged on)."""
        self.registry.register(StoredCounts(db, today))
        self.scheduler_running.set_function(lambda: float(scheduler_running()))

    def watch_incidents(
        self, db: Database, config: WarroomConfig, clock: Callable[[], datetime]
    ) -> None:
        """Add the MTTx histograms and the overdue-update gauge, read at scrape time."""
        self.registry.register(IncidentClocks(db, config, clock))

    def watch_leadership(self, leading: Callable[[], bool]) -> None:
        """Report whether this replica holds the scheduler election."""
        self.scheduler_leader.set_function(lambda: float(leading()))


def request_type(body: dict[str, Any]) -> str:
    """A low-cardinality name for a Slack request: command, event:<type>, or its own type."""
    if "command" in body:
        return "command"
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        return "event:" + str((body.get("event") or {}).get("type") or "unknown")
    return kind
