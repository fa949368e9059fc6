"""Buttons and modals end to end: signed block_actions and view_submission payloads through the
real server and Bolt, against the fake Slack Web API (views.open, chat.update, ...), asserting on
what Slack was asked and on the stored timeline."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.ids import ActionId, BlockId, CallbackId
from storage.models import Incident, RoleAssignment
from tests.support.interactions import Interactions
from tests.support.warroom import Reply, Warroom, WarroomFactory

LIVE_BROADCAST = re.compile(r"<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b", re.I)


# -- helpers ---------------------------------------------------------------------------


def assert_closes(reply: Reply) -> None:
    """The submission was taken: 200 and an empty body (the modal closes)."""
    assert reply.status == 200, reply.text
    assert reply.text == "", reply.text


def field_errors(reply: Reply) -> dict[str, str]:
    """The submission was refused on its fields (the modal stays open); the errors."""
    assert reply.status == 200, reply.text
    body = reply.json
    assert body["response_action"] == "errors", body
    assert "Traceback" not in reply.text and "went wrong" not in reply.text
    errors: dict[str, str] = body["errors"]
    return errors


def stored_incidents(room: Warroom) -> list[Incident]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def current_holders(room: Warroom, role: str, number: int = 1) -> list[str]:
    with Session(room.services.db.engine) as session:
        incident = session.exec(select(Incident).where(Incident.number == number)).one()
        rows = session.exec(
            select(RoleAssignment)
            .where(RoleAssignment.incident_id == incident.id)
            .where(RoleAssignment.role == role)
            .where(col(RoleAssignment.relieved_at).is_(None))
            .order_by(col(RoleAssignment.id))
        ).all()
        return [r.user_id for r in rows]


def header_message(room: Warroom, channel_id: str) -> dict[str, Any]:
    """The pinned header as Slack holds it now (chat.update replaces it in place)."""
    pinned = room.slack.channels[channel_id].pins[0]
    return next(m for m in room.slack.messages[channel_id] if m["ts"] == pinned)


def header_buttons(room: Warroom, channel_id: str) -> dict[str, str]:
    """The header's buttons: action id -> value."""
    blocks = header_message(room, channel_id)["blocks"]
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1, blocks
    return {e["action_id"]: e["value"] for e in actions[0]["elements"]}


def ephemerals(room: Warroom, user_id: str) -> list[str]:
    return [
        c.args["text"]
        for c in room.slack.calls_to("chat.postEphemeral")
        if c.args["user"] == user_id
    ]


def direct_messages(room: Warroom, user_id: str) -> list[str]:
    return [m["text"] for m in room.slack.messages.get(user_id, [])]


def input_element(view: dict[str, Any], block_id: str) -> dict[str, Any]:
    block = next(b for b in view["blocks"] if b.get("block_id") == block_id)
    element: dict[str, Any] = block["element"]
    return element


@pytest.fixture
def ui(warroom: Warroom) -> Interactions:
    return Interactions(warroom)


@pytest.fixture
async def war_room(warroom: Warroom) -> str:
    """INC-1 (SEV1), declared by U0ANA, its commander; the id of its channel."""
    declared = await warroom.declare("Checkout API returning 500s sev1")
    assert declared.channel_id is not None
    return declared.channel_id


async def open_modal(
    room: Warroom, ui: Interactions, action: ActionId, channel: str, *, user: str = "U0ANA"
) -> dict[str, Any]:
    """Click a header button and return the modal it opened."""
    value = header_buttons(room, channel)[action]
    before = len(room.slack.calls_to("views.open"))
    reply = await ui.click(action, value, user=user, channel=channel)
    assert reply.status == 200 and reply.text == "", reply.text
    assert len(room.slack.calls_to("views.open")) == before + 1, "no modal opened"
    return ui.opened()


# -- declare: the modal ----------------------------------------------------------------


