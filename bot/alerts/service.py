"""Alerts in: a firing group declares an incident (once per open incident), anything after
that joins its timeline, and a resolved notification is noted but never resolves anything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.alerts.alertmanager import (
    DEFAULT_SEVERITY_LABELS,
    Notification,
    alert_text,
    group_hash,
    is_private,
    severity_for,
    summary_data,
    title_for,
)
from bot.config import WarroomConfig
from bot.incidents.readmodels import Person, incident_view
from bot.incidents.service import IncidentService, declared_event
from bot.outbox.sender import OutboxSender
from bot.reminders.scheduler import ClockChange, Clocks, start_clocks
from bot.tasks import BackgroundTasks
from storage import incidents as incident_store
from storage import outbox as outbox_store
from storage import timeline as timeline_store
from storage.db import Database

log = logging.getLogger(__name__)

ALERTMANAGER = Person(None, "Alertmanager")


@dataclass
class AlertOutcome:
    """What storing a notification did: the incident it landed on (if any) and the work left."""

    incident_ref: str | None
    declared: bool = False
    recorded: bool = False
    incident_id: int | None = None
    clocks: list[ClockChange] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    # Recorded while the war room was still being opened: post it once the channel exists.
    post_when_open: bool = False


class AlertService:
    """Alertmanager in: a firing group declares an incident; what follows joins its timeline."""

    def __init__(
        self,
        *,
        db: Database,
        incidents: IncidentService,
        clocks: Clocks,
        outbox: OutboxSender,
        config: WarroomConfig,
        tasks: BackgroundTasks,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.incidents = incidents
        self.clocks = clocks
        self.outbox = outbox
        self.config = config
        self.tasks = tasks
        self.clock = clock
        # War rooms this process is opening for alerts, set once each is open (or failed).
        self._opening: dict[int, asyncio.Event] = {}

    async def receive(self, notification: Notification, *, key: str) -> AlertOutcome:
        """Store the notification (once, by `key`); the Slack work runs after the commit."""
        now = self.clock()
        try:
            outcome = await self.db.run(lambda s: self._store(s, notification, key, now))
        except IntegrityError:
            # Another process declared this group a moment ago: join its incident instead.
            outcome = await self.db.run(lambda s: self._store(s, notification, key, now))
        if outcome.declared and outcome.incident_id is not None:
            # Marked before any await, so that notifications racing in wait for the room.
            self._opening[outcome.incident_id] = asyncio.Event()
            self.tasks.spawn(self._open_and_post(outcome.incident_id, notification))
        elif outcome.post_when_open and outcome.incident_id is not None:
            self.tasks.spawn(self._post_when_open(outcome.incident_id, notification))
        for message_id in outcome.messages:
            self.tasks.spawn(self.outbox.send(message_id))
        # Off the ack path: the reminder rows are committed, and they are what counts.
        self.tasks.spawn(self.clocks.follow(outcome.clocks))
        return outcome

    def _store(
        self, session: Session, notification: Notification, key: str, now: datetime
    ) -> AlertOutcome:
        group = group_hash(notification)
        incident = incident_store.open_incident_for_alert_group(session, group_key=group)
        if incident is None and notification.status == "resolved":
            # Resolved with nothing open: note it on the group's last incident, if any.
            incident = incident_store.last_incident_for_alert_group(session, group_key=group)
            if incident is None:
                return AlertOutcome(incident_ref=None)
        outcome = AlertOutcome(incident_ref=None)
        if incident is None:
            mapping = {**DEFAULT_SEVERITY_LABELS, **self.config.alert_severities}
            incident = self.incidents.new_incident(
                session,
                title=title_for(notification),
                severity=severity_for(notification, mapping, self.config.default_severity),
                at=now,
                declarer=ALERTMANAGER,
                origin_channel_id=None,
                source="alert",
                alert_group_key=group,
                private=is_private(notification),
                triage=True,  # a person decides whether an alert is an incident
            )
            declared_event(session, incident)
            outcome.declared = True
            outcome.clocks = start_clocks(session, incident_view(session, incident), self.config)
        assert incident.id is not None
        # Never before the declaration: a notification that lost the race to declare took its
        # time before the winner took its own.
        now = max(now, incident.declared_at)
        outcome.incident_ref = f"INC-{incident.number}"
        outcome.incident_id = incident.id
        outcome.recorded = timeline_store.add_event(
            session,
            incident_id=incident.id,
            kind="alert",
            at=now,
            actor_id=ALERTMANAGER.id,
            actor_name=ALERTMANAGER.name,
            text=f"{notification.status}: {title_for(notification)}",
            data=summary_data(notification),
            # Per incident: Alertmanager repeats a group that still fires with the very same
            # body, and after a resolution that repeat declares a new incident it belongs to.
            dedupe_key=f"{key}:{incident.id}",
        )
        if outcome.recorded and not outcome.declared and not incident.channel_id:
            outcome.post_when_open = True
        elif outcome.recorded and incident.channel_id and not outcome.declared:
            message = outbox_store.enqueue(
                session,
                channel_id=incident.channel_id,
                text=alert_text(notification),
                at=now,
                incident_id=incident.id,
            )
            assert message.id is not None
            outcome.messages.append(message.id)
        return outcome

    async def _open_and_post(self, incident_id: int, notification: Notification) -> None:
        try:
            await self.incidents.open_war_room(incident_id, response_url=None)
            await self._post(incident_id, notification)
        finally:
            opened = self._opening.pop(incident_id, None)
            if opened is not None:
                opened.set()

    async def _post_when_open(self, incident_id: int, notification: Notification) -> None:
        """A notification that came while the war room was being opened: post it after the
        one that declared the incident (when this process is the one opening the room)."""
        opening = self._opening.get(incident_id)
        if opening is not None:
            await opening.wait()
        if not await self._post(incident_id, notification):
            log.warning(
                "incident %s has no war room; an alert stays on its timeline only", incident_id
            )

    async def _post(self, incident_id: int, notification: Notification) -> bool:
        incident = await self.incidents.find_by_id(incident_id)
        if incident.channel_id is None:
            return False
        now = self.clock()
        message = await self.db.run(
            lambda s: (
                outbox_store.enqueue(
                    s,
                    channel_id=incident.channel_id or "",
                    text=alert_text(notification),
                    at=now,
                    incident_id=incident_id,
                ).id
            )
        )
        if message is not None:
            await self.outbox.send(message)
        return True
