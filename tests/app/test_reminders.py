"""The clocks, end to end and in real time: customer-update reminders, acknowledgement
escalations and post-mortem reminders through the real scheduler, against the fake Slack.

Intervals are seconds long (the config accepts `1s`). Tests wait on conditions; where a test
shows that something did *not* happen, it waits for a later event that proves the moment has
passed (a witness) rather than sleeping and hoping."""

from __future__ import annotations

import asyncio
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlmodel import Session, col, select

from bot.commands.parse import Declaration
from bot.incidents.service import Invocation
from bot.reminders.scheduler import Clocks
from bot.slack.text import slack_date
from storage import outbox as outbox_store
from storage import reminders as reminder_store
from storage.db import Database
from storage.models import Incident, OutboxMessage, Reminder, TimelineEvent
from tests.support.fakes.slack_api import FakeSlack
from tests.support.serving import Process, serve
from tests.support.warroom import SIGNING_SECRET, Warroom, WarroomFactory

UPDATE = ":hourglass:"
ESCALATION = ":warning:"
POSTMORTEM = ":memo:"
UPDATE_TEXT = re.compile(
    r":hourglass: (?P<who><@U\w+>|nobody holds the role) \*INC-(?P<number>\d+)\* "
    r"\((?P<sev>SEV\d)\): (?P<elapsed>\d+s) "
    r"since (?P<since>declaration|the last customer update) "
    # The moment it counts from, as a date token each reader sees in their own time zone.
    r"\((?P<at><!date\^\d+\^\{date_short_pretty\} \{time\}\|[\d :-]+ UTC>)\)\. "
    r"Post a customer update with `/incident update &lt;text&gt;`\."
)
NO_POSTMORTEM_REMINDERS: dict[str, Any] = {"postmortem_remind_every": None}


# -- helpers ---------------------------------------------------------------------------


