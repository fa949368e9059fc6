"""`/incident reopen` end to end: a resolved incident back to investigating with its earlier
resolution kept on the timeline, post-mortem reminders stopped and the update clock restarted;
its archived room unarchived, or a new room opened and linked when Slack refuses; and the
refusals (open, declined, not the commander), each changing nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session

from bot.incidents.enums import Status
from bot.reminders.rules import ReminderKind
from storage import reminders as reminder_store
from storage.models import Reminder
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom, ephemeral

TITLE = "Checkout API returning 500s"
POSTMORTEM = "https://wiki.example.com/pm/1"


def reminder(room: Warroom, kind: str) -> Reminder | None:
    with Session(room.services.db.engine) as session:
        return reminder_store.get_reminder(session, incident_id=1, kind=kind)


async def war_room(room: Warroom, words: str = f"{TITLE} sev1") -> str:
    """INC-1 declared; its war room's channel."""
    channel = (await room.declare(words)).channel_id
    assert channel is not None
    return channel


async def resolved(room: Warroom) -> str:
    channel = await war_room(room)
    assert (await room.command("resolve fixed the pool", channel=channel)).status == 200
    await room.settle()
    return channel


async def archived_room(room: Warroom, clock: Clock) -> str:
    """INC-1 resolved, written up and its room archived by the sweep."""
    channel = await resolved(room)
    ephemeral(await room.command(f"postmortem done {POSTMORTEM}", channel=channel))
    clock.advance(timedelta(days=15))
    await room.services.archive.sweep()
    await room.slack.wait_for(
        lambda: room.slack.channels[channel].is_archived and "archived" in room.kinds(1)
    )
    return channel


