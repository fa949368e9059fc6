"""Archiving war rooms end to end, through the real server, the fake Slack and a real database:
a resolved incident's room after `archive_after` once its post-mortem is done (the final
timeline posted first), a declined one's after `archive_closed_after`, a room archived by hand
put on the record, Slack's refusals, and two replicas sweeping at once archiving once."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlmodel import Session

from bot.incidents.enums import Status
from bot.reminders.scheduler import ARCHIVE_JOB
from storage import incidents as incident_store
from tests.support.fakes.slack_api import FakeSlack
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom

TITLE = "Checkout API returning 500s"
POSTMORTEM = "https://wiki.example.com/pm/1"


def methods(slack: FakeSlack, channel_id: str) -> list[str]:
    """The archive-related calls Slack received for one channel, in order."""
    wanted = {"files.completeUploadExternal", "conversations.archive"}
    return [
        c.method
        for c in slack.calls
        if c.method in wanted and channel_id in (c.args.get("channel"), c.args.get("channel_id"))
    ]


def uploads_to(slack: FakeSlack, channel_id: str) -> list[dict[str, object]]:
    return [u for u in slack.uploads.values() if u.get("channel") == channel_id]


async def war_room(room: Warroom) -> str:
    """INC-1 (SEV1) declared by ana; its war room's channel."""
    channel = (await room.declare(f"{TITLE} sev1")).channel_id
    assert channel is not None
    return channel


async def resolved_room(room: Warroom, *, postmortem: bool = True) -> str:
    """INC-1 (SEV1) declared by ana, resolved, with its post-mortem done if asked; its room."""
    channel = await war_room(room)
    assert (await room.command("resolve fixed", channel=channel)).status == 200
    if postmortem:
        reply = await room.command(f"postmortem done {POSTMORTEM}", channel=channel)
        assert "recorded" in reply.message, reply.text
    await room.settle()
    return channel