def stored(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def posts(slack: FakeSlack, channel_id: str, prefix: str) -> list[str]:
    """What Slack took in a channel (or a DM) starting with `prefix`, oldest first."""
    return [m["text"] for m in slack.messages.get(channel_id, []) if m["text"].startswith(prefix)]


def attempts(slack: FakeSlack, prefix: str) -> list[str]:
    """Every chat.postMessage asked for with that prefix, failed ones included."""
    return [
        c.args["text"]
        for c in slack.calls_to("chat.postMessage")
        if str(c.args.get("text", "")).startswith(prefix)
    ]


def reminder_events(events: list[TimelineEvent], kind: str = "update") -> list[TimelineEvent]:
    return [e for e in events if e.kind == "reminder" and e.data["reminder"] == kind]


def due(event: TimelineEvent) -> datetime:
    return datetime.fromisoformat(event.data["due_at"])


def reminder_row(room: Warroom, kind: str, number: int = 1) -> Reminder:
    incident = stored(room, number)
    with Session(room.services.db.engine) as session:
        return session.exec(
            select(Reminder).where(Reminder.incident_id == incident.id).where(Reminder.kind == kind)
        ).one()


async def assert_one_event_per_post(room: Warroom, number: int, prefix: str, kind: str) -> None:
    """Every reminder on the timeline reaches Slack once (it is posted just after the commit),
    and Slack has no reminder that the timeline lacks."""
    channel = stored(room, number).channel_id or ""

    def texts() -> tuple[list[str], list[str]]:
        # Sorted: a post that Slack made wait may land after the next reminder's.
        events = reminder_events(room.timeline(number), kind)
        return sorted(e.text or "" for e in events), sorted(posts(room.slack, channel, prefix))

    try:
        # Generous: posts into one channel are paced about a second apart, and the machine may be
        # busy; the check is that they all arrive once, not how fast.
        await room.slack.wait_for(lambda: texts()[0] == texts()[1], timeout=15)
    except AssertionError:
        recorded, posted = texts()
        assert recorded == posted  # fails here, showing the difference


async def declare_from_alert(room: Warroom, title: str, severity: str = "sev1") -> Incident:
    """An incident an alert declared (nobody in command, not acknowledged), with its war room."""
    view = await room.services.incidents.declare(
        Invocation(user_id="", user_name="Alertmanager", channel_id="", text=f"alert {title}"),
        Declaration(title=title, severity=severity),
        source="alert",
    )
    await room.services.incidents.open_war_room(view.id, response_url=None)
    await room.settle()
    return stored(room, view.number)


# -- customer-update reminders -----------------------------------------------------------


async def test_update_reminders_repeat_until_an_update_then_count_from_it(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, **NO_POSTMORTEM_REMINDERS}
    )
    slack = room.slack
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    every = timedelta(seconds=1)

    # With nobody in comms, the commander is nagged, once a second, counted from declaration.
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) >= 2, timeout=5)
    first, second = posts(slack, channel, UPDATE)[:2]
    for text, elapsed in ((first, "1s"), (second, "2s")):
        match = UPDATE_TEXT.fullmatch(text)
        assert match, text
        assert match["who"] == "<@U0ANA>" and match["number"] == "1" and match["sev"] == "SEV1"
        assert (match["since"], match["elapsed"]) == ("declaration", elapsed)
        assert match["at"] == slack_date(declared.declared_at)
    assert [due(e) for e in reminder_events(room.timeline(1))[:2]] == [
        declared.declared_at + every,
        declared.declared_at + 2 * every,
    ]

    # A comms lead is who gets nagged from then on.
    await room.command("role comms <@U0BO>", channel=channel)
    mentioned = len(posts(slack, channel, f"{UPDATE} <@U0BO>"))
    await slack.wait_for(lambda: len(posts(slack, channel, f"{UPDATE} <@U0BO>")) > mentioned)

    # An update restarts the clock: the next reminder is one interval after it.
    await room.command("update Checkout is failing for some customers.", channel=channel)
    updated_at = stored(room).last_update_at
    assert updated_at is not None

    def since_update() -> list[TimelineEvent]:
        return [e for e in reminder_events(room.timeline(1)) if e.at > updated_at]

    await slack.wait_for(lambda: len(since_update()) >= 1, timeout=5)
    assert due(since_update()[0]) == updated_at + every
    match = UPDATE_TEXT.fullmatch(since_update()[0].text or "")
    assert match and match["since"] == "the last customer update" and match["who"] == "<@U0BO>"
    assert match["at"] == slack_date(updated_at)

    # Each reminder went out once and is on the timeline once, at its own time.
    await room.settle()
    await assert_one_event_per_post(room, 1, UPDATE, "update")
    dues = [due(e) for e in reminder_events(room.timeline(1))]
    assert dues == sorted(set(dues)), "a due time fired twice"
    assert all(e.at >= due(e) for e in reminder_events(room.timeline(1)))
    assert posts(slack, "C0ANNOUNCE", UPDATE) == [], "reminders stay in the war room"


async def test_a_severity_change_reschedules_the_update_clock(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {
            "severities": {"sev1": {"update_every": "1s"}, "sev3": {"update_every": "1h"}},
            **NO_POSTMORTEM_REMINDERS,
        }
    )
    slack = room.slack
    declared = await room.declare("Search is slow sev3")
    channel = declared.channel_id or ""
    assert reminder_row(room, "update").due_at == declared.declared_at + timedelta(hours=1)

    # SEV1 nags every second, counted from declaration as before.
    await room.command("sev 1", channel=channel)
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) >= 1, timeout=5)
    assert all("(SEV1)" in text for text in posts(slack, channel, UPDATE))
    first = reminder_events(room.timeline(1))[0]
    assert due(first) == declared.declared_at + timedelta(seconds=1)

    # SEV4 has no update cadence: the clock stops.
    await room.command("sev 4", channel=channel)
    row = reminder_row(room, "update")
    assert not row.active
    # The row is what counts, committed before the reply; the scheduler follows it just
    # after (off the ack path).
    await room.settle()
    assert room.services.clocks.scheduler.get_job(f"reminder:{declared.id}:update") is None
    fired = len(reminder_events(room.timeline(1)))
    # The witness: another incident's reminder, due after this one's next would have been.
    witness = await room.declare("Witness sev1")
    await slack.wait_for(lambda: len(posts(slack, witness.channel_id or "", UPDATE)) >= 1)
    assert len(reminder_events(room.timeline(1))) == fired
    await assert_one_event_per_post(room, 1, UPDATE, "update")


