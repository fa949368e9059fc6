"""Triage, accept, decline and merge through the real server and the fake Slack: an alert's
incident starts in triage and is accepted or declined, a duplicate is merged into the incident it
repeats (its people invited, both rooms told, its events in the other's JSON export), and each
command that does not fit the incident's state gets a short refusal that changes nothing."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from storage.models import Incident, Reminder
from tests.support.alerts import alert, alert_room, fire, notification
from tests.support.warroom import Warroom, WarroomFactory, ephemeral

EXPORT_TOKEN = "export-token-9d1e"
# SEV1 must be acknowledged within a second: an escalation would follow fast if the clock ran.
FAST_CLOCKS: dict[str, Any] = {
    "severities": {"sev1": {"ack_within": "1s", "update_every": "1s"}},
    "postmortem_remind_every": None,
}


# -- helpers ---------------------------------------------------------------------------


def stored(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def clocks(room: Warroom, number: int = 1) -> dict[str, bool]:
    """Which of the incident's clocks run: kind -> active."""
    incident_id = stored(room, number).id
    with Session(room.services.db.engine) as session:
        rows = session.exec(select(Reminder).where(Reminder.incident_id == incident_id)).all()
        return {r.kind: r.active for r in rows}


def channel(room: Warroom, number: int = 1) -> str:
    channel_id = stored(room, number).channel_id
    assert channel_id, f"INC-{number} has no war room"
    return channel_id


def texts(room: Warroom, channel_id: str) -> list[str]:
    return [m["text"] for m in room.slack.messages.get(channel_id, [])]


async def command(room: Warroom, text: str, *, user: str, where: str) -> str:
    reply = await room.command(text, user=user, channel=where)
    message = ephemeral(reply)
    await room.settle()
    return message


async def refused(room: Warroom, text: str, *, user: str, where: str) -> str:
    """Run a command that must be refused and change nothing; return the refusal."""
    before = (stored(room).status, room.kinds(1), stored(room, 2).status if _has(room, 2) else None)
    message = await command(room, text, user=user, where=where)
    after = (stored(room).status, room.kinds(1), stored(room, 2).status if _has(room, 2) else None)
    # Only the refused command itself goes on the record.
    assert after[0] == before[0] and after[2] == before[2]
    records = ("command", "command_refused")
    assert [k for k in after[1] if k not in records] == [k for k in before[1] if k not in records]
    return message


def _has(room: Warroom, number: int) -> bool:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).first() is not None


# -- triage and accept -------------------------------------------------------------------


