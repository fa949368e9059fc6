"""The clocks: APScheduler 3 with its job store in our database, checked against our own
reminder rows so that every reminder fires once, late after downtime but never twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import Session

from bot.clock import utc_now
from bot.config import WarroomConfig
from bot.followups.rules import (
    followup_view,
    reminded_followup,
    reminder_text,
    today_in,
    unowned_text,
)
from bot.followups.rules import still_wanted as followup_still_wanted
from bot.incidents.readmodels import IncidentView, incident_view
from bot.metrics import Metrics
from bot.outbox.sender import FLUSH_EVERY_SECONDS, OutboxSender
from bot.reminders.rules import (
    Notice,
    ReminderKind,
    ack_due,
    first_update_due,
    job_id,
    next_after,
    notices_for,
    repeat_interval,
    still_wanted,
)
from bot.webhooks.sender import WebhookSender
from storage import followups as followup_store
from storage import members as member_store
from storage import outbox as outbox_store
from storage import reminders as reminder_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import Incident, Reminder

log = logging.getLogger(__name__)

OUTBOX_JOB = "outbox:flush"
WEBHOOK_JOB = "webhooks:send"
ARCHIVE_JOB = "archive:sweep"
# How often the leader looks for war rooms due to be archived (their clocks run in days).
ARCHIVE_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class ClockChange:
    """A reminder row as it stood at commit, for the scheduler to follow."""

    reminder_id: int
    incident_id: int
    kind: str
    due_at: datetime
    seq: int
    active: bool

    @classmethod
    def of(cls, reminder: Reminder) -> ClockChange:
        """The change a reminder row stands for; the row must be flushed (it needs its id)."""
        assert reminder.id is not None
        return cls(
            reminder.id,
            reminder.incident_id,
            reminder.kind,
            reminder.due_at,
            reminder.seq,
            reminder.active,
        )


@dataclass(frozen=True)
class Fired:
    """A reminder that fired: its kind, how late, and the owed messages it committed."""

    kind: str
    late_seconds: float
    messages: list[int]


# APScheduler stores jobs as a function reference and plain arguments; the jobs below find the
# running process's Clocks here.
_running: Clocks | None = None


class SharedEngineJobStore(SQLAlchemyJobStore):  # type: ignore[misc]
    """APScheduler's job store on the app's own engine, which the Database disposes of: a
    scheduler stopped when its replica steps down must leave the engine working."""

    def shutdown(self) -> None:
        """Leave the engine alone: the Database owns it and disposes of it."""
        pass


async def fire_reminder_job(reminder_id: int, seq: int) -> None:
    """Scheduler job: fire one reminder if it is still due and still wanted."""
    if _running is not None:
        # A stopping scheduler cancels its jobs under way: a fire's unit of work commits or
        # not (its posts wait in the outbox either way), and a cancelled job ends quietly
        # rather than as a logged traceback.
        with contextlib.suppress(asyncio.CancelledError):
            await _running.fire(reminder_id, seq)


async def flush_outbox_job() -> None:
    """Scheduler job: send what the bot still owes Slack (after failures or a restart)."""
    if _running is not None:
        clocks = _running
        # The flush is shielded and tracked (stopping waits for it, within shutdown_grace);
        # the job that started it ends quietly when the stopping scheduler cancels it.
        with contextlib.suppress(asyncio.CancelledError):
            await clocks.outbox.flush(still_wanted=lambda: clocks._leading)


async def send_webhooks_job() -> None:
    """Scheduler job: POST the webhook deliveries that are due (first tries and retries)."""
    if _running is not None and _running.webhooks is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await _running.webhooks.flush()


async def sweep_archive_job() -> None:
    """Scheduler job: archive the war rooms that are due (see bot/archive)."""
    if _running is not None and _running.archive_sweep is not None:
        with contextlib.suppress(asyncio.CancelledError):
            await _running.archive_sweep()


class Clocks:
    """The reminder and outbox jobs on APScheduler, kept in step with the reminder rows."""

    def __init__(
        self,
        *,
        db: Database,
        outbox: OutboxSender,
        config: WarroomConfig,
        clock: Callable[[], datetime] = utc_now,
        outbox_every: float = FLUSH_EVERY_SECONDS,
        metrics: Metrics | None = None,
        webhooks: WebhookSender | None = None,
    ) -> None:
        self.db = db
        self.webhooks = webhooks
        self.metrics = metrics
        self.outbox_every = outbox_every
        self.outbox = outbox
        self.config = config
        self.clock = clock
        self.scheduler = self._new_scheduler()
        self._scheduler_used = False
        self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstore")
        self._stopping = False
        # True from start() until step_down() or stop(): job-store changes are welcome.
        self._leading = False
        # What the scheduler's jobs follow: reminder id -> (seq, active) as last applied.
        self._known: dict[int, tuple[int, bool]] = {}
        self.fired = 0
        # The archive sweep (bot.archive.service.ArchiveService.sweep), run by the leader only.
        self.archive_sweep: Callable[[], Awaitable[object]] | None = None

    def _new_scheduler(self) -> AsyncIOScheduler:
        return AsyncIOScheduler(
            # Its statements are single reads or writes: no need to wait for the write lock
            # before a read, as every other unit of work on SQLite does.
            jobstores={"default": SharedEngineJobStore(engine=self.db.deferred_engine())},
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
            timezone=UTC,
        )

    @property
    def running(self) -> bool:
        """True while this process's scheduler runs."""
        return bool(self.scheduler.running)

    async def start(self) -> None:
        """Start the scheduler and bring its jobs in line with the reminder rows."""
        global _running
        if self._stopping or self.scheduler.running:
            return
        if self._scheduler_used:
            # Leading again after stepping down: a fresh scheduler and job-store thread.
            self.scheduler = self._new_scheduler()
            self._jobs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jobstore")
        self._scheduler_used = True
        self._known.clear()
        self._leading = True
        _running = self
        # Paused until the jobs are repaired: a stale job left by a crash would otherwise start
        # first, and the right one, due too, be skipped as a second instance of the same id.
        self.scheduler.start(paused=True)
        changes = await self.db.run(
            lambda s: [ClockChange.of(r) for r in reminder_store.active_reminders(s)]
        )
        await self.follow(changes)
        self.scheduler.add_job(
            flush_outbox_job,
            "interval",
            seconds=self.outbox_every,
            id=OUTBOX_JOB,
            replace_existing=True,
            next_run_time=datetime.now(UTC),
        )
        if self.webhooks is not None and self.webhooks.webhooks:
            self.scheduler.add_job(
                send_webhooks_job,
                "interval",
                seconds=self.outbox_every,
                id=WEBHOOK_JOB,
                replace_existing=True,
                next_run_time=datetime.now(UTC),
            )
        if self.archive_sweep is not None:
            self.scheduler.add_job(
                sweep_archive_job,
                "interval",
                seconds=ARCHIVE_EVERY_SECONDS,
                id=ARCHIVE_JOB,
                replace_existing=True,
                next_run_time=datetime.now(UTC),
            )
        self.scheduler.resume()

    async def stop(self, *, drain: bool = True) -> None:
        """Stop for good (the process is shutting down); with `drain`, wait for the posts
        under way (without, the caller waits for them, within its own bound)."""
        if self._stopping:
            return  # stopped already (a test, then the app's cleanup)
        self._stopping = True
        await self._halt()
        if drain:
            # Posts already under way finish; whatever is still owed waits in the outbox.
            await self.outbox.drain()

    async def step_down(self) -> None:
        """Stop scheduling because another replica may lead now; start() may come again."""
        if self._leading:
            await self._halt()

    async def _halt(self) -> None:
        global _running
        was_leading, self._leading = self._leading, False
        if _running is self:
            _running = None  # a job that still starts finds no clocks and does nothing
        if was_leading:
            # Let job-store changes already queued finish (the queue is first in, first out),
            # and the wake-ups they asked for run, before the scheduler lets go of the loop.
            await asyncio.get_running_loop().run_in_executor(self._jobs, lambda: None)
            await asyncio.sleep(0)
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        self._jobs.shutdown(wait=True)

    async def follow(self, changes: list[ClockChange]) -> None:
        """Add, move or drop the scheduler jobs for reminder rows that changed. The job store
        is synchronous database work: it runs on one thread of its own, in order, never on
        the event loop that answers Slack."""
        if changes and self._leading and self.scheduler.running:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._jobs, self._follow_now, changes)

    async def sync(self) -> None:
        """Follow the reminder rows that other replicas changed: they commit the rows, but
        only the leader's scheduler holds jobs. The leader calls this every election round."""
        if not self._leading:
            return
        # A copy: the job-store thread may be adding to it meanwhile.
        known = self._known.copy()
        watched = [rid for rid, (_seq, active) in known.items() if active]

        def _read(session: Session) -> list[ClockChange]:
            rows = {r.id: r for r in reminder_store.active_reminders(session)}
            for rid in watched:
                # Active when last followed, not any more: its job has to go.
                if rid not in rows and (row := session.get(Reminder, rid)) is not None:
                    rows[rid] = row
            return [ClockChange.of(r) for r in rows.values()]

        changes = await self.db.run(_read)
        await self.follow([c for c in changes if self._is_news(c)])

    def _is_news(self, change: ClockChange) -> bool:
        known = self._known.get(change.reminder_id)
        return known is None or known[0] < change.seq

    def _follow_now(self, changes: list[ClockChange]) -> None:
        if not self.scheduler.running:
            return  # a process without a scheduler leaves the rows for the one that has it
        for change in changes:
            # A read that raced a newer change (sync against a request) must not undo it:
            # seq only grows, so an older or equal seq is old news.
            if not self._is_news(change):
                continue
            self._known[change.reminder_id] = (change.seq, change.active)
            ident = job_id(change.incident_id, change.kind)
            if not change.active:
                if self.scheduler.get_job(ident):
                    self.scheduler.remove_job(ident)
                continue
            self.scheduler.add_job(
                fire_reminder_job,
                "date",
                run_date=change.due_at,
                id=ident,
                args=[change.reminder_id, change.seq],
                replace_existing=True,
            )

    async def fire(self, reminder_id: int, seq: int) -> None:
        """Fire a reminder if still due and wanted: record it, queue its posts, set its next run."""
        now = self.clock()

        def _fire(session: Session) -> tuple[Fired | None, ClockChange | None]:
            reminder = reminder_store.claim_due(session, reminder_id=reminder_id, seq=seq, now=now)
            if reminder is None:
                return None, None
            incident = incident_view(session, session.get_one(Incident, reminder.incident_id))
            owed = self._owed(session, reminder.kind, incident, now)
            if owed is None:
                reminder_store.stop_reminder(session, incident_id=incident.id, kind=reminder.kind)
                return None, ClockChange.of(reminder)
            notices, every, extra = owed
            late = max(0.0, (now - reminder.due_at).total_seconds())
            event_kind = "escalation" if reminder.kind == ReminderKind.ACK else "reminder"
            timeline_store.add_event(
                session,
                incident_id=incident.id,
                kind=event_kind,
                at=now,
                text=notices[0].text if notices else None,
                data={
                    "reminder": reminder.kind,
                    **extra,
                    "due_at": reminder.due_at.isoformat(),
                    "late_seconds": round(late, 3),
                    "sent_to": [n.channel_id for n in notices],
                },
                dedupe_key=f"reminder:{reminder.id}:{reminder.seq}",
            )
            messages = [
                outbox_store.enqueue(
                    session, channel_id=n.channel_id, text=n.text, at=now, incident_id=incident.id
                ).id
                for n in notices
            ]
            fired = Fired(reminder.kind, late, [m for m in messages if m is not None])
            reminder.fired_count += 1
            if every is None:
                reminder.active = False
                reminder.seq += 1
            else:
                reminder.due_at = next_after(reminder.due_at, every, now)
                reminder.seq += 1
            session.add(reminder)
            session.flush()
            return fired, ClockChange.of(reminder)

        fired, change = await self.db.run(_fire)
        if change is not None:
            await self.follow([change])
        if fired is None:
            return
        if self.metrics is not None:
            # One label for every follow-up's reminder (`fu:3`, `fu:4`, ...): few series.
            label = "followup" if reminded_followup(fired.kind) else fired.kind
            self.metrics.reminders_fired.labels(kind=label).inc()
            self.metrics.reminder_late.observe(fired.late_seconds)
        if fired.messages:
            self.fired += 1
            # Posted after the job returns: a job that waits out Slack's retries is still
            # running when its clock's next run comes due, and APScheduler skips that run
            # (max_instances), which for a date job means the reminder is lost.
            self.outbox.send_later(fired.messages)

    def _owed(
        self, session: Session, kind: str, incident: IncidentView, now: datetime
    ) -> tuple[list[Notice], timedelta | None, dict[str, str]] | None:
        """What a due reminder of `kind` owes (its notices, when it comes again, what the
        timeline notes of it), or None when its reason has gone."""
        number = reminded_followup(kind)
        if number is not None:
            row = followup_store.get_followup(session, number=number)
            followup = followup_view(row, incident.number) if row is not None else None
            if followup is None or not followup_still_wanted(followup):
                return None
            assert followup.owner is not None and followup.owner.id is not None
            owner = followup.owner.id
            titled = not incident.private or owner in self.config.admins
            if not titled:
                titled = member_store.is_member(session, incident_id=incident.id, user_id=owner)
            text = reminder_text(followup, today_in(self.config.zone, now), titled=titled)
            every = self.config.followup_remind_every
            return [Notice(followup.owner.id, text)], every, {"followup": followup.ref}
        if not still_wanted(kind, incident):
            return None
        members = (
            frozenset(member_store.members(session, incident_id=incident.id))
            if incident.private
            else frozenset()
        )
        notices = notices_for(kind, incident, now, self.config, members)
        if kind == ReminderKind.POSTMORTEM and notices:
            # Each post-mortem reminder also puts the follow-ups nobody owns to the commander.
            unowned = followup_store.unowned_open(session, incident_id=incident.id)
            if unowned:
                views = [followup_view(f, incident.number) for f in unowned]
                listing = unowned_text(incident.commander, incident.ref, views)
                notices[0] = Notice(notices[0].channel_id, f"{notices[0].text}\n{listing}")
        return notices, repeat_interval(kind, incident, self.config), {}


def start_clocks(
    session: Session, incident: IncidentView, config: WarroomConfig
) -> list[ClockChange]:
    """The clocks a newly declared incident starts: customer updates, and acknowledgement."""
    changes = []
    for kind, due in (
        (ReminderKind.UPDATE, first_update_due(incident, config)),
        (ReminderKind.ACK, ack_due(incident, config)),
    ):
        if due is not None:
            changes.append(
                ClockChange.of(
                    # A new incident has no clock yet: nothing to read first.
                    reminder_store.add_reminder(
                        session, incident_id=incident.id, kind=kind, due_at=due
                    )
                )
            )
    return changes