async def test_resolving_stops_update_reminders_and_stale_jobs_do_nothing(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, "postmortem_remind_every": "2s"}
    )
    slack, clocks = room.slack, room.services.clocks
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) >= 1, timeout=5)

    # A job scheduled before an update (by this process or another) finds its clock moved.
    before_update = reminder_row(room, "update")
    await room.command("update Checkout is recovering.", channel=channel)
    updated_at = stored(room).last_update_at
    assert updated_at is not None
    events_before = len(room.timeline(1))
    await clocks.fire(before_update.id or 0, before_update.seq)
    assert len(room.timeline(1)) == events_before

    # ...and one scheduled before resolution finds the clock stopped.
    before_resolve = reminder_row(room, "update")
    await room.command("resolve", channel=channel)
    resolved_at = stored(room).resolved_at
    assert resolved_at is not None
    assert not reminder_row(room, "update").active
    events_before = len(room.timeline(1))
    await clocks.fire(before_resolve.id or 0, before_resolve.seq)
    assert len(room.timeline(1)) == events_before

    # The witness: the first post-mortem reminder comes after two update intervals would have.
    await slack.wait_for(lambda: len(posts(slack, channel, POSTMORTEM)) >= 1, timeout=5)
    updates = reminder_events(room.timeline(1))
    assert updates and all(e.at < resolved_at for e in updates)
    second = timedelta(seconds=1)
    for event in updates:
        since = declared.declared_at if event.at < updated_at else updated_at
        assert (due(event) - since) % second == timedelta(0), "a stale job fired"
    await room.settle()
    await assert_one_event_per_post(room, 1, UPDATE, "update")


async def test_two_incidents_clocks_never_interfere(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(
        {
            "severities": {"sev1": {"update_every": "1s"}, "sev2": {"update_every": "2s"}},
            **NO_POSTMORTEM_REMINDERS,
        },
        database_url=database_url,
    )
    slack = room.slack
    one = await room.declare("Checkout down sev1")
    two = await room.declare("Search is slow sev2", user="U0BO")
    await room.command(
        "update Checkout is failing for some customers.", channel=one.channel_id or ""
    )
    updated_at = stored(room, 1).last_update_at
    assert updated_at is not None

    def dues(number: int) -> list[datetime]:
        return [due(e) for e in reminder_events(room.timeline(number))]

    await slack.wait_for(
        lambda: len(dues(2)) >= 1 and len([d for d in dues(1) if d > updated_at]) >= 2,
        timeout=6,
    )
    # Resolving one leaves the other's clock running.
    await room.command("resolve", channel=two.channel_id or "", user="U0BO")
    resolved_at = stored(room, 2).resolved_at
    assert resolved_at is not None
    count = len(dues(1))
    await slack.wait_for(lambda: len(dues(1)) >= count + 2, timeout=5)
    await room.settle()

    # INC-1: one second apart, from declaration and then from its update; SEV1, in its room.
    second = timedelta(seconds=1)
    before = [d for d in dues(1) if d <= updated_at]
    after = [d for d in dues(1) if d > updated_at]
    assert before == [one.declared_at + k * second for k in range(1, len(before) + 1)]
    assert after == [updated_at + k * second for k in range(1, len(after) + 1)]
    # INC-2: two seconds apart from its own declaration, none after it was resolved.
    assert dues(2) == [two.declared_at + k * 2 * second for k in range(1, len(dues(2)) + 1)]
    assert all(e.at < resolved_at for e in reminder_events(room.timeline(2)))
    for number, incident in ((1, one), (2, two)):
        texts = posts(slack, incident.channel_id or "", UPDATE)
        assert texts and all(f"*INC-{number}* (SEV{number})" in t for t in texts)
        assert all(f"*INC-{3 - number}*" not in t for t in texts)
        await assert_one_event_per_post(room, number, UPDATE, "update")
    assert "<@U0BO>" in posts(slack, two.channel_id or "", UPDATE)[0]


async def test_a_stale_job_left_by_a_crash_does_not_hold_up_the_clock(
    make_warroom: WarroomFactory,
) -> None:
    """A crash between a clock's commit and its job's write leaves the job store one move
    behind. At start the stale job runs (and does nothing), and the job for the clock as it
    stands must still run rather than be skipped as a second instance."""
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, **NO_POSTMORTEM_REMINDERS}
    )
    old = room.services.clocks
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    old.scheduler.pause()
    # The clock moves (as an update would move it) but the job store never hears of it.
    moved = declared.declared_at + timedelta(milliseconds=1200)
    await room.services.db.run(
        lambda s: reminder_store.set_reminder(
            s, incident_id=declared.id or 0, kind="update", due_at=moved
        )
    )
    await old.stop()
    # Down until both the stale job and the moved clock are due.
    await asyncio.sleep((moved - datetime.now(UTC)).total_seconds() + 0.2)
    assert posts(room.slack, channel, UPDATE) == []

    restarted = Clocks(db=room.services.db, outbox=room.services.outbox, config=old.config)
    await restarted.start()
    try:
        await room.slack.wait_for(lambda: len(posts(room.slack, channel, UPDATE)) >= 1)
        [event] = reminder_events(room.timeline(1))[:1]
        assert due(event) == moved
    finally:
        await restarted.stop()