async def test_reopen_a_resolved_incident(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await resolved(room)
    resolved_at = room.stored(1).resolved_at
    assert reminder(room, ReminderKind.POSTMORTEM) is not None
    clock.advance(timedelta(hours=3))

    reply = ephemeral(await room.command("reopen errors are back <!channel>", channel=channel))
    assert reply.startswith(":arrows_counterclockwise: INC-1 is reopened and *investigating*")
    await room.settle()

    incident = room.stored(1)
    assert incident.status == Status.INVESTIGATING
    assert incident.resolved_at is None
    # The earlier resolution stays on the timeline, before the reopening.
    kinds = room.kinds(1)
    assert kinds.index("resolved") < kinds.index("reopened")
    [event] = [e for e in room.timeline(1) if e.kind == "reopened"]
    assert event.actor_id == "U0ANA"
    assert event.text == "errors are back <!channel>"
    assert event.data == {
        "resolved_at": resolved_at.isoformat() if resolved_at else None,
        "reason": "errors are back <!channel>",
    }
    # Post-mortem reminders stop; the update clock counts from the reopening.
    postmortem = reminder(room, ReminderKind.POSTMORTEM)
    assert postmortem is not None and not postmortem.active
    update = reminder(room, ReminderKind.UPDATE)
    assert update is not None and update.active
    assert update.due_at == clock.now + timedelta(minutes=30)
    # The room and the announcement channel hear of it, with no live broadcast.
    for where in (channel, "C0ANNOUNCE"):
        [said] = [m["text"] for m in room.slack.messages[where] if "is reopened" in str(m["text"])]
        assert "<!channel>" not in said and "@\u2060channel" in said
    assert "Investigating" in room.slack.channels[channel].topic
    assert not any(c.method == "conversations.unarchive" for c in room.slack.calls)


async def test_reopen_refusals_change_nothing(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await war_room(room)
    assert ephemeral(await room.command("reopen", channel=channel)) == (
        "INC-1 is not resolved; only a resolved one reopens."
    )
    ephemeral(await room.command("resolve", channel=channel))
    # bo is not the commander (ana is) nor an admin.
    refused = ephemeral(await room.command("reopen", channel=channel, user="U0BO"))
    assert refused == "Only the commander (ana) or an admin can reopen it in INC-1."
    assert room.stored(1).status == Status.RESOLVED
    assert "reopened" not in room.kinds(1)
    assert room.timeline(1)[-1].data["reason"] == refused
    # An admin may.
    ephemeral(await room.command("reopen", channel=channel, user="U0ADMIN"))
    assert room.stored(1).status == Status.INVESTIGATING


async def test_declined_incidents_cannot_be_reopened(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await war_room(room)
    ephemeral(await room.command("decline a test page", channel=channel))
    reply = ephemeral(await room.command("reopen", channel=channel))
    # The same answer as every other change to a declined incident.
    assert reply == "INC-1 was declined; nothing more can change on it."
    assert room.stored(1).status == Status.DECLINED


async def test_with_nobody_in_command_anyone_may_reopen(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await resolved(room)

    def _relieve(session: Session) -> None:
        from storage import incidents as incident_store

        for held in incident_store.current_roles(session, incident_id=1):
            incident_store.relieve_role(session, assignment=held, at=clock.now)

    await room.services.db.run(_relieve)
    ephemeral(await room.command("reopen", channel=channel, user="U0BO"))
    assert room.stored(1).status == Status.INVESTIGATING


async def test_reopen_unarchives_its_archived_room(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await archived_room(room, clock)

    reply = ephemeral(await room.command("INC-1 reopen", channel="C0GENERAL"))
    assert "bringing it back" in reply
    await room.settle()

    assert [c.args["channel"] for c in room.slack.calls_to("conversations.unarchive")] == [channel]
    assert not room.slack.channels[channel].is_archived
    incident = room.stored(1)
    assert (incident.channel_id, incident.archived_at) == (channel, None)
    [event] = [e for e in room.timeline(1) if e.kind == "reopened"]
    assert event.data["previous_channel"] == channel
    assert event.data["room"] == "unarchived"
    assert any("is reopened" in str(m["text"]) for m in room.slack.messages["C0ANNOUNCE"])
    assert any("this room is back" in str(m["text"]) for m in room.slack.messages[channel])
    assert "Investigating" in room.slack.channels[channel].topic


async def test_reopen_opens_a_new_room_when_slack_refuses_to_unarchive(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    old = await archived_room(room, clock)
    old_name = room.slack.channels[old].name
    room.slack.unarchive_error = "not_authorized"

    ephemeral(await room.command("INC-1 reopen still failing", channel="C0GENERAL"))
    await room.settle()

    incident = room.stored(1)
    new = incident.channel_id
    assert new is not None and new != old
    assert room.slack.channels[old].is_archived
    assert incident.channel_name == f"{old_name}-2"
    assert incident.archived_at is None
    [event] = [e for e in room.timeline(1) if e.kind == "reopened"]
    assert event.data["previous_channel"] == old
    assert (event.data["room"], event.data["channel"]) == ("new", new)
    # The new room: its people, its topic, a pinned header, and the way to the old room.
    assert "U0ANA" in room.slack.channels[new].members
    assert room.slack.channels[new].topic.startswith("INC-1 SEV1 | Investigating")
    assert incident.header_ts in room.slack.channels[new].pins
    [link] = [m["text"] for m in room.slack.messages[new] if "earlier war room" in m["text"]]
    assert f"<#{old}>" in link
    # What is said in the new room goes on INC-1's timeline.
    said = room.slack.user_says(new, "U0ANA", "looking at the pool again")
    assert (await room.event({**said, "channel": new})).status == 200
    said_events = [e for e in room.timeline(1) if e.kind == "message"]
    assert [e.text for e in said_events] == ["looking at the pool again"]


async def test_a_private_incident_reopens_without_its_title_leaving_the_room(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await war_room(room, f"--private {TITLE} sev1")
    ephemeral(await room.command("resolve", channel=channel))
    ephemeral(await room.command("reopen payroll leak again", channel=channel))
    await room.settle()
    assert room.stored(1).status == Status.INVESTIGATING
    assert any("is reopened" in str(m["text"]) for m in room.slack.messages[channel])
    announced = [str(m["text"]) for m in room.slack.messages.get("C0ANNOUNCE", [])]
    assert not any("reopened" in text for text in announced)
