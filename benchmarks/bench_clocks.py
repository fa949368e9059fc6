"""How late warroom's reminders fire with many open incidents, and what the clocks cost when idle.

Everything runs in this process on 127.0.0.1: the real services from `bot.app.build_services` on
a freshly migrated database, and the fake Slack Web API from the tests. Prints figures; exits 1
when a reminder fired twice or not at all, 2 when the deadline passed.

    python benchmarks/bench_clocks.py [--database-url URL] [--incidents N] [--burst B]
                                      [--lead S] [--window S] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine, event
from sqlmodel import col, select

from bot.app import Services, build_services
from bot.config import Settings, WarroomConfig
from bot.reminders.rules import ReminderKind
from bot.reminders.scheduler import Clocks
from storage import incidents as incident_store
from storage import reminders as reminder_store
from storage.models import OutboxMessage, Reminder, TimelineEvent

# benchmarks/ is not installed; run from anywhere in the repo.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ack import _redacted, bounded, fresh_database  # noqa: E402
from bot.demo.standin.slack_api import Call, FakeSlack  # noqa: E402

TOKEN = "xoxb-x"
SECRET = "s"
SEVERITY = "sev2"  # an update reminder every hour (the default policy)
BURST_SPACING_S = 0.0001  # the burst's reminders are due this far apart
GRACE_S = 30.0  # how long after the last due time to wait for reminders still to fire
SETTLE_S = 1.0  # how long to keep watching for doubles once every reminder has fired
DRAIN_S = 10.0  # how long to wait, after that, for the outbox to record the posts
LAG_TICK_S = 0.005  # the event-loop lag probe's period
STALL_S = 0.1  # a probe late by more than this counts as a stall


# -- instruments ----------------------------------------------------------------------------------


class TimedCalls(list[Call]):
    """The fake Slack's call log, stamped with the wall time each request arrived (before the
    fake's configured latency)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: list[float] = []

    def append(self, call: Call) -> None:
        self.arrived.append(time.time())
        super().append(call)

    def posts(self) -> list[tuple[float, str]]:
        """(arrival, channel) of every chat.postMessage."""
        return [
            (at, str(call.args.get("channel", "")))
            for at, call in zip(self.arrived, self, strict=True)
            if call.method == "chat.postMessage"
        ]


class StatementCounter:
    """SQL statements sent through an engine, split by whether the event loop's thread sent
    them (and so waited for the database with every coroutine stopped) or a pool thread did."""

    def __init__(self, engine: Engine) -> None:
        self.loop_thread = threading.get_ident()
        self.on_loop = 0
        self.elsewhere = 0
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *_args: Any) -> None:
        with self._lock:
            if threading.get_ident() == self.loop_thread:
                self.on_loop += 1
            else:
                self.elsewhere += 1

    def snapshot(self) -> tuple[int, int]:
        with self._lock:
            return self.on_loop, self.elsewhere


class WakeupCounter:
    """Counts an APScheduler scheduler's passes over its job stores (`_process_jobs`)."""

    def __init__(self, scheduler: Any) -> None:
        self.count = 0
        inner: Callable[[], float | None] = scheduler._process_jobs

        def counted() -> float | None:
            self.count += 1
            return inner()

        scheduler._process_jobs = counted