# -- Slack failing while a reminder is sent -----------------------------------------------


async def test_a_rate_limited_post_is_retried_and_sent_once(make_warroom: WarroomFactory) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "1s"}}, **NO_POSTMORTEM_REMINDERS}
    )
    slack = room.slack
    channel = (await room.declare("Checkout down sev1")).channel_id or ""
    slack.fail("chat.postMessage", status=429, retry_after=1, times=1)

    def delivered(count: int) -> bool:
        events = reminder_events(room.timeline(1))[:count]
        return len(events) == count and all(e.text in posts(slack, channel, UPDATE) for e in events)

    await slack.wait_for(lambda: delivered(1), timeout=6)
    first = reminder_events(room.timeline(1))[0].text
    assert posts(slack, channel, UPDATE).count(first) == 1
    assert attempts(slack, UPDATE).count(first) == 2, "one failure, one retry"
    # The scheduler lives on: the next interval's reminder comes too, once.
    await slack.wait_for(lambda: delivered(2), timeout=5)
    assert len(set(posts(slack, channel, UPDATE))) == len(posts(slack, channel, UPDATE))
    await assert_one_event_per_post(room, 1, UPDATE, "update")


async def test_a_post_that_exhausts_its_retries_is_sent_later_and_the_clock_goes_on(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(
        {"severities": {"sev1": {"update_every": "2s"}}, **NO_POSTMORTEM_REMINDERS},
        outbox_every=0.3,
    )
    slack = room.slack
    declared = await room.declare("Checkout down sev1")
    channel = declared.channel_id or ""
    # Six 500s: the Web API client tries three times, so at least one reminder (the first, or
    # the next if it comes due meanwhile) gives up and is left in the outbox for a later flush.
    slack.fail("chat.postMessage", status=500, times=6)

    def first_two_delivered() -> bool:
        events = reminder_events(room.timeline(1))[:2]
        return len(events) == 2 and all(e.text in posts(slack, channel, UPDATE) for e in events)

    await slack.wait_for(first_two_delivered, timeout=12)
    # Freeze the clocks (letting posts under way finish) so that a third reminder cannot be in
    # flight while the counts below are taken.
    await room.services.clocks.stop()
    await room.settle()
    events = reminder_events(room.timeline(1))
    # The clock kept its time while Slack was failing...
    assert [due(e) for e in events[:2]] == [
        declared.declared_at + timedelta(seconds=2),
        declared.declared_at + timedelta(seconds=4),
    ]
    # ...and each reminder reached Slack once (not necessarily in order), after six failures.
    texts = posts(slack, channel, UPDATE)
    assert len(set(texts)) == len(texts)
    assert len(attempts(slack, UPDATE)) == len(texts) + 6
    with Session(room.services.db.engine) as session:
        owed = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.channel_id == channel)
            .order_by(col(OutboxMessage.id))
        ).all()
    assert all(m.posted_at is not None for m in owed)
    given_up = [m for m in owed if m.attempts]
    assert given_up, "no reminder was left to the outbox"
    assert all(m.last_error == "HTTP 500" for m in given_up)


