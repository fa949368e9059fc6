"""Replays: the very same signed request sent again (Slack's signature holds for 5 minutes) is
carried out once. Every command, form submission and button is idempotent on its request: a
replay is answered (the same, or "already done") and changes nothing: no second timeline entry,
no second post, no second outbox row. On SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import Session, col, func, select

from bot.ids import ActionId, BlockId, CallbackId
from storage.models import Incident, OutboxMessage, RoleAssignment
from tests.support.interactions import FORM, Interactions
from tests.support.warroom import Reply, Warroom, WarroomFactory, ephemeral

UPDATE = "Card payments fail for some customers; we are rolling back the release."
ALREADY = "That request was handled already; it is not run twice."


# -- helpers ---------------------------------------------------------------------------


def assert_closes(reply: Reply) -> None:
    """A form submission that was taken: 200 and an empty body (the modal closes)."""
    assert reply.status == 200, reply.text
    assert reply.text == "", reply.text


def outbox_rows(room: Warroom) -> int:
    with Session(room.services.db.engine) as session:
        return int(session.exec(select(func.count()).select_from(OutboxMessage)).one())


def record(room: Warroom) -> tuple[list[tuple[str, str | None, str | None]], int]:
    """Everything a replay must leave alone: the timeline (kind, actor, text) and the outbox."""
    events = [(e.kind, e.actor_id, e.text) for e in room.timeline()]
    return events, outbox_rows(room)


def posts(room: Warroom, channel: str, containing: str) -> list[str]:
    """The messages posted in `channel` (chat.postMessage) that contain `containing`."""
    return [
        str(c.args["text"])
        for c in room.slack.calls_to("chat.postMessage")
        if c.args["channel"] == channel and containing in str(c.args.get("text"))
    ]


def ephemerals(room: Warroom, user_id: str) -> list[str]:
    return [
        str(c.args["text"])
        for c in room.slack.calls_to("chat.postEphemeral")
        if c.args["user"] == user_id
    ]


def stored(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def comms_holders(room: Warroom) -> list[str]:
    with Session(room.services.db.engine) as session:
        rows = session.exec(
            select(RoleAssignment)
            .where(RoleAssignment.role == "comms")
            .where(col(RoleAssignment.relieved_at).is_(None))
        ).all()
        return [r.user_id for r in rows]


async def open_modal(
    room: Warroom, ui: Interactions, action: ActionId, channel: str
) -> dict[str, Any]:
    """Click a header button as the commander; the modal it opened."""
    reply = await ui.click(action, "1", channel=channel)
    assert reply.status == 200 and reply.text == "", reply.text
    return ui.opened()


@pytest.fixture
async def room(make_warroom: WarroomFactory, database_url: str) -> Warroom:
    return await make_warroom(None, database_url)


@pytest.fixture
async def war_room(room: Warroom) -> str:
    """INC-1 (SEV1), declared by U0ANA, its commander; the id of its channel."""
    declared = await room.declare("Checkout API returning 500s sev1")
    assert declared.channel_id is not None
    return declared.channel_id


# -- slash commands ----------------------------------------------------------------------


async def test_an_update_sent_three_times_at_once_is_posted_once(
    room: Warroom, war_room: str
) -> None:
    request = room.sign(room.command_body(f"update {UPDATE}", channel=war_room), FORM)
    before = outbox_rows(room)
    # Side by side: on PostgreSQL the replays race the original for the command's key.
    replies = await asyncio.gather(*(room.send(request) for _ in range(3)))
    await room.settle()
    answers = sorted(ephemeral(r) for r in replies)
    posted = "Customer update for INC-1 posted in the war room and the announcement channel."
    assert answers == sorted([posted, ALREADY, ALREADY])
    assert room.kinds(1).count("customer_update") == 1
    assert [e.text for e in room.timeline(1) if e.kind == "command"][-1:] == [
        f"/incident update {UPDATE}"
    ]
    assert len(posts(room, war_room, UPDATE)) == 1
    assert len(posts(room, "C0ANNOUNCE", UPDATE)) == 1
    assert outbox_rows(room) == before + 2


async def test_a_note_sent_again_is_noted_once(room: Warroom, war_room: str) -> None:
    request = room.sign(room.command_body("note rolled back 4.2.1", channel=war_room), FORM)
    assert ephemeral(await room.send(request)) == "Noted on the INC-1 timeline."
    after_first = record(room)
    for _ in range(2):
        assert ephemeral(await room.send(request)) == ALREADY
    await room.settle()
    assert record(room) == after_first
    assert [e.text for e in room.timeline(1) if e.kind == "note"] == ["rolled back 4.2.1"]


async def test_a_status_change_sent_again_later_does_not_undo_the_next_one(
    room: Warroom, war_room: str
) -> None:
    monitoring = room.sign(room.command_body("status monitoring", channel=war_room), FORM)
    assert ephemeral(await room.send(monitoring)) == "INC-1 is now *monitoring*."
    assert ephemeral(await room.command("status identified", channel=war_room)) == (
        "INC-1 is now *identified*."
    )
    await room.settle()
    before = record(room)
    assert ephemeral(await room.send(monitoring)) == ALREADY
    await room.settle()
    assert stored(room).status == "identified"
    assert record(room) == before
    assert [e.text for e in room.timeline(1) if e.kind == "status_changed"] == [
        "Status investigating → monitoring",
        "Status monitoring → identified",
    ]


async def test_a_postmortem_draft_sent_again_is_posted_once(room: Warroom, war_room: str) -> None:
    assert ephemeral(await room.command("resolve Rolled back", channel=war_room)).startswith(
        ":white_check_mark: INC-1 is resolved."
    )
    request = room.sign(room.command_body("postmortem", channel=war_room), FORM)
    assert ephemeral(await room.send(request)) == (
        "A post-mortem draft for INC-1 is posted in the war room."
    )
    await room.settle()
    after_first = record(room)
    drafts = posts(room, war_room, "Checkout API returning 500s")
    assert ephemeral(await room.send(request)) == ALREADY
    await room.settle()
    assert record(room) == after_first
    assert posts(room, war_room, "Checkout API returning 500s") == drafts
    assert [e.data for e in room.timeline(1) if e.kind == "postmortem"] == [{"action": "draft"}]


async def test_an_export_sent_again_is_uploaded_once(room: Warroom, war_room: str) -> None:
    request = room.sign(room.command_body("export md", channel=war_room), FORM)
    assert ephemeral(await room.send(request)).startswith("Uploading the INC-1 timeline (md)")
    await room.settle()
    assert len(room.slack.calls_to("files.completeUploadExternal")) == 1
    assert ephemeral(await room.send(request)) == ALREADY
    await room.settle()
    assert len(room.slack.calls_to("files.completeUploadExternal")) == 1


# -- forms and buttons -----------------------------------------------------------------


async def test_the_update_form_submitted_again_posts_once(room: Warroom, war_room: str) -> None:
    ui = Interactions(room)
    view = await open_modal(room, ui, ActionId.HEADER_POST_UPDATE, war_room)
    assert view["callback_id"] == CallbackId.UPDATE_MODAL
    before = outbox_rows(room)
    request = ui.signed(ui.submission_payload(view, {BlockId.UPDATE_TEXT: UPDATE}))
    assert_closes(await room.send(request))
    await room.settle()
    after_first = record(room)
    assert outbox_rows(room) == before + 2
    for _ in range(2):
        # Answered as the first was: the modal closes.
        assert_closes(await room.send(request))
    await room.settle()
    assert record(room) == after_first
    assert room.kinds(1).count("customer_update") == 1
    assert len(posts(room, war_room, UPDATE)) == 1
    assert len(posts(room, "C0ANNOUNCE", UPDATE)) == 1
    told = [t for t in ephemerals(room, "U0ANA") if t.startswith("Customer update for INC-1")]
    assert len(told) == 1, told


async def test_the_role_form_submitted_again_later_does_not_take_the_role_back(
    room: Warroom, war_room: str
) -> None:
    ui = Interactions(room)
    view = await open_modal(room, ui, ActionId.HEADER_ASSIGN_ROLE, war_room)
    answers = {BlockId.ROLE: "comms", BlockId.ROLE_HOLDER: "U0BO"}
    request = ui.signed(ui.submission_payload(view, answers))
    assert_closes(await room.send(request))
    handover = await room.command("role comms <@U0CY>", channel=war_room)
    assert ephemeral(handover) == "<@U0CY> is now comms of INC-1."
    await room.settle()
    before = record(room)
    briefings = len(ephemerals(room, "U0BO"))
    assert_closes(await room.send(request))
    await room.settle()
    assert comms_holders(room) == ["U0CY"]
    assert record(room) == before
    assert len(ephemerals(room, "U0BO")) == briefings, "no second briefing"


async def test_a_refused_click_sent_again_is_told_once(room: Warroom, war_room: str) -> None:
    ui = Interactions(room)
    room.slack.channels[war_room].members.add("U0CY")
    click = ui.click_payload(ActionId.HEADER_RESOLVE, "1", user="U0CY", channel=war_room)
    request = ui.signed(click)
    for _ in range(3):
        reply = await room.send(request)
        assert reply.status == 200 and reply.text == "", reply.text
    await room.settle()
    reason = "Only the commander (ana) or an admin can resolve the incident in INC-1."
    assert ephemerals(room, "U0CY") == [reason]
    refused = [e for e in room.timeline(1) if e.kind == "command_refused"]
    assert [(e.actor_id, e.text) for e in refused] == [("U0CY", "/incident INC-1 resolve")]
    assert room.slack.calls_to("views.open") == [], "no modal for a refused click"
    assert stored(room).status == "investigating"


async def test_the_status_form_submitted_again_closes_as_the_first_did(
    room: Warroom, war_room: str
) -> None:
    ui = Interactions(room)
    view = await open_modal(room, ui, ActionId.HEADER_CHANGE_STATUS, war_room)
    answers = {BlockId.STATUS: "monitoring", BlockId.SEVERITY: "sev2"}
    request = ui.signed(ui.submission_payload(view, answers))
    assert_closes(await room.send(request))
    await room.settle()
    before = record(room)
    # Read against today's state the form would change nothing; it is known as done before.
    assert_closes(await room.send(request))
    await room.settle()
    assert record(room) == before
    incident = stored(room)
    assert (incident.status, incident.severity) == ("monitoring", "sev2")
    told = [t for t in ephemerals(room, "U0ANA") if t.startswith("INC-1 is now *monitoring*")]
    assert len(told) == 1, told
