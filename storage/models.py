"""SQLModel tables. Times are timezone-aware UTC everywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Date,
    DateTime,
    Index,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware UTC datetimes; SQLite hands them back naive, so put the zone back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The value to store: in UTC; a naive datetime is refused with ValueError."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """The stored value as an aware UTC datetime."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_column(*, nullable: bool = True, index: bool = False) -> Any:
    """A field for a timezone-aware UTC datetime column, None by default."""
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Counter(SQLModel, table=True):
    """Monotonic counters (incident numbers): bumped in place so a number is never reused."""

    name: str = Field(primary_key=True, max_length=40)
    value: int = 0


class Incident(SQLModel, table=True):
    """An incident: its title, severity and status, war room, milestones and post-mortem."""

    __table_args__ = (
        # One open incident per alert group: a group firing again joins it, even when two
        # notifications race on two replicas.
        Index(
            "uq_incident_open_alert_group",
            "alert_group_key",
            unique=True,
            sqlite_where=text("status NOT IN ('resolved', 'declined', 'merged')"),
            postgresql_where=text("status NOT IN ('resolved', 'declined', 'merged')"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: int = Field(unique=True)
    title: str = Field(max_length=200)
    severity: str = Field(max_length=8)
    status: str = Field(default="investigating", max_length=20)
    channel_id: str | None = Field(default=None, max_length=32, unique=True)
    channel_name: str | None = Field(default=None, max_length=80)
    origin_channel_id: str | None = Field(default=None, max_length=32)
    declared_by_id: str | None = Field(default=None, max_length=32)
    declared_by_name: str | None = Field(default=None, max_length=200)
    source: str = Field(default="slack", max_length=16)
    declared_at: datetime = utc_column(nullable=False)
    acknowledged_at: datetime | None = utc_column()
    mitigated_at: datetime | None = utc_column()
    resolved_at: datetime | None = utc_column()
    header_ts: str | None = Field(default=None, max_length=32)
    last_update_at: datetime | None = utc_column()
    postmortem_url: str | None = Field(default=None, max_length=500)
    postmortem_done_at: datetime | None = utc_column()
    # SHA-256 of Alertmanager's groupKey, for incidents an alert declared.
    alert_group_key: str | None = Field(default=None, max_length=64)
    # Until when one process has the war room's opening in hand; nobody else starts it before.
    opening_until: datetime | None = utc_column()
    # Seen outside its war room only by the room's members and the admins.
    is_private: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    # Where the announcement was posted, so that a decline or merge can amend it.
    announce_channel_id: str | None = Field(default=None, max_length=32)
    announce_ts: str | None = Field(default=None, max_length=32)
    # The incident this one was merged into (status `merged`).
    merged_into_id: int | None = Field(default=None)
    # When its war room was archived, by warroom or by hand.
    archived_at: datetime | None = utc_column()


class IncidentMember(SQLModel, table=True):
    """Someone in an incident's war room: invited by warroom, or joined as Slack told us (and
    gone when Slack says they left). Who may see a private incident outside its room."""

    __tablename__ = "incident_member"
    __table_args__ = (Index("ix_incident_member_user", "user_id"),)

    incident_id: int = Field(foreign_key="incident.id", primary_key=True)
    user_id: str = Field(primary_key=True, max_length=32)
    since: datetime = utc_column(nullable=False)


class RoleAssignment(SQLModel, table=True):
    """One spell of someone holding a role in an incident; open while `relieved_at` is None."""

    __tablename__ = "role_assignment"
    __table_args__ = (Index("ix_role_assignment_incident_role", "incident_id", "role"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    role: str = Field(max_length=16)
    user_id: str = Field(max_length=32)
    user_name: str | None = Field(default=None, max_length=200)
    assigned_by_id: str | None = Field(default=None, max_length=32)
    assigned_at: datetime = utc_column(nullable=False)
    relieved_at: datetime | None = utc_column()


class TimelineEvent(SQLModel, table=True):
    """One thing that happened in an incident, stored once however often Slack sends it."""

    __tablename__ = "timeline_event"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_timeline_event_dedupe_key"),
        Index("ix_timeline_event_incident_at", "incident_id", "at", "id"),
        Index("ix_timeline_event_incident_thread", "incident_id", "thread_at", "at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    at: datetime = utc_column(nullable=False)
    kind: str = Field(max_length=32)
    actor_id: str | None = Field(default=None, max_length=32, index=True)
    actor_name: str | None = Field(default=None, max_length=200)
    text: str | None = None
    slack_ts: str | None = Field(default=None, max_length=32)
    thread_ts: str | None = Field(default=None, max_length=32)
    # When the thread this event belongs to began (its own time if it is not a reply): sorting
    # on it streams every reply right after its parent, for exports that nest threads.
    thread_at: datetime = utc_column(nullable=False)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # What makes a redelivery recognisable: the message ts, or Slack's event_id.
    dedupe_key: str | None = Field(default=None, max_length=200)


class SlackUser(SQLModel, table=True):
    """Display names resolved through users.info, kept so the ack path never waits on Slack."""

    __tablename__ = "slack_user"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    handle: str | None = Field(default=None, max_length=200, index=True)
    updated_at: datetime = utc_column(nullable=False)
    # An app, not a person: roles never go to it, even when its name is already known.
    is_bot: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class Reminder(SQLModel, table=True):
    """One clock per incident and kind: the source of truth that scheduler jobs are checked
    against, so a stale or doubled job can never post."""

    __table_args__ = (UniqueConstraint("incident_id", "kind", name="uq_reminder_incident_kind"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incident.id")
    kind: str = Field(max_length=16)
    due_at: datetime = utc_column(nullable=False, index=True)
    # Bumped whenever the clock moves; a job carrying an older value is stale and does nothing.
    seq: int = 0
    active: bool = True
    fired_count: int = 0


class OutboxMessage(SQLModel, table=True):
    """A message the bot owes Slack, committed before it is sent, marked once Slack took it."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_pending", "posted_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int | None = Field(default=None, foreign_key="incident.id")
    channel_id: str = Field(max_length=32)
    text: str
    created_at: datetime = utc_column(nullable=False)
    posted_at: datetime | None = utc_column()
    slack_ts: str | None = Field(default=None, max_length=32)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=200)
    # Which process is sending it, until when: two replicas never post the same message.
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = utc_column()


class WebhookDelivery(SQLModel, table=True):
    """A timeline event owed to a configured webhook: committed with the event, posted (and
    retried) from the background under one id, marked delivered or given up."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_pending", "finished_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    # The X-Warroom-Delivery header: the same on every retry, so receivers can dedupe.
    delivery_id: str = Field(max_length=36, unique=True)
    # Which configured webhook (its place in the list) and its URL when enqueued.
    webhook: int
    url: str = Field(max_length=500)
    incident_id: int = Field(foreign_key="incident.id")
    event_id: int = Field(foreign_key="timeline_event.id")
    kind: str = Field(max_length=40)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = utc_column(nullable=False)
    next_attempt_at: datetime = utc_column(nullable=False)
    attempts: int = 0
    # The day a receiver has before the delivery is given up runs from its first failure.
    first_failed_at: datetime | None = utc_column()
    last_error: str | None = Field(default=None, max_length=200)
    # delivered or given_up once finished; null while owed.
    outcome: str | None = Field(default=None, max_length=16)
    finished_at: datetime | None = utc_column()
    claimed_by: str | None = Field(default=None, max_length=64)
    claimed_until: datetime | None = utc_column()


class FollowUp(SQLModel, table=True):
    """Work an incident leaves behind: FU-<id>, numbered across the deployment, with an owner,
    a due date and a status (open, done or dropped)."""

    __tablename__ = "followup"
    __table_args__ = (
        Index("ix_followup_incident", "incident_id", "id"),
        Index("ix_followup_owner_status", "owner_id", "status"),
    )

    # Taken from the `followup` counter, not the database's sequence: never reused, no gaps.
    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    incident_id: int = Field(foreign_key="incident.id")
    text: str
    owner_id: str | None = Field(default=None, max_length=32)
    owner_name: str | None = Field(default=None, max_length=200)
    due: date | None = Field(default=None, sa_column=Column(Date(), nullable=True))
    status: str = Field(default="open", max_length=16)
    reason: str | None = None
    created_at: datetime = utc_column(nullable=False)
    created_by_id: str | None = Field(default=None, max_length=32)
    created_by_name: str | None = Field(default=None, max_length=200)
    closed_at: datetime | None = utc_column()
    # The war-room message it was made from (the "Make a follow-up" shortcut).
    source_ts: str | None = Field(default=None, max_length=32)