async def test_stopping_the_scheduler_mid_flush_lets_the_post_under_way_finish(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom(outbox_every=0.2)
    slack = room.slack
    with room.services.db.unit_of_work() as session:
        owed = outbox_store.enqueue(
            session, channel_id="C0GENERAL", text="owed", at=datetime.now(UTC), incident_id=None
        )
        owed_id = owed.id
    # Slack is slow: the scheduler's flush job is inside chat.postMessage when the stop comes.
    slack.latency = 0.5
    await slack.wait_for(lambda: bool(slack.calls_to("chat.postMessage")), timeout=5)
    await room.services.clocks.stop()

    with Session(room.services.db.engine) as session:
        row = session.get_one(OutboxMessage, owed_id)
    # Slack took it, and the outbox knows: no later flush (here or on another replica) sends it
    # again.
    assert [m["text"] for m in slack.messages["C0GENERAL"]] == ["owed"]
    assert row.posted_at is not None and row.slack_ts == slack.messages["C0GENERAL"][0]["ts"]


async def test_an_owed_post_is_claimed_when_its_turn_comes_not_before(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    services = room.services
    with services.db.unit_of_work() as session:
        owed = outbox_store.enqueue(
            session, channel_id="C0GENERAL", text="owed", at=datetime.now(UTC), incident_id=None
        )
        owed_id = owed.id
    assert owed_id is not None
    # Posts ahead of it hold the channel's turn (Slack rate-limiting them, say)...
    async with services.gateway.pacer.turn("C0GENERAL"):
        sending = asyncio.create_task(services.outbox.send(owed_id))
        await asyncio.sleep(0.05)
        # ...while another replica, whose turn came first, posts the message.
        with services.db.unit_of_work() as session:
            outbox_store.mark_posted(session, message_id=owed_id, ts="1.2", at=datetime.now(UTC))
    await sending
    assert room.slack.calls_to("chat.postMessage") == []


# -- acknowledgement --------------------------------------------------------------------


@pytest.fixture
def escalation_config(slack: FakeSlack) -> dict[str, Any]:
    slack.add_user("U0MGR", "manager")
    return {
        "severities": {
            "sev1": {"ack_within": "1s", "update_every": "2s", "escalate_to": ["U0MGR"]}
        },
        **NO_POSTMORTEM_REMINDERS,
    }


async def test_an_unacknowledged_alert_is_escalated_once(
    make_warroom: WarroomFactory, escalation_config: dict[str, Any]
) -> None:
    room = await make_warroom(escalation_config)
    slack = room.slack
    incident = await declare_from_alert(room, "Disk full on db-1")
    channel = incident.channel_id or ""
    assert incident.acknowledged_at is None
    assert "Commander" not in slack.channels[channel].topic

    await slack.wait_for(
        lambda: all(posts(slack, c, ESCALATION) for c in ("C0ANNOUNCE", "U0MGR", channel)),
        timeout=5,
    )
    [announced] = posts(slack, "C0ANNOUNCE", ESCALATION)
    assert re.fullmatch(
        r":warning: \*INC-1\* \(SEV1\) has not been acknowledged 1s after it was declared "
        rf"\({re.escape(slack_date(incident.declared_at))}\): "
        rf"Disk full on db-1\. War room: <#{channel}>\. Take it with `/incident ack`\.",
        announced,
    )
    assert posts(slack, "U0MGR", ESCALATION) == [announced]
    assert posts(slack, channel, ESCALATION) == [announced]
    [event] = [e for e in room.timeline(1) if e.kind == "escalation"]
    assert event.text == announced
    assert event.data["reminder"] == "ack"
    assert event.data["sent_to"] == ["C0ANNOUNCE", "U0MGR", channel]
    assert due(event) == incident.declared_at + timedelta(seconds=1)
    assert not reminder_row(room, "ack").active, "an escalation happens once"

    # The update reminder (the witness, one second later) nags nobody in particular...
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) >= 1)
    assert "nobody holds the role" in posts(slack, channel, UPDATE)[0]
    # ...until someone acknowledges, taking command.
    reply = await room.command("ack", channel=channel, user="U0CY")
    assert reply.message == "INC-1 acknowledged. You are its commander."
    await room.settle()
    assert stored(room).acknowledged_at is not None
    assert "Commander: cy" in slack.channels[channel].topic
    count = len(posts(slack, channel, UPDATE))
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) > count)
    assert posts(slack, channel, UPDATE)[-1].startswith(f"{UPDATE} <@U0CY> ")
    assert [e.kind for e in room.timeline(1)].count("escalation") == 1
    assert len(posts(slack, "C0ANNOUNCE", ESCALATION)) == 1