@dataclass
class LoopLag:
    """A probe that sleeps LAG_TICK_S at a time and records how much later than asked it woke:
    time the event loop could not run anything else. Off during the idle measurements."""

    lags: list[float] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.lags.clear()
        self._task = asyncio.get_running_loop().create_task(self._probe())

    async def stop(self) -> list[float]:
        # A probe held up by a stall records it only when it wakes; let it.
        await asyncio.sleep(3 * LAG_TICK_S)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        return list(self.lags)

    async def _probe(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.lags.append(max(0.0, time.perf_counter() - before - LAG_TICK_S))


class LogTally(logging.Handler):
    """Prints the first few WARNING-or-worse records of each kind (logger and message
    template) that warroom and APScheduler log, and counts the rest."""

    def __init__(self, shown: int = 3) -> None:
        super().__init__(logging.WARNING)
        self.shown = shown
        self.counts: Counter[tuple[str, str]] = Counter()
        self.setFormatter(logging.Formatter("    [log] %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        key = (record.name, str(record.msg))
        self.counts[key] += 1
        if self.counts[key] <= self.shown:
            print(self.format(record), flush=True)

    def summary(self) -> None:
        for (name, template), count in self.counts.items():
            if count > self.shown:
                print(f"    [log] {name}: {count - self.shown} more like {template!r}")


def stall_summary(lags: Sequence[float]) -> str:
    if not lags:
        return "no probe ran"
    stalls = sum(1 for lag in lags if lag > STALL_S)
    return (
        f"longest event-loop stall {max(lags) * 1000:.0f} ms, "
        f"{stalls} stalls over {STALL_S * 1000:.0f} ms"
    )


# -- the world ------------------------------------------------------------------------------------


def start_services(database_url: str, api_url: str) -> tuple[Services, WarroomConfig]:
    settings = Settings(
        _env_file=None,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        database_url=database_url,
    )
    config = WarroomConfig()
    return build_services(settings, config), config


async def close_services(services: Services) -> None:
    await services.clocks.stop()
    await asyncio.sleep(0.05)  # AsyncIOScheduler shuts down on the loop's next turn
    await services.tasks.join()
    if services.client.session is not None:
        await services.client.session.close()
    services.db.close()


def room_id(index: int) -> str:
    return f"CBENCH{index:06d}"


def seed_incidents(services: Services, fake: FakeSlack, count: int) -> dict[str, int]:
    """`count` open sev2 incidents declared an hour ago, each with a war room the fake knows;
    the incident id of each war room."""
    declared = datetime.now(UTC) - timedelta(hours=1)
    rooms: dict[str, int] = {}
    with services.db.unit_of_work() as session:
        for index in range(count):
            number = incident_store.next_incident_number(session)
            incident = incident_store.create_incident(
                session,
                number=number,
                title=f"Bench incident {index}",
                severity=SEVERITY,
                declared_at=declared,
                declared_by_id="U0BENCH",
                declared_by_name="bench",
                origin_channel_id="C0GENERAL",
            )
            assert incident.id is not None
            channel, name = room_id(index), f"inc-{number}-bench"
            incident_store.set_incident_channel(
                session, incident_id=incident.id, channel_id=channel, channel_name=name
            )
            fake.add_channel(channel, name)
            rooms[channel] = incident.id
    return rooms


def due_offsets(count: int, burst: int, lead: float, window: float) -> list[tuple[float, bool]]:
    """Seconds from now at which each reminder is due, and whether it is one of the `burst`
    packed together in the middle of the window; the rest are spread evenly over it. Shuffled,
    so that neither group is a run of neighbouring incidents."""
    burst = min(burst, count)
    spread = count - burst
    offsets = [(lead + window * (i + 0.5) / spread, False) for i in range(spread)]
    offsets += [(lead + window / 2 + i * BURST_SPACING_S, True) for i in range(burst)]
    random.Random(7).shuffle(offsets)
    return offsets


def set_reminders(
    services: Services, incident_ids: Sequence[int], offsets: Sequence[float]
) -> dict[int, datetime]:
    """An update reminder for each incident, due `offsets` seconds from now; the due times."""
    now = datetime.now(UTC)
    due = {
        incident_id: now + timedelta(seconds=offset)
        for incident_id, offset in zip(incident_ids, offsets, strict=True)
    }
    with services.db.unit_of_work() as session:
        for incident_id, at in due.items():
            reminder_store.set_reminder(
                session, incident_id=incident_id, kind=ReminderKind.UPDATE, due_at=at
            )
    return due


# -- start-up reconciliation ----------------------------------------------------------------------


@dataclass(frozen=True)
class Reconciled:
    returned_s: float  # until `await clocks.start()` returned
    drained_s: float  # until the loop had run the scheduler wake-ups start() queued
    jobs: int
    statements_on_loop: int
    statements_elsewhere: int
    wakeups: int
    lags: list[float]


async def reconcile(clocks: Clocks, counter: StatementCounter) -> Reconciled:
    """Start `clocks` and time it, down to the last scheduler wake-up that start() queued."""
    lag = LoopLag()
    lag.start()
    await asyncio.sleep(2 * LAG_TICK_S)
    wakeups = WakeupCounter(clocks.scheduler)
    loop_before, else_before = counter.snapshot()
    started = time.perf_counter()
    await clocks.start()
    returned = time.perf_counter() - started
    # Each job added called wakeup(), which queued a pass over the job store with
    # call_soon_threadsafe; this task resumes after those have run.
    await asyncio.sleep(0)
    drained = time.perf_counter() - started
    loop_after, else_after = counter.snapshot()
    lags = await lag.stop()
    jobs = len(await asyncio.to_thread(clocks.scheduler.get_jobs))
    return Reconciled(
        returned,
        drained,
        jobs,
        loop_after - loop_before,
        else_after - else_before,
        wakeups.count,
        lags,
    )


def print_reconciled(label: str, reminders: int, figures: Reconciled) -> None:
    print(
        f"{label}: {reminders} reminders -> {figures.jobs} jobs; start() returned after "
        f"{figures.returned_s:.2f} s, its queued scheduler wake-ups ({figures.wakeups}) were "
        f"done after {figures.drained_s:.2f} s"
    )
    print(
        f"    SQL statements: {figures.statements_on_loop} on the event-loop thread, "
        f"{figures.statements_elsewhere} on the database pool; {stall_summary(figures.lags)}"
    )


# -- firing ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    started_late: dict[int, list[float]]  # incident -> late_seconds of its 'reminder' events
    posted_late: dict[int, list[float]]  # incident -> Slack arrival minus due time
    unsent: int
    unsent_but_received: int  # of those, messages whose war room Slack already got a post in
    moved_on: int  # reminder rows active, fired once and due an interval later
    lags: list[float]
    cpu_s: float  # process CPU time from the end of reconciliation to the last post (+ settle)
    wall_s: float
    statements_on_loop: int
    statements_elsewhere: int


async def wait_for_posts(calls: TimedCalls, expected: int, until: float) -> None:
    while time.time() < until:
        if len(calls.posts()) >= expected:
            return
        await asyncio.sleep(0.05)


def stored_outcome(
    services: Services, due: dict[int, datetime]
) -> tuple[dict[int, list[float]], list[str], int]:
    """From the database: late_seconds of each incident's 'reminder' events, the channels of the
    messages not marked posted, and the reminder rows moved on by one interval after one
    firing."""
    started_late: dict[int, list[float]] = {}
    with services.db.reading() as session:
        events = session.exec(
            select(TimelineEvent).where(col(TimelineEvent.kind) == "reminder")
        ).all()
        for row in events:
            started_late.setdefault(row.incident_id, []).append(float(row.data["late_seconds"]))
        unsent = session.exec(
            select(OutboxMessage.channel_id).where(col(OutboxMessage.posted_at).is_(None))
        ).all()
        every = WarroomConfig().policy(SEVERITY).update_every
        assert every is not None
        moved = 0
        for reminder in session.exec(select(Reminder)).all():
            was_due = due.get(reminder.incident_id)
            if (
                was_due is not None
                and reminder.active
                and reminder.fired_count == 1
                and reminder.due_at == was_due + every
            ):
                moved += 1
    return started_late, list(unsent), moved


async def fire_all(
    services: Services,
    calls: TimedCalls,
    rooms: dict[str, int],
    due: dict[int, datetime],
    counter: StatementCounter,
) -> Fired:
    """Wait for every reminder to fire, then a little longer for doubles."""
    lag = LoopLag()
    lag.start()
    wall, cpu = time.perf_counter(), time.process_time()
    loop_before, else_before = counter.snapshot()
    last_due = max(due.values()).timestamp()
    await wait_for_posts(calls, len(due), last_due + GRACE_S)
    await asyncio.sleep(SETTLE_S)
    lags = await lag.stop()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    loop_after, else_after = counter.snapshot()
    statements = (loop_after - loop_before, else_after - else_before)
    await services.tasks.join()
    posted_late: dict[int, list[float]] = {}
    for arrived, channel in calls.posts():
        incident_id = rooms.get(channel)
        if incident_id is not None:
            posted_late.setdefault(incident_id, []).append(arrived - due[incident_id].timestamp())
    # A post Slack has answered is marked in the outbox a moment later; give that a bound.
    drain_until = time.time() + DRAIN_S
    while True:
        started_late, unsent, moved = await asyncio.to_thread(stored_outcome, services, due)
        if not unsent or time.time() > drain_until:
            received = {channel for _, channel in calls.posts()}
            again = sum(1 for channel in unsent if channel in received)
            return Fired(
                started_late, posted_late, len(unsent), again, moved, lags, cpu, wall, *statements
            )
        await asyncio.sleep(0.1)


def quantile_ms(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return values[0] * 1000 if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def lateness_rows(
    label: str, late: dict[int, list[float]], groups: dict[str, set[int]]
) -> list[tuple[str, ...]]:
    """median, p99 and worst for all reminders and for each group (first firing only)."""
    rows: list[tuple[str, ...]] = []
    for group, members in groups.items():
        values = [late[i][0] for i in sorted(members) if late.get(i)]
        if not values:
            rows.append((f"{label}, {group}", "0", "-", "-", "-"))
            continue
        rows.append(
            (
                f"{label}, {group}",
                str(len(values)),
                f"{statistics.median(values) * 1000:.0f}",
                f"{quantile_ms(values, 99):.0f}",
                f"{max(values) * 1000:.0f}",
            )
        )
    return rows


def print_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))


def once_counts(late: dict[int, list[float]], expected: set[int]) -> tuple[int, int, int]:
    """(exactly once, never, more than once) over the expected incidents."""
    counts = Counter({incident_id: len(late.get(incident_id, [])) for incident_id in expected})
    once = sum(1 for n in counts.values() if n == 1)
    never = sum(1 for n in counts.values() if n == 0)
    return once, never, len(expected) - once - never


def report_fired(fired: Fired, due: dict[int, datetime], burst: set[int]) -> bool:
    expected = set(due)
    groups = {"all": expected, "spread": expected - burst, "burst": burst}
    header = ("lateness (ms)", "n", "median", "p99", "worst")
    rows = lateness_rows("job started (late_seconds)", fired.started_late, groups)
    rows += lateness_rows("Slack got chat.postMessage", fired.posted_late, groups)
    print_table(header, rows)
    events = once_counts(fired.started_late, expected)
    posts = once_counts(fired.posted_late, expected)
    right = (
        events[0] == len(expected)
        and posts[0] == len(expected)
        and fired.unsent == 0
        and fired.unsent_but_received == 0
        and fired.moved_on == len(expected)
    )
    print(
        f"'reminder' timeline events per incident: {events[0]} exactly once, {events[1]} never, "
        f"{events[2]} more than once"
    )
    print(
        f"chat.postMessage per war room: {posts[0]} exactly once, {posts[1]} never, "
        f"{posts[2]} more than once"
    )
    print(
        f"outbox messages not marked posted: {fired.unsent}, of which Slack already got "
        f"{fired.unsent_but_received} (the next outbox flush posts those again)"
    )
    print(
        f"reminder rows fired once and moved one interval on: {fired.moved_on} of "
        f"{len(expected)} -> {'ok' if right else 'WRONG'}"
    )
    print(
        f"from reconciliation to the last post: CPU {fired.cpu_s:.2f} s in {fired.wall_s:.1f} s "
        f"({fired.cpu_s / fired.wall_s * 100:.0f}% of one core); SQL statements: "
        f"{fired.statements_on_loop} on the event-loop thread, {fired.statements_elsewhere} on "
        f"the database pool; {stall_summary(fired.lags)}"
    )
    return right


# -- idle CPU -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Idle:
    label: str
    cpu_s: float
    wall_s: float
    wakeups: int | None
    statements: int


async def idle(
    label: str, seconds: float, counter: StatementCounter, wakeups: WakeupCounter | None
) -> Idle:
    """CPU time of the whole process (all threads) while the event loop only waits."""
    gc.collect()
    await asyncio.sleep(0.2)  # let anything just started settle
    woke = wakeups.count if wakeups else 0
    statements = sum(counter.snapshot())
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Idle(
        label,
        cpu,
        wall,
        wakeups.count - woke if wakeups else None,
        sum(counter.snapshot()) - statements,
    )


def print_idle(results: Sequence[Idle]) -> None:
    header = ("idle", "wall s", "CPU ms", "CPU share", "scheduler passes", "SQL statements")
    rows = [
        (
            r.label,
            f"{r.wall_s:.1f}",
            f"{r.cpu_s * 1000:.1f}",
            f"{r.cpu_s / r.wall_s * 100:.3f}%",
            "-" if r.wakeups is None else str(r.wakeups),
            str(r.statements),
        )
        for r in results
    ]
    print_table(header, rows)


# -- the run --------------------------------------------------------------------------------------


def describe(database_url: str | None, args: argparse.Namespace) -> str:
    where = "SQLite (temp file)" if database_url is None else _redacted(database_url)
    burst = min(args.burst, args.incidents)
    return (
        f"warroom clocks benchmark on {where}: {args.incidents} open {SEVERITY} incidents, one "
        f"update reminder each, due {args.lead:.0f}-{args.lead + args.window:.0f} s after "
        f"seeding ({burst} of them within {burst * BURST_SPACING_S * 1000:.0f} ms at "
        f"{args.lead + args.window / 2:.0f} s); fake Slack latency "
        f"{args.slack_latency * 1000:.0f} ms; idle windows {args.idle_seconds:.0f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


async def benchmark(database_url: str, args: argparse.Namespace) -> int:
    fake = FakeSlack()
    calls = TimedCalls()
    fake.calls = calls
    fake.add_channel("C0GENERAL", "general")
    await fake.start()
    fake.latency = args.slack_latency
    services, config = start_services(database_url, fake.api_url)
    try:
        return await measure(services, config, fake, calls, args)
    finally:
        await close_services(services)
        await fake.close()


async def measure(
    services: Services,
    config: WarroomConfig,
    fake: FakeSlack,
    calls: TimedCalls,
    args: argparse.Namespace,
) -> int:
    counter = StatementCounter(services.db.engine)
    seeding = time.perf_counter()
    rooms = await asyncio.to_thread(seed_incidents, services, fake, args.incidents)
    incident_ids = list(rooms.values())
    offsets = due_offsets(args.incidents, args.burst, args.lead, args.window)
    due = await asyncio.to_thread(
        set_reminders, services, incident_ids, [offset for offset, _ in offsets]
    )
    print(f"seeded {len(rooms)} incidents and reminders in {time.perf_counter() - seeding:.2f} s")
    burst = {i for i, (_, packed) in zip(incident_ids, offsets, strict=True) if packed}

    # 1. Start-up: the reminder rows become scheduler jobs; then they come due and fire.
    cold = await reconcile(services.clocks, counter)
    already = sum(1 for at in due.values() if at <= datetime.now(UTC))
    print_reconciled("start-up reconciliation, empty job store", len(due), cold)
    if already:
        print(f"    {already} reminders were already due when reconciliation was done")
    fired = await fire_all(services, calls, rooms, due, counter)
    print()
    right = report_fired(fired, due, burst)

    # 2. Idle: every reminder is next due an hour from now.
    print()
    app_wakeups = WakeupCounter(services.clocks.scheduler)
    results = [
        await idle(
            f"warroom clocks, {len(due)} reminders due in 1 h",
            args.idle_seconds,
            counter,
            app_wakeups,
        )
    ]
    await services.clocks.stop()
    await asyncio.sleep(0.05)
    results.append(await idle("warroom clocks stopped", args.idle_seconds, counter, None))
    empty = AsyncIOScheduler(timezone=UTC)
    empty.start()
    results.append(
        await idle(
            "empty AsyncIOScheduler (memory store, no jobs)",
            args.idle_seconds,
            counter,
            WakeupCounter(empty),
        )
    )
    empty.shutdown(wait=False)
    await asyncio.sleep(0.05)
    print_idle(results)

    # 3. A restart: the same rows against a job store that already holds their jobs.
    print()
    again = Clocks(db=services.db, outbox=services.outbox, config=config)
    warm = await reconcile(again, counter)
    print_reconciled("restart reconciliation, jobs already stored", len(due), warm)
    await again.stop()
    await asyncio.sleep(0.05)

    # Outbox flushes ran in the idle windows and at the restart: did any post go out twice?
    per_room = Counter(channel for _, channel in calls.posts() if channel in rooms)
    doubled = sum(1 for count in per_room.values() if count > 1)
    print(
        f"by the end of the run (outbox flushes and the restart included): {doubled} war rooms "
        f"got their reminder more than once, {len(rooms) - len(per_room)} never "
        f"-> {'ok' if doubled == 0 and len(per_room) == len(rooms) else 'WRONG'}"
    )
    return 0 if right and doubled == 0 and len(per_room) == len(rooms) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: a temp SQLite file); "
        "PostgreSQL gets a fresh schema, dropped afterwards",
    )
    parser.add_argument(
        "--incidents",
        type=bounded(int, 1, 20_000),
        default=1000,
        help="open incidents, one update reminder each (default 1000)",
    )
    parser.add_argument(
        "--burst",
        type=bounded(int, 0, 20_000),
        default=300,
        help="reminders due together in the middle of the window (default 300)",
    )
    parser.add_argument(
        "--lead",
        type=bounded(float, 0.0, 600.0),
        default=10.0,
        help="seconds from seeding to the first due reminder (default 10)",
    )
    parser.add_argument(
        "--window",
        type=bounded(float, 0.1, 600.0),
        default=10.0,
        help="seconds over which the reminders come due (default 10)",
    )
    parser.add_argument(
        "--idle-seconds",
        type=bounded(float, 0.5, 600.0),
        default=10.0,
        help="length of each idle CPU window (default 10)",
    )
    parser.add_argument(
        "--slack-latency",
        type=bounded(float, 0.0, 5.0),
        default=0.05,
        help="seconds the fake Slack Web API takes per call (default 0.05)",
    )
    parser.add_argument(
        "--deadline",
        type=bounded(float, 1.0, 3600.0),
        default=115.0,
        help="give up after this many seconds (default 115)",
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> int:
    print(describe(args.database_url, args), flush=True)
    # What warroom and APScheduler log at WARNING and above is part of the report.
    tally = LogTally()
    logging.getLogger().addHandler(tally)
    try:
        with fresh_database(args.database_url) as url:
            try:
                async with asyncio.timeout(args.deadline):
                    return await benchmark(url, args)
            except TimeoutError:
                print(f"gave up: the benchmark took longer than {args.deadline:.0f} s")
                return 2
    finally:
        tally.summary()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