async def test_declare_with_no_title_opens_the_modal(warroom: Warroom, ui: Interactions) -> None:
    body = warroom.command_body("declare")
    trigger = re.search(r"trigger_id=([\w-]+)", body)
    assert trigger is not None
    reply = await warroom.post(body, "application/x-www-form-urlencoded")
    # An empty ack: the form on screen is the answer, and Slack shows no message.
    assert reply.status == 200 and reply.text == ""
    [call] = warroom.slack.calls_to("views.open")
    # Opened before the ack, with the command's own trigger (it lives 3 s and works once).
    assert call.args["trigger_id"] == trigger.group(1)
    view = ui.opened(CallbackId.DECLARE_MODAL)
    assert [b["block_id"] for b in view["blocks"]] == [
        BlockId.TITLE,
        BlockId.SEVERITY,
        BlockId.SUMMARY,
        BlockId.COMMANDER,
        BlockId.RESPONDERS,
        BlockId.PRIVATE,
    ]
    severity = input_element(view, BlockId.SEVERITY)
    assert [o["value"] for o in severity["options"]] == ["sev1", "sev2", "sev3", "sev4"]
    assert severity["initial_option"]["value"] == "sev3"
    assert input_element(view, BlockId.COMMANDER)["initial_user"] == "U0ANA"
    assert json.loads(view["private_metadata"]) == {"channel": "C0GENERAL"}
    assert stored_incidents(warroom) == [], "nothing is declared until the form is submitted"


@pytest.mark.parametrize(("text", "severity"), [("new sev1", "sev1"), ("open SEV-2", "sev2")])
async def test_declare_with_only_a_severity_opens_the_modal_with_it(
    warroom: Warroom, ui: Interactions, text: str, severity: str
) -> None:
    reply = await warroom.command(text)
    assert reply.status == 200 and reply.text == ""
    view = ui.opened(CallbackId.DECLARE_MODAL)
    assert input_element(view, BlockId.SEVERITY)["initial_option"]["value"] == severity