@pytest.mark.parametrize(
    ("command", "user", "commander"),
    [("ack", "U0CY", "U0CY"), ("role commander <@U0BO>", "U0ADMIN", "U0BO")],
    ids=["ack", "admin-assigns-commander"],
)
async def test_an_acknowledged_alert_is_not_escalated(
    make_warroom: WarroomFactory,
    escalation_config: dict[str, Any],
    command: str,
    user: str,
    commander: str,
) -> None:
    room = await make_warroom(escalation_config)
    slack = room.slack
    incident = await declare_from_alert(room, "Disk full on db-1")
    channel = incident.channel_id or ""
    reply = await room.command(command, channel=channel, user=user)
    assert reply.status == 200 and "Only" not in reply.message, reply.text
    acknowledged = stored(room).acknowledged_at
    assert acknowledged is not None and acknowledged < incident.declared_at + timedelta(seconds=1)
    assert not reminder_row(room, "ack").active

    # The witness: the first update reminder is due a second after the acknowledgement window.
    await slack.wait_for(lambda: len(posts(slack, channel, UPDATE)) >= 1, timeout=5)
    assert posts(slack, channel, UPDATE)[0].startswith(f"{UPDATE} <@{commander}> ")
    for target in ("C0ANNOUNCE", "U0MGR", channel):
        assert posts(slack, target, ESCALATION) == []
    assert "escalation" not in room.kinds(1)
    again = await room.command("ack", channel=channel, user="U0ANA")
    assert again.message == "INC-1 is already acknowledged."


# -- post-mortem reminders ----------------------------------------------------------------


async def test_postmortem_reminders_until_done(make_warroom: WarroomFactory) -> None:
    room = await make_warroom(
        {
            "severities": {"sev2": {"update_every": "1h", "postmortem_due": "2s"}},
            "postmortem_remind_every": "1s",
        }
    )
    slack = room.slack
    channel = (await room.declare("Checkout down sev2")).channel_id or ""
    await room.command("resolve Rolled back", channel=channel)
    resolved_at = stored(room).resolved_at
    assert resolved_at is not None

    await slack.wait_for(
        lambda: any("*overdue*" in t for t in posts(slack, channel, POSTMORTEM)), timeout=6
    )
    texts = posts(slack, channel, POSTMORTEM)
    assert re.fullmatch(
        r":memo: <@U0ANA> the post-mortem for \*INC-1\*: it is due "
        rf"{re.escape(slack_date(resolved_at + timedelta(seconds=2)))} "
        r"\(in 1s\)\. Draft it with `/incident postmortem`; when it is written, "
        r"`/incident postmortem done &lt;url&gt;`\.",
        texts[0],
    ), texts[0]
    assert re.search(r": it is \*overdue\* by \d+s\. Draft it", texts[-1]), texts[-1]
    events = reminder_events(room.timeline(1), "postmortem")
    assert [due(e) for e in events] == [
        resolved_at + timedelta(seconds=k) for k in range(1, len(events) + 1)
    ]

    reply = await room.command("postmortem done https://wiki.example.com/pm/1", channel=channel)
    assert reply.message == "Post-mortem for INC-1 recorded; its reminders have stopped."
    done_at = stored(room).postmortem_done_at
    assert done_at is not None
    assert not reminder_row(room, "postmortem").active
    # The witness: a second incident's post-mortem reminders, started after this one stopped.
    other = await room.declare("Witness sev2")
    await room.command("resolve", channel=other.channel_id or "")
    await slack.wait_for(lambda: len(posts(slack, other.channel_id or "", POSTMORTEM)) >= 1)
    await room.settle()
    assert all(e.at < done_at for e in reminder_events(room.timeline(1), "postmortem"))
    await assert_one_event_per_post(room, 1, POSTMORTEM, "postmortem")
    assert reminder_events(room.timeline(1)) == [], "no update reminders after resolution"


