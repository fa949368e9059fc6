"""The comms ledger of an incident played through the commands on the services' clock: one
update on time, one late, and the gap to resolution, as the JSON and HTML exports show it."""

from __future__ import annotations

import json
from datetime import timedelta

from bot.incidents.enums import Status
from storage import incidents as incident_store
from storage import timeline as timeline_store
from tests.support.exports import parse_html
from tests.support.home import Clock
from tests.support.warroom import Reply, Warroom, WarroomFactory

TOKEN = "ledger-token"


def ok(reply: Reply) -> None:
    assert reply.status == 200, reply.text


async def get(room: Warroom, path: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with room.http.get(room.server.make_url(path), headers=headers) as response:
        assert response.status == 200, await response.text()
        return await response.text()


async def test_an_incident_with_updates_on_time_and_late(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_warroom(
        database_url=database_url, clock=clock, env={"warroom_export_token": TOKEN}
    )
    declared = clock.now
    channel = (await room.declare("Checkout API returning 500s sev1")).channel_id or ""
    clock.advance(timedelta(minutes=10))  # on time: the first deadline is at 30m
    ok(await room.command("update We are looking into checkout errors.", channel=channel))
    clock.advance(timedelta(minutes=45))  # late: the deadline at 40m passed
    ok(await room.command("update A fix is rolling out.", channel=channel))
    clock.advance(timedelta(minutes=45))  # resolved at 100m; the deadline at 85m passed
    ok(await room.command("status resolved", channel=channel))
    await room.settle()

    # SEV1 wants an update every 30 minutes: 100 minutes open makes 3 due, 2 of them missed.
    document = json.loads(await get(room, "/incidents/1/timeline.json"))
    comms = document["incident"]["comms"]
    first = declared + timedelta(minutes=10)
    assert comms == {
        "first_update_at": first.isoformat().replace("+00:00", "Z"),
        "first_update_after_seconds": 600,
        "updates": 2,
        "due": 3,
        "missed": 2,
        "longest_gap_seconds": 45 * 60,
        "on_time_ratio": 0.3333,
    }

    page = parse_html(await get(room, "/incidents/1/timeline.html"))
    text = " ".join(t.strip() for t in page.text if t.strip())
    assert "Customer updates" in text
    assert "Cadence (SEV1) every 30m" in text
    assert "Updates sent 2 Due while open 3 Missed 2 On time 33% Longest gap 45m" in text
    assert "10m after declaration" in text


async def test_a_declined_incident_is_measured_to_its_decline(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    clock = Clock()
    room = await make_warroom(
        database_url=database_url, clock=clock, env={"warroom_export_token": TOKEN}
    )
    declared = clock.now - timedelta(days=2)
    with room.services.db.unit_of_work() as session:
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title="False alarm",
            severity="sev1",
            declared_at=declared,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id=None,
        )
        assert incident.id is not None
        incident.status = Status.DECLINED
        session.add(incident)
        timeline_store.add_event(
            session,
            incident_id=incident.id,
            kind="declined",
            at=declared + timedelta(minutes=45),
            actor_id="U0ANA",
            actor_name="ana",
            text="not an incident",
        )

    # Declined after 45 minutes, not measured to now two days later: one deadline, missed.
    comms = json.loads(await get(room, "/incidents/1/timeline.json"))["incident"]["comms"]
    assert (comms["due"], comms["missed"], comms["longest_gap_seconds"]) == (1, 1, 45 * 60)