async def test_the_modal_offers_the_configured_default_severity(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom({"default_severity": "sev2"})
    await room.command("declare")
    view = Interactions(room).opened(CallbackId.DECLARE_MODAL)
    assert input_element(view, BlockId.SEVERITY)["initial_option"]["value"] == "sev2"


async def test_a_modal_slack_will_not_open_is_answered_with_the_way_around(
    warroom: Warroom,
) -> None:
    warroom.slack.fail("views.open", error="expired_trigger_id")
    reply = await warroom.command("declare")
    assert reply.status == 200 and reply.json["response_type"] == "ephemeral"
    assert "expired_trigger_id" in reply.message
    assert "/incident declare &lt;title&gt;" in reply.message
    assert stored_incidents(warroom) == []


async def test_submitting_the_form_declares(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    ui = Interactions(room)
    await room.command("declare")
    reply = await ui.submit(
        ui.opened(CallbackId.DECLARE_MODAL),
        {
            BlockId.TITLE: "Checkout API returning 500s",
            BlockId.SEVERITY: "sev1",
            BlockId.SUMMARY: "Error rate at 40% since 14:02.",
            BlockId.RESPONDERS: ["U0BO", "U0CY"],
        },
    )
    # Taken only once the incident is committed.
    assert_closes(reply)
    [incident] = stored_incidents(room)
    assert (incident.title, incident.severity) == ("Checkout API returning 500s", "sev1")
    assert incident.origin_channel_id == "C0GENERAL"
    await room.settle()
    [incident] = stored_incidents(room)
    assert incident.channel_name == "inc-1-checkout-api-returning-500s"
    assert incident.channel_id is not None
    assert room.kinds(1)[:6] == [
        "command",
        "declared",
        "role_assigned",
        "role_assigned",
        "role_assigned",
        "note",
    ]
    command = room.timeline(1)[0]
    assert command.text == "/incident declare Checkout API returning 500s sev1"
    assert room.timeline(1)[5].text == "Error rate at 40% since 14:02."
    assert current_holders(room, "commander") == ["U0ANA"]
    assert current_holders(room, "resolver") == ["U0BO", "U0CY"]
    assert {"U0ANA", "U0BO", "U0CY"} <= room.slack.channels[incident.channel_id].members
    # The responders are briefed like anyone given a role, and the declarer told where to go.
    assert any("technical resolver" in t for t in ephemerals(room, "U0BO"))
    assert any("technical resolver" in t for t in ephemerals(room, "U0CY"))
    assert direct_messages(room, "U0ANA") == [f"INC-1 is open in <#{incident.channel_id}>."]
    # The header shows the responders (it is refreshed as each is welcomed) and the buttons.
    header = json.dumps(header_message(room, incident.channel_id)["blocks"])
    assert "*Resolver:* <@U0BO>, <@U0CY>" in header
    assert len(header_buttons(room, incident.channel_id)) == 4


async def test_the_form_can_give_command_to_someone_else(
    warroom: Warroom, ui: Interactions
) -> None:
    await warroom.command("declare")
    view = ui.opened(CallbackId.DECLARE_MODAL)
    assert_closes(await ui.submit(view, {BlockId.TITLE: "Search slow", BlockId.COMMANDER: "U0BO"}))
    await warroom.settle()
    assert current_holders(warroom, "commander") == ["U0BO"]
    events = warroom.timeline(1)
    assert [e.kind for e in events][:4] == ["command", "declared", "role_assigned", "role_assigned"]
    assert events[3].data["previous"] == "U0ANA"
    assert any("incident commander" in t for t in ephemerals(warroom, "U0BO"))


@pytest.mark.parametrize(
    ("answers", "block", "words"),
    [
        ({BlockId.TITLE: "   "}, BlockId.TITLE, "title"),
        ({BlockId.TITLE: ":fire: !!!"}, BlockId.TITLE, "in words"),
        ({BlockId.TITLE: "x" * 151}, BlockId.TITLE, "151 characters"),
        ({BlockId.TITLE: "Down", BlockId.SEVERITY: "sev9"}, BlockId.SEVERITY, "severities"),
        ({BlockId.TITLE: "Down", BlockId.COMMANDER: "UBOT0001"}, BlockId.COMMANDER, "people"),
        ({BlockId.TITLE: "Down", BlockId.RESPONDERS: ["U0NOBODY"]}, BlockId.RESPONDERS, "know"),
    ],
)
async def test_bad_form_input_comes_back_on_its_field(
    warroom: Warroom, ui: Interactions, answers: dict[str, Any], block: str, words: str
) -> None:
    await warroom.command("declare")
    errors = field_errors(await ui.submit(ui.opened(CallbackId.DECLARE_MODAL), answers))
    assert list(errors) == [block]
    assert words in errors[block]
    assert stored_incidents(warroom) == [], "nothing is declared"


async def test_user_text_from_the_form_is_never_a_broadcast(
    warroom: Warroom, ui: Interactions
) -> None:
    await warroom.command("declare")
    title = "<!channel> checkout @here & <@U0BO>"
    assert_closes(
        await ui.submit(
            ui.opened(CallbackId.DECLARE_MODAL),
            {BlockId.TITLE: title, BlockId.SUMMARY: "<!everyone> look"},
        )
    )
    await warroom.settle()
    [incident] = stored_incidents(warroom)
    # Stored as typed; made inert wherever it is posted.
    assert incident.title == title
    sent = [json.dumps(c.args) for c in warroom.slack.calls if c.method.startswith("chat.")]
    assert sent and not any(LIVE_BROADCAST.search(s) for s in sent)


async def test_a_war_room_that_fails_to_open_is_told_by_dm(
    warroom: Warroom, ui: Interactions
) -> None:
    warroom.slack.fail("conversations.create", error="restricted_action", times=5)
    await warroom.command("declare")
    assert_closes(await ui.submit(ui.opened(CallbackId.DECLARE_MODAL), {BlockId.TITLE: "Down"}))
    await warroom.settle()
    [dm] = direct_messages(warroom, "U0ANA")
    assert dm.startswith("INC-1 is recorded, but its war room could not be opened")
    assert "restricted_action" in dm


async def test_the_app_home_declare_button_opens_the_modal(
    warroom: Warroom, ui: Interactions
) -> None:
    reply = await ui.click(ActionId.DECLARE_OPEN, user="U0BO", trigger_id="trigger-home-1")
    assert reply.status == 200 and reply.text == ""
    [call] = warroom.slack.calls_to("views.open")
    assert call.args["trigger_id"] == "trigger-home-1"
    view = ui.opened(CallbackId.DECLARE_MODAL)
    assert input_element(view, BlockId.COMMANDER)["initial_user"] == "U0BO"
    assert_closes(await ui.submit(view, {BlockId.TITLE: "Login broken"}, user="U0BO"))
    [incident] = stored_incidents(warroom)
    assert incident.origin_channel_id is None
    assert incident.declared_by_id == "U0BO"


async def test_a_used_trigger_from_app_home_is_told_by_dm(
    warroom: Warroom, ui: Interactions
) -> None:
    await ui.click(ActionId.DECLARE_OPEN, trigger_id="trigger-twice")
    reply = await ui.click(ActionId.DECLARE_OPEN, trigger_id="trigger-twice")
    assert reply.status == 200
    await warroom.settle()
    [dm] = direct_messages(warroom, "U0ANA")
    assert "expired_trigger_id" in dm


# -- the header's buttons --------------------------------------------------------------


async def test_the_header_carries_the_buttons(warroom: Warroom, war_room: str) -> None:
    assert header_buttons(warroom, war_room) == {
        ActionId.HEADER_ASSIGN_ROLE: "1",
        ActionId.HEADER_POST_UPDATE: "1",
        ActionId.HEADER_CHANGE_STATUS: "1",
        ActionId.HEADER_RESOLVE: "1",
    }


async def test_assign_role_from_the_header(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_ASSIGN_ROLE, war_room)
    assert view["callback_id"] == CallbackId.ROLE_MODAL and view["private_metadata"] == "1"
    updates_before = len(warroom.slack.calls_to("chat.update"))
    assert_closes(await ui.submit(view, {BlockId.ROLE: "comms", BlockId.ROLE_HOLDER: "U0BO"}))
    assert current_holders(warroom, "comms") == ["U0BO"]
    command, assigned = warroom.timeline(1)[-2:]
    assert (command.kind, command.text) == ("command", "/incident INC-1 role comms <@U0BO>")
    assert assigned.kind == "role_assigned" and assigned.data["role"] == "comms"
    await warroom.settle()
    assert len(warroom.slack.calls_to("chat.update")) > updates_before
    assert "<@U0BO>" in json.dumps(header_message(warroom, war_room)["blocks"])
    assert "<@U0BO> is now comms of INC-1." in ephemerals(warroom, "U0ANA")
    assert any("communications lead" in t for t in ephemerals(warroom, "U0BO"))


async def test_a_click_the_command_would_refuse_is_refused_and_logged(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    value = header_buttons(warroom, war_room)[ActionId.HEADER_RESOLVE]
    reply = await ui.click(ActionId.HEADER_RESOLVE, value, user="U0BO", channel=war_room)
    assert reply.status == 200 and reply.text == ""
    assert warroom.slack.calls_to("views.open") == [], "no modal for a refused click"
    refused = warroom.timeline(1)[-1]
    assert refused.kind == "command_refused" and refused.actor_id == "U0BO"
    assert refused.text == "/incident INC-1 resolve"
    reason = "Only the commander (ana) or an admin can resolve the incident in INC-1."
    assert refused.data["reason"] == reason
    await warroom.settle()
    # U0BO is not in the war room, so the ephemeral cannot reach him there: a DM does.
    assert reason in ephemerals(warroom, "U0BO")
    assert direct_messages(warroom, "U0BO") == [reason]
    assert stored_incidents(warroom)[0].status == "investigating"


async def test_a_refusal_in_the_room_is_ephemeral(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    warroom.slack.channels[war_room].members.add("U0CY")
    await ui.click(ActionId.HEADER_CHANGE_STATUS, "1", user="U0CY", channel=war_room)
    await warroom.settle()
    reason = "Only the commander (ana) or an admin can change the status in INC-1."
    assert ephemerals(warroom, "U0CY") == [reason]
    assert direct_messages(warroom, "U0CY") == []
    assert warroom.timeline(1)[-1].text == "/incident INC-1 status"


async def test_a_header_modal_slack_will_not_open_is_explained(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    warroom.slack.fail("views.open", error="expired_trigger_id")
    reply = await ui.click(ActionId.HEADER_ASSIGN_ROLE, "1", channel=war_room)
    assert reply.status == 200 and reply.text == ""
    await warroom.settle()
    [told] = [t for t in ephemerals(warroom, "U0ANA") if "did not open" in t]
    assert "expired_trigger_id" in told and "/incident role" in told


async def test_access_lost_after_opening_is_refused_on_submit(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_RESOLVE, war_room)
    # Command changes hands while the modal is open.
    assert (await warroom.command("role commander <@U0BO>", channel=war_room)).status == 200
    errors = field_errors(await ui.submit(view, {BlockId.SUMMARY: "Rolled back"}))
    assert errors == {
        BlockId.SUMMARY: "Only the commander (Bo) or an admin can resolve the incident in INC-1."
    }
    assert warroom.timeline(1)[-1].kind == "command_refused"
    assert stored_incidents(warroom)[0].status == "investigating"


async def test_the_comms_lead_may_post_updates_but_not_resolve(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    await warroom.command("role comms <@U0BO>", channel=war_room)
    await warroom.settle()
    view = await open_modal(warroom, ui, ActionId.HEADER_POST_UPDATE, war_room, user="U0BO")
    assert view["callback_id"] == CallbackId.UPDATE_MODAL
    await ui.click(ActionId.HEADER_RESOLVE, "1", user="U0BO", channel=war_room)
    assert warroom.timeline(1)[-1].kind == "command_refused"


async def test_the_update_modal_is_prefilled_and_cautions(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_POST_UPDATE, war_room)
    draft = input_element(view, BlockId.UPDATE_TEXT)["initial_value"]
    assert draft.startswith("We are investigating: Checkout API returning 500s.")
    assert "Next update within 30m." in draft
    assert "root cause" in json.dumps(view["blocks"]), "the caution is shown before posting"
    text = "Checkout fails for some cards, probably caused by the new release."
    assert_closes(await ui.submit(view, {BlockId.UPDATE_TEXT: text}))
    command, update = warroom.timeline(1)[-2:]
    assert command.text == f"/incident INC-1 update {text}"
    assert (update.kind, update.text) == ("customer_update", text)
    await warroom.settle()
    [reply] = [t for t in ephemerals(warroom, "U0ANA") if t.startswith("Customer update")]
    assert "“probably”" in reply and "“caused by”" in reply
    posted = [m["text"] for m in warroom.slack.messages["C0ANNOUNCE"]]
    assert any(text in m for m in posted)
    # The next update starts from the last one.
    again = await open_modal(warroom, ui, ActionId.HEADER_POST_UPDATE, war_room)
    assert input_element(again, BlockId.UPDATE_TEXT)["initial_value"] == text
    assert "*Last update*" in json.dumps(again["blocks"])


async def test_an_empty_update_is_refused_on_its_field(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_POST_UPDATE, war_room)
    errors = field_errors(await ui.submit(view, {BlockId.UPDATE_TEXT: "  "}))
    assert errors == {BlockId.UPDATE_TEXT: "Write the update."}
    assert "customer_update" not in warroom.kinds(1)


async def test_status_and_severity_from_the_header(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_CHANGE_STATUS, war_room)
    assert input_element(view, BlockId.STATUS)["initial_option"]["value"] == "investigating"
    assert input_element(view, BlockId.SEVERITY)["initial_option"]["value"] == "sev1"
    assert_closes(await ui.submit(view, {BlockId.STATUS: "monitoring", BlockId.SEVERITY: "sev2"}))
    [incident] = stored_incidents(warroom)
    assert (incident.status, incident.severity) == ("monitoring", "sev2")
    assert incident.mitigated_at is not None
    events = warroom.timeline(1)[-4:]
    assert [(e.kind, e.text) for e in events] == [
        ("command", "/incident INC-1 status monitoring"),
        ("status_changed", "Status investigating → monitoring"),
        ("command", "/incident INC-1 sev sev2"),
        ("severity_changed", "Severity SEV1 → SEV2"),
    ]
    await warroom.settle()
    facts = json.dumps(header_message(warroom, war_room)["blocks"])
    assert "*Severity:* SEV2" in facts and "*Status:* Monitoring" in facts


async def test_a_status_form_that_changes_nothing_says_so(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_CHANGE_STATUS, war_room)
    errors = field_errors(await ui.submit(view))
    assert errors == {BlockId.STATUS: "Nothing changed: INC-1 is already investigating, SEV1."}


async def test_resolve_from_the_header(warroom: Warroom, ui: Interactions, war_room: str) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_RESOLVE, war_room)
    assert view["title"]["text"] == "Resolve INC-1"
    assert_closes(await ui.submit(view, {BlockId.SUMMARY: "Rolled back the release."}))
    [incident] = stored_incidents(warroom)
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert warroom.kinds(1)[-3:] == ["command", "status_changed", "resolved"]
    assert warroom.timeline(1)[-1].text == "Rolled back the release."
    await warroom.settle()
    # The header is updated in place: resolved, and only the buttons that still mean something.
    assert "*Status:* Resolved" in json.dumps(header_message(warroom, war_room)["blocks"])
    assert set(header_buttons(warroom, war_room)) == {
        ActionId.HEADER_ASSIGN_ROLE,
        ActionId.HEADER_POST_UPDATE,
    }
    assert any(
        t.startswith(":white_check_mark: INC-1 is resolved") for t in ephemerals(warroom, "U0ANA")
    )


async def test_a_button_leaves_the_same_record_as_the_slash_command(
    make_warroom: WarroomFactory,
) -> None:
    by_command = await make_warroom()
    first = await by_command.declare("Checkout down sev1")
    await by_command.command("resolve Rolled back", channel=first.channel_id or "")
    by_button = by_command  # a second incident in the same workspace
    second = await by_button.declare("Search down sev1")
    ui = Interactions(by_button)
    view = await open_modal(by_button, ui, ActionId.HEADER_RESOLVE, second.channel_id or "")
    assert_closes(await ui.submit(view, {BlockId.SUMMARY: "Rolled back"}))
    await by_button.settle()

    def record(number: int) -> list[tuple[str, str | None, dict[str, Any]]]:
        return [
            (e.kind, e.actor_id, {k: v for k, v in e.data.items() if k != "duration_seconds"})
            for e in by_button.timeline(number)
            if e.kind not in ("message",)
        ]

    assert record(1) == record(2)


async def test_an_unknown_incident_number_changes_nothing(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    reply = await ui.click(ActionId.HEADER_RESOLVE, "99", channel=war_room)
    assert reply.status == 200 and "Traceback" not in reply.text
    assert warroom.slack.calls_to("views.open") == []
    await warroom.settle()
    assert "There is no INC-99." in ephemerals(warroom, "U0ANA")
    assert stored_incidents(warroom)[0].status == "investigating"


async def test_a_failure_of_ours_keeps_the_form_open_and_says_so(
    warroom: Warroom, ui: Interactions, war_room: str
) -> None:
    view = await open_modal(warroom, ui, ActionId.HEADER_RESOLVE, war_room)
    # The database breaks between opening the form and submitting it.
    with warroom.services.db.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE role_assignment")
    reply = await ui.submit(view, {BlockId.SUMMARY: "Rolled back the release."})
    # Not Slack's generic "trouble connecting": the form stays, with our reason and a reference.
    assert reply.status == 200 and "Traceback" not in reply.text
    assert reply.json["response_action"] == "errors"
    [(field, message)] = reply.json["errors"].items()
    assert field == BlockId.SUMMARY
    assert message.startswith("Something went wrong on our side (reference ")


async def test_a_declare_form_slack_is_slow_to_open_is_given_up_before_the_ack_is_late(
    warroom: Warroom,
) -> None:
    # Slack takes longer than a trigger id lives: warroom stops waiting and says what to do.
    warroom.slack.latency = 3.5
    reply = await warroom.command("declare")
    assert reply.status == 200
    assert reply.message.startswith("The declare form did not open (Slack did not answer in time)")
    assert "/incident declare" in reply.message
    assert stored_incidents(warroom) == []


async def test_a_form_submitted_again_declares_one_incident(
    warroom: Warroom, ui: Interactions
) -> None:
    await warroom.command("declare")
    form = ui.opened(CallbackId.DECLARE_MODAL)
    answers = {BlockId.TITLE: "Payments stuck", BlockId.RESPONDERS: ["U0BO", "U0CY"]}
    assert_closes(await ui.submit(form, answers))
    # Slack gave up on a slow first answer and the declarer pressed Submit again: each
    # submission has its own trigger id, but it is the same form.
    again = field_errors(await ui.submit(form, answers))
    assert again == {BlockId.TITLE: "This form has declared its incident already; see your DMs."}
    assert [i.number for i in stored_incidents(warroom)] == [1]


@pytest.mark.parametrize("value", ["99999999999999999999999", "2147483648", "²", "1e3", "-1"])
async def test_a_button_whose_number_no_incident_can_have_is_refused_politely(
    make_warroom: WarroomFactory, database_url: str, value: str
) -> None:
    room = await make_warroom(database_url=database_url)
    declared = await room.declare("Checkout down sev1")
    ui = Interactions(room)
    reply = await ui.click(ActionId.HEADER_RESOLVE, value, channel=declared.channel_id)
    assert reply.status == 200 and "Traceback" not in reply.text
    await room.settle()
    assert room.slack.calls_to("views.open") == []
    assert "That button names no incident." in ephemerals(room, "U0ANA")
    assert stored_incidents(room)[0].status == "investigating"