async def due_for_archive(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> tuple[Clock, Warroom, str]:
    """INC-1 resolved, its post-mortem done, 15 days on (past the default archive_after): the
    clock, the app, and the room."""
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await resolved_room(room)
    clock.advance(timedelta(days=15))
    return clock, room, channel


async def archived(room: Warroom, channel: str) -> None:
    """Wait until the sweep under way (this test's, or the scheduler's own) has recorded it."""
    await room.slack.wait_for(
        lambda: room.slack.channels[channel].is_archived and "archived" in room.kinds(1)
    )


async def test_resolved_room_is_archived_after_its_postmortem_with_its_timeline_posted_first(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await resolved_room(room, postmortem=False)

    # Post-mortem owed: 15 days on, the room stays.
    clock.advance(timedelta(days=15))
    assert await room.services.archive.sweep() == []
    assert not room.slack.channels[channel].is_archived
    assert room.stored(1).archived_at is None

    reply = await room.command(f"postmortem done {POSTMORTEM}", channel=channel)
    assert "recorded" in reply.message
    await room.services.archive.sweep()
    await archived(room, channel)

    # The final timeline went to the room first, as HTML and JSON, then the room was archived.
    assert methods(room.slack, channel) == [
        "files.completeUploadExternal",
        "files.completeUploadExternal",
        "conversations.archive",
    ]
    files = uploads_to(room.slack, channel)
    assert sorted(str(f["title"]) for f in files) == [
        "INC-1 timeline (html)",
        "INC-1 timeline (json)",
    ]
    [as_json] = [f for f in files if str(f["title"]).endswith("(json)")]
    document = json.loads(bytes(as_json["content"]))  # type: ignore[arg-type]
    assert document["incident"]["status"] == "resolved"
    assert document["incident"]["archived_at"] is not None
    incident = room.stored(1)
    assert incident.archived_at == clock.now
    event = room.timeline(1)[-1]
    assert event.kind == "archived"
    assert event.data == {"channel": channel, "exports": ["html", "json"]}

    # Archived once: later sweeps leave it alone.
    clock.advance(timedelta(days=1))
    assert await room.services.archive.sweep() == []
    assert methods(room.slack, channel).count("conversations.archive") == 1


async def test_the_leader_runs_the_sweep_every_minute(warroom: Warroom) -> None:
    job = warroom.services.clocks.scheduler.get_job(ARCHIVE_JOB)
    assert job is not None
    assert job.trigger.interval == timedelta(seconds=60)


async def test_resolved_room_waits_for_archive_after(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {"archive_after": "2d"}, database_url)
    channel = await resolved_room(room)
    clock.advance(timedelta(days=2) - timedelta(minutes=1))
    assert await room.services.archive.sweep() == []
    assert methods(room.slack, channel) == []
    clock.advance(timedelta(minutes=2))
    await room.services.archive.sweep()
    await archived(room, channel)


async def test_declined_room_is_archived_an_hour_after_it_was_declined(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await war_room(room)
    clock.advance(timedelta(minutes=5))
    reply = await room.command("decline Not an incident: a test page", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    assert room.stored(1).status == Status.DECLINED
    clock.advance(timedelta(minutes=59))
    assert await room.services.archive.sweep() == []
    assert not room.slack.channels[channel].is_archived
    clock.advance(timedelta(minutes=2))
    await room.services.archive.sweep()
    await archived(room, channel)
    assert room.stored(1).resolved_at is None


async def test_a_room_archived_by_hand_is_recorded_once_and_not_archived_again(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {}, database_url)
    channel = await war_room(room)
    room.slack.channels[channel].is_archived = True
    event = {"type": "channel_archive", "channel": channel, "user": "U0BO"}
    assert (await room.event(event, event_id="EvARCHIVE1")).status == 200
    # Slack's retry of the same delivery, and a channel that is no war room, change nothing.
    assert (await room.event(event, event_id="EvARCHIVE1", retry=1)).status == 200
    other = {"type": "channel_archive", "channel": "C0GENERAL", "user": "U0BO"}
    assert (await room.event(other)).status == 200
    # A private war room's comes as group_archive.
    assert (await room.event({**event, "type": "group_archive"})).status == 200

    [recorded] = [e for e in room.timeline(1) if e.kind == "channel_archive"]
    assert (recorded.actor_id, recorded.data) == ("U0BO", {"channel": channel})
    assert room.stored(1).archived_at == clock.now

    # Resolved and written up later, it is not archived a second time.
    room.slack.channels[channel].is_archived = False  # (so that the commands' posts land)
    await resolved_room_after(room, channel)
    clock.advance(timedelta(days=30))
    assert await room.services.archive.sweep() == []
    assert methods(room.slack, channel) == []


async def resolved_room_after(room: Warroom, channel: str) -> None:
    assert (await room.command("resolve", channel=channel)).status == 200
    assert (await room.command(f"postmortem done {POSTMORTEM}", channel=channel)).status == 200
    await room.settle()


async def test_our_own_archive_is_not_recorded_as_one_by_hand(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    _, room, channel = await due_for_archive(make_clocked_warroom, database_url)
    await room.services.archive.sweep()
    await archived(room, channel)
    # Slack tells every app of the archive, warroom's own included.
    event = {"type": "channel_archive", "channel": channel, "user": "UBOT0001"}
    assert (await room.event(event)).status == 200
    assert "channel_archive" not in room.kinds(1)


async def test_a_failed_archive_is_tried_again_and_a_permanent_refusal_is_not(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    _, room, channel = await due_for_archive(make_clocked_warroom, database_url)

    # Slack down (500s through the client's retries): nothing recorded, the claim given back.
    room.slack.fail("conversations.archive", status=500, times=10)
    assert await room.services.archive.sweep() == []
    assert room.stored(1).archived_at is None
    assert "archived" not in room.kinds(1)
    room.slack.faults.pop("conversations.archive", None)
    await room.services.archive.sweep()
    await archived(room, channel)
    # The retry posted the timeline again (the first attempt's files stay in the room).
    assert len(uploads_to(room.slack, channel)) == 4


async def test_slack_refusing_for_good_is_not_retried_every_minute(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock, room, channel = await due_for_archive(make_clocked_warroom, database_url)
    room.slack.fail("conversations.archive", error="not_in_channel", times=5)
    assert await room.services.archive.sweep() == []
    clock.advance(timedelta(minutes=1))
    assert await room.services.archive.sweep() == []
    # Nor after the time a half-done claim is taken over: the refusal is on the record.
    clock.advance(timedelta(minutes=11))
    assert await room.services.archive.sweep() == []
    assert methods(room.slack, channel).count("conversations.archive") == 1
    assert not room.slack.channels[channel].is_archived
    assert "archived" not in room.kinds(1)
    [note] = [e for e in room.timeline(1) if e.kind == "note"]
    assert note.data == {"archive_error": "not_in_channel"}
    assert note.text is not None and "Archive it by hand" in note.text


async def test_a_claim_left_by_a_stopped_process_is_taken_over(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock, room, channel = await due_for_archive(make_clocked_warroom, database_url)
    # A replica claimed it and stopped before archiving anything.
    claimed_at = clock.now

    def _claim(session: Session) -> bool:
        return incident_store.claim_archive(session, incident_id=1, now=claimed_at)

    assert await room.services.db.run(_claim)
    clock.advance(timedelta(minutes=9))
    assert await room.services.archive.sweep() == []
    clock.advance(timedelta(minutes=2))
    await room.services.archive.sweep()
    await archived(room, channel)
    assert room.stored(1).archived_at == clock.now
    assert methods(room.slack, channel).count("conversations.archive") == 1


async def test_two_replicas_sweeping_at_once_archive_once(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    clock = Clock()
    first = await make_clocked_warroom(clock, {}, database_url)
    second = await make_clocked_warroom(clock, {}, database_url)
    channel = await resolved_room(first)
    clock.advance(timedelta(days=15))
    results = await asyncio.gather(first.services.archive.sweep(), second.services.archive.sweep())
    await archived(first, channel)
    assert sorted(len(r) for r in results) in ([0, 1], [0, 0])
    assert methods(first.slack, channel).count("conversations.archive") == 1
    assert len(uploads_to(first.slack, channel)) == 2
    assert first.kinds(1).count("archived") == 1