# -- a restart -------------------------------------------------------------------------


async def test_reminders_survive_a_crash_and_fire_once_late(
    slack: FakeSlack, tmp_path: Path, processes: list[Process]
) -> None:
    every = timedelta(seconds=2)
    config = tmp_path / "warroom.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "announce_channel": "C0ANNOUNCE",
                "severities": {"sev2": {"update_every": "2s"}},
                "postmortem_remind_every": None,
            }
        ),
        encoding="utf-8",
    )
    url = f"sqlite:///{tmp_path / 'w.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "WARROOM_"))},
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": url,
        "WARROOM_CONFIG": str(config),
    }
    db = Database(url)

    def incident() -> Incident | None:
        with db.reading() as session:
            return session.exec(select(Incident)).first()

    def reminders() -> list[TimelineEvent]:
        with db.reading() as session:
            return reminder_events(list(session.exec(select(TimelineEvent)).all()))

    def in_room() -> list[str]:
        found = incident()
        return posts(slack, found.channel_id or "", UPDATE) if found else []

    try:
        async with aiohttp.ClientSession() as http:
            first = await serve(tmp_path, env, "first")
            processes.append(first)
            reply = await first.command(http, slack, "declare Checkout down sev2")
            assert "*INC-1*" in reply, reply
            await slack.wait_for(lambda: bool(slack.calls_to("pins.add")), timeout=5)
            declared = incident()
            assert declared is not None and declared.channel_id
            due_at = declared.declared_at + every

            # A crash before the reminder is due: nothing sent yet, nothing said goodbye.
            await first.kill()
            assert datetime.now(UTC) < due_at, "too slow: the reminder came due before the kill"
            assert in_room() == [] and reminders() == []

            # Down for two intervals; the reminder is owed for both, but only once is useful.
            await asyncio.sleep((due_at + every - datetime.now(UTC)).total_seconds() + 0.3)
            assert in_room() == []

            second = await serve(tmp_path, env, "second")
            processes.append(second)
            # Fired at start-up, not an interval later: it is the missed due time that fires
            # (below), and the wait is counted from the moment the server answers, not from
            # the spawn (a busy machine takes seconds just to start Python).
            await slack.wait_for(lambda: len(in_room()) >= 1, timeout=5)
            [fired] = reminders()
            assert due(fired) == due_at, "the first missed due time fires, once"
            assert fired.data["late_seconds"] > every.total_seconds()
            assert UPDATE_TEXT.fullmatch(in_room()[0])

            # Then the clock goes on from now, one interval at a time: no burst to catch up.
            await slack.wait_for(lambda: len(in_room()) >= 2, timeout=every.total_seconds() + 3)
            fired, following = reminders()[:2]
            assert due(following) == fired.at + every
            assert following.at >= fired.at + every
            assert len(in_room()) == len(reminders()) == 2
            assert [e.text for e in reminders()] == in_room()
            with db.reading() as session:
                row = session.exec(select(Reminder).where(Reminder.kind == "update")).one()
            assert row.active and row.fired_count == 2
    finally:
        db.close()
        for process in processes:
            await process.kill()