async def test_an_alert_is_triaged_then_accepted(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await alert_room(make_warroom, database_url=database_url)
    await fire(room, notification())
    row = stored(room)
    assert row.status == "triage" and row.acknowledged_at is None
    assert clocks(room) == {"ack": True}, "in triage only the acknowledgement clock runs"
    room_id = channel(room)
    assert room.slack.channels[room_id].topic.startswith("INC-1 SEV1 | Triage")

    listed = await command(room, "list", user="U0BO", where="C0GENERAL")
    assert "*INC-1* SEV1 *triage*" in listed

    assert "accept it first" in await refused(
        room, "status identified", user="U0ADMIN", where=room_id
    )
    assert "accept it first" in await refused(room, "resolve", user="U0ADMIN", where=room_id)

    reply = await command(room, "accept", user="U0BO", where=room_id)
    assert reply == "INC-1 accepted: it is now *investigating*. You are its commander."
    row = stored(room)
    assert row.status == "investigating" and row.acknowledged_at is not None
    assert clocks(room) == {"ack": False, "update": True}, "the update clock starts at accept"
    records = ("command", "command_refused")
    status_change, accepted, took = [e for e in room.timeline(1) if e.kind not in records][-3:]
    assert status_change.kind == "status_changed"
    assert status_change.data == {"from": "triage", "to": "investigating"}
    assert accepted.kind == "accepted" and accepted.actor_id == "U0BO"
    assert took.kind == "role_assigned" and took.data["role"] == "commander"
    assert room.slack.channels[room_id].topic.startswith("INC-1 SEV1 | Investigating")
    assert "Commander: bo" in room.slack.channels[room_id].topic

    again = await refused(room, "accept", user="U0CY", where=room_id)
    assert again == "INC-1 is not in triage; it is investigating."


async def test_a_person_may_declare_for_triage(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    reply = await command(
        room, "declare --triage Odd latency on search sev2", user="U0ANA", where="C0GENERAL"
    )
    assert "Declared *INC-1* (SEV2): Odd latency on search" in reply
    row = stored(room)
    assert row.status == "triage" and row.title == "Odd latency on search"
    assert "update" not in clocks(room)


# -- decline -----------------------------------------------------------------------------


async def test_a_declined_alert_stops_its_clocks_and_amends_its_announcement(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await alert_room(make_warroom, FAST_CLOCKS, database_url=database_url)
    await fire(room, notification())
    room_id = channel(room)
    [announcement] = room.slack.messages["C0ANNOUNCE"]
    assert stored(room).announce_ts == announcement["ts"]

    # Nobody is in command: anyone may decline.
    reply = await command(
        room, "decline flapping probe, <!here> not real", user="U0CY", where=room_id
    )
    assert reply.startswith("INC-1 is declined: flapping probe")
    assert "<!here>" not in reply
    row = stored(room)
    assert row.status == "declined" and row.resolved_at is None
    assert clocks(room) == {"ack": False}
    [declined] = [e for e in room.timeline(1) if e.kind == "declined"]
    assert declined.actor_id == "U0CY"
    assert declined.data == {"reason": "flapping probe, @here not real"}
    jobs = room.services.clocks.scheduler
    assert jobs.get_job(f"reminder:{row.id}:ack") is None
    assert any("INC-1 was declined: flapping probe" in t for t in texts(room, room_id))
    assert room.slack.channels[room_id].topic.startswith("INC-1 SEV1 | Declined")

    # The announcement, amended in place.
    [update] = [c for c in room.slack.calls_to("chat.update") if c.args["channel"] == "C0ANNOUNCE"]
    assert update.args["ts"] == announcement["ts"]
    assert "INC-1" in update.args["text"] and "declined: flapping probe" in update.args["text"]
    assert "<!here>" not in update.args["text"]

    # The witness: a second alert's escalation, due a second after it, comes and goes; the
    # declined incident's did not.
    await fire(room, notification(group_key='{}:{alertname="DiskFull"}'))
    await room.slack.wait_for(
        lambda: any(e.kind == "escalation" for e in room.timeline(2)), timeout=10
    )
    assert "escalation" not in room.kinds(1) and "reminder" not in room.kinds(1)

    # A declined incident is no longer listed, and nothing more changes on it.
    assert "INC-1" not in await command(room, "list", user="U0BO", where="C0GENERAL")
    for text in ("update all good", "ack", "sev 2", "decline again", "merge INC-2", "accept"):
        answer = await refused(room, text, user="U0ADMIN", where=room_id)
        assert answer == "INC-1 was declined; nothing more can change on it.", text

    # An alert of the same group firing again declares a new incident.
    result = await fire(room, notification(alert(instance="checkout-2:8080")))
    assert result["incident"] == "INC-3" and result["declared"]


async def test_a_resolved_incident_cannot_be_declined_or_merged(warroom: Warroom) -> None:
    first = await warroom.declare("Checkout API returning 500s sev1")
    await warroom.declare("Search is slow sev2")
    room_id = first.channel_id or ""
    await command(warroom, "resolve rolled back", user="U0ANA", where=room_id)
    answer = await refused(warroom, "decline not real", user="U0ANA", where=room_id)
    assert answer == "INC-1 is resolved; it cannot be declined."
    answer = await refused(warroom, "merge INC-2", user="U0ANA", where=room_id)
    assert answer == "INC-1 is resolved; it cannot be merged."
    usage = await refused(warroom, "INC-2 decline", user="U0BO", where="C0GENERAL")
    assert "Say why it is declined" in usage
    other = await refused(warroom, "INC-2 decline dup", user="U0BO", where="C0GENERAL")
    assert other.startswith("Only the commander (ana) or an admin can decline the incident")


# -- merge -------------------------------------------------------------------------------


async def test_a_duplicate_is_merged_with_its_people_and_timeline(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url, env={"warroom_export_token": EXPORT_TOKEN})
    target = await room.declare("Checkout API returning 500s sev1", user="U0ANA")
    duplicate = await room.declare("Payments failing sev2", user="U0BO")
    target_room, duplicate_room = target.channel_id or "", duplicate.channel_id or ""
    await command(room, "role comms <@U0CY>", user="U0BO", where=duplicate_room)
    await command(room, "note card payments time out", user="U0CY", where=duplicate_room)
    assert "U0BO" not in room.slack.channels[target_room].members

    reply = await command(room, "merge INC-1", user="U0BO", where=duplicate_room)
    assert reply == f"INC-2 is merged into *INC-1*; carry on in <#{target_room}>."

    row = stored(room, 2)
    assert row.status == "merged" and row.merged_into_id == target.id and row.resolved_at is None
    assert not any(clocks(room, 2).values()), "the duplicate's clocks stop"
    [merged] = [e for e in room.timeline(2) if e.kind == "merged"]
    assert merged.data == {"into": "INC-1"}
    [joined] = [e for e in room.timeline(1) if e.kind == "merged"]
    assert joined.data == {"from": "INC-2"} and joined.at == merged.at
    assert stored(room, 1).status == "investigating"

    # Both rooms told, each with a link to the other; the duplicate's people invited.
    assert any(f"carry on in <#{target_room}>" in t for t in texts(room, duplicate_room))
    assert any("*INC-2*" in t and f"<#{duplicate_room}>" in t for t in texts(room, target_room))
    assert {"U0BO", "U0CY"} <= room.slack.channels[target_room].members
    assert room.slack.channels[duplicate_room].topic.startswith("INC-2 SEV2 | Merged into INC-1")

    # The target's JSON export: its events and the duplicate's, in time order.
    url = room.server.make_url("/incidents/1/timeline.json")
    headers = {"Authorization": f"Bearer {EXPORT_TOKEN}"}
    async with room.http.get(url, headers=headers) as response:
        assert response.status == 200, await response.text()
        document = json.loads(await response.text())
    assert document["incident"]["merged_into"] is None
    events = document["events"]
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    from_duplicate = [e for e in events if e["data"].get("merged_from") == "INC-2"]
    assert [e["kind"] for e in from_duplicate if e["kind"] != "command"][:3] == [
        "declared",
        "role_assigned",
        "role_assigned",
    ]
    assert any(e["text"] == "card payments time out" for e in from_duplicate)
    own = [e for e in events if "merged_from" not in e["data"] and e["kind"] != "command"]
    assert own[0]["kind"] == "declared" and own[0]["text"] == "Checkout API returning 500s"
    async with room.http.get(
        room.server.make_url("/incidents/2/timeline.json"), headers=headers
    ) as response:
        assert json.loads(await response.text())["incident"]["merged_into"] == "INC-1"

    for text in ("update all good", "merge INC-1", "role comms <@U0ANA>"):
        answer = await refused(room, text, user="U0ADMIN", where=duplicate_room)
        assert answer == "INC-2 was merged into INC-1; nothing more can change on it.", text


async def test_merges_that_make_no_sense_are_refused(warroom: Warroom) -> None:
    first = await warroom.declare("Checkout API returning 500s sev1", user="U0ANA")
    second = await warroom.declare("Payments failing sev2", user="U0ANA")
    third = await warroom.declare("Search is slow sev3", user="U0ANA")
    one, two = first.channel_id or "", second.channel_id or ""
    assert third.channel_id

    answer = await refused(warroom, "merge INC-1", user="U0ANA", where=one)
    assert answer == "INC-1 cannot be merged into itself."
    answer = await refused(warroom, "merge INC-99", user="U0ANA", where=one)
    assert answer == "There is no INC-99."
    answer = await refused(warroom, "merge soon", user="U0ANA", where=one)
    assert answer.startswith("Usage: `/incident merge INC-M")

    # Into an ended incident, or back along a chain (INC-2 went into INC-3).
    await command(warroom, "merge INC-3", user="U0ANA", where=two)
    answer = await refused(warroom, "merge INC-2", user="U0ANA", where=one)
    assert answer == "INC-2 is merged; merge into an open incident."
    await command(warroom, "INC-3 resolve done", user="U0ANA", where="C0GENERAL")
    answer = await refused(warroom, "merge INC-3", user="U0ANA", where=one)
    assert answer == "INC-3 is resolved; merge into an open incident."

    # A private incident into a public one would show its timeline to everyone.
    secret = await warroom.declare("--private Payroll export leaked sev2", user="U0ANA")
    answer = await refused(warroom, "merge INC-1", user="U0ANA", where=secret.channel_id or "")
    assert answer == (
        "INC-4 is private and INC-1 is not: merging would show its timeline to everyone."
    )
    assert stored(warroom, 4).status == "investigating"
