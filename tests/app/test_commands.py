"""`/incident` end to end: signed requests through the real server and Bolt, against the fake
Slack Web API, asserting on the ephemeral reply, on what Slack was asked, and on the timeline."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import Session, col, select

from bot.incidents.naming import MAX_CHANNEL_NAME
from bot.slack.text import slack_date
from storage.models import Incident, RoleAssignment, TimelineEvent
from tests.support.fakes.slack_api import BOT_USER
from tests.support.warroom import Reply, Warroom, WarroomFactory

# A broadcast mention Slack would fire: markup, or a bare word (escape() puts U+2060 after @).
LIVE_BROADCAST = re.compile(r"<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b", re.I)
BRIEFING_FIRST_WORDS = {
    "commander": "You are the incident commander for INC-1",
    "comms": "You are the communications lead for INC-1",
    "resolver": "You are a technical resolver on INC-1",
}
TOPIC_LABELS = {"commander": "Commander", "comms": "Comms", "resolver": "Resolver"}


# -- helpers ---------------------------------------------------------------------------


def assert_ephemeral(reply: Reply) -> str:
    """The reply is a 200 with an ephemeral message and no trace of a crash; return its text."""
    assert reply.status == 200, reply.text
    assert reply.json["response_type"] == "ephemeral"
    assert "Traceback" not in reply.text and "went wrong" not in reply.message
    return reply.message


def incidents(room: Warroom) -> list[Incident]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def incident(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def roles(room: Warroom, number: int = 1) -> list[RoleAssignment]:
    found = incident(room, number)
    with Session(room.services.db.engine) as session:
        return list(
            session.exec(
                select(RoleAssignment)
                .where(RoleAssignment.incident_id == found.id)
                .order_by(col(RoleAssignment.id))
            ).all()
        )


def holders(room: Warroom, role: str, number: int = 1) -> list[str]:
    return [r.user_id for r in roles(room, number) if r.role == role and r.relieved_at is None]


def last_event(room: Warroom, number: int = 1) -> TimelineEvent:
    return room.timeline(number)[-1]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("[", "{"):
            try:
                yield from _strings(json.loads(stripped))
                return
            except ValueError:
                pass
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def everything_slack_received(room: Warroom) -> list[str]:
    """Every string warroom sent Slack: Web API arguments (blocks too) and response_url posts."""
    return [
        *(s for call in room.slack.calls for s in _strings(call.args)),
        *(s for response in room.slack.responses for s in _strings(response)),
    ]


def ephemerals_to(room: Warroom, user_id: str) -> list[dict[str, Any]]:
    return [c.args for c in room.slack.calls_to("chat.postEphemeral") if c.args["user"] == user_id]


@pytest.fixture
async def war_room(warroom: Warroom) -> str:
    """INC-1, declared by U0ANA (its commander); the id of its channel."""
    declared = await warroom.declare("Checkout API returning 500s sev1")
    assert declared.channel_id is not None
    return declared.channel_id


# -- declare ---------------------------------------------------------------------------


async def test_incidents_are_numbered_in_order(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    warroom = await make_warroom(database_url=database_url)
    first = assert_ephemeral(await warroom.command("declare Checkout down"))
    second = assert_ephemeral(await warroom.command("declare Search is slow"))
    assert "*INC-1*" in first and "*INC-2*" in second
    await warroom.settle()
    assert [(i.number, i.channel_name) for i in incidents(warroom)] == [
        (1, "inc-1-checkout-down"),
        (2, "inc-2-search-is-slow"),
    ]
    assert warroom.kinds(2) == ["command", "declared", "role_assigned"]


@pytest.mark.parametrize("verb", ["declare", "open", "new", "DECLARE"])
async def test_declare_and_its_aliases(warroom: Warroom, verb: str) -> None:
    message = assert_ephemeral(await warroom.command(f"{verb} Checkout down"))
    assert message.startswith(":rotating_light: Declared *INC-1* (SEV3): Checkout down.")
    await warroom.settle()
    assert warroom.slack.channel_named("inc-1-checkout-down")


@pytest.mark.parametrize(
    ("text", "severity"),
    [
        ("Checkout down sev1", "sev1"),
        ("Checkout down SEV-2", "sev2"),
        ("Checkout down Sev4", "sev4"),
        ("Checkout down", "sev3"),
        ("sev1 dashboards are blank", "sev3"),
    ],
)
async def test_declare_reads_a_trailing_severity(
    warroom: Warroom, text: str, severity: str
) -> None:
    message = assert_ephemeral(await warroom.command(f"declare {text}"))
    assert f"({severity.upper()})" in message
    await warroom.settle()
    stored = incident(warroom)
    assert stored.severity == severity
    assert stored.title == text.removesuffix(" sev1").removesuffix(" SEV-2").removesuffix(" Sev4")
    assert warroom.timeline(1)[1].data["severity"] == severity
    assert warroom.slack.channels[stored.channel_id or ""].topic.startswith(
        f"INC-1 {severity.upper()} | Investigating"
    )


async def test_the_default_severity_comes_from_the_config(make_warroom: WarroomFactory) -> None:
    room = await make_warroom({"default_severity": "sev2"})
    assert "(SEV2)" in assert_ephemeral(await room.command("declare Checkout down"))


@pytest.mark.parametrize(
    ("title", "name"),
    [
        ("Café Zürich paiement", "inc-1-cafe-zurich-paiement"),
        ("DB/primary: failover!! (eu-west-1)", "inc-1-db-primary-failover-eu-west-1"),
        ("Checkout <@U0BO|bo> & <#C0GENERAL|general>", "inc-1-checkout-bo-general"),
    ],
)
async def test_channel_names_follow_slacks_rules(warroom: Warroom, title: str, name: str) -> None:
    declared = await warroom.declare(title)
    assert declared.channel_name == name
    assert warroom.slack.channel_named(name).id == declared.channel_id


async def test_a_long_title_gives_a_channel_name_of_at_most_80_characters(
    warroom: Warroom,
) -> None:
    title = "Elevated error rates on checkout payments for enterprise customers in " * 2
    declared = await warroom.declare(title.strip())
    assert declared.channel_name is not None
    assert len(declared.channel_name) <= MAX_CHANNEL_NAME
    assert declared.channel_name.startswith("inc-1-elevated-error-rates")
    assert not declared.channel_name.endswith("-")


async def test_a_taken_name_gets_a_suffix(warroom: Warroom) -> None:
    warroom.slack.add_channel("C0OLD", "inc-1-checkout-down")
    declared = await warroom.declare("Checkout down")
    assert declared.channel_name == "inc-1-checkout-down-2"
    assert [c.args["name"] for c in warroom.slack.calls_to("conversations.create")] == [
        "inc-1-checkout-down",
        "inc-1-checkout-down-2",
    ]


async def test_name_taken_from_slack_is_resolved(warroom: Warroom) -> None:
    warroom.slack.fail("conversations.create", error="name_taken", times=2)
    declared = await warroom.declare("Checkout down")
    assert declared.channel_name == "inc-1-checkout-down-3"
    assert "is open in" in warroom.slack.responses[-1]["text"]


async def test_the_severity_decides_who_is_pulled_in(make_warroom: WarroomFactory) -> None:
    room = await make_warroom({"severities": {"sev1": {"invite": ["S0ONCALL", "U0CY", "S0GONE"]}}})
    # The bot in the group and an unknown group are passed over, not fatal.
    room.slack.usergroups["S0ONCALL"] = ["U0BO", "U0ADMIN", BOT_USER]
    declared = await room.declare("Checkout down sev1")
    members = room.slack.channels[declared.channel_id or ""].members
    assert {"U0ANA", "U0BO", "U0ADMIN", "U0CY"} <= members
    # The groups are looked up side by side, so in no particular order.
    assert sorted(c.args["usergroup"] for c in room.slack.calls_to("usergroups.users.list")) == [
        "S0GONE",
        "S0ONCALL",
    ]
    assert any("is open in" in r["text"] for r in room.slack.responses)


async def test_a_lower_severity_does_not_pull_in_the_sev1_list(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom({"severities": {"sev1": {"invite": ["U0CY"]}}})
    declared = await room.declare("Checkout down sev3")
    assert "U0CY" not in room.slack.channels[declared.channel_id or ""].members


async def test_already_in_channel_is_tolerated(make_warroom: WarroomFactory) -> None:
    room = await make_warroom({"severities": {"sev2": {"invite": ["U0BO", "U0CY"]}}})
    room.slack.fail("conversations.invite", error="already_in_channel")
    declared = await room.declare("Checkout down sev2")
    assert {"U0ANA", "U0BO", "U0CY"} <= room.slack.channels[declared.channel_id or ""].members
    assert ephemerals_to(room, "U0ANA"), "the commander is still briefed"
    assert any("is open in" in r["text"] for r in room.slack.responses)


async def test_a_rate_limited_create_is_retried(warroom: Warroom) -> None:
    warroom.slack.fail("conversations.create", status=429, retry_after=1)
    declared = await warroom.declare("Checkout down")
    assert declared.channel_name == "inc-1-checkout-down"
    assert [c.args["name"] for c in warroom.slack.calls_to("conversations.create")] == [
        "inc-1-checkout-down",
        "inc-1-checkout-down",
    ]
    assert any("is open in" in r["text"] for r in warroom.slack.responses)


async def test_the_ack_does_not_wait_for_slack(warroom: Warroom) -> None:
    warroom.slack.latency = 1.0
    message = assert_ephemeral(await warroom.command("declare Checkout down sev1"))
    assert "*INC-1*" in message
    # The reply is back while the war room is still being opened...
    assert warroom.services.tasks.pending > 0
    # ...and what was acknowledged is already on the record.
    assert warroom.kinds(1) == ["command", "declared", "role_assigned"]
    await warroom.settle()
    assert warroom.slack.channel_named("inc-1-checkout-down")
    assert any("is open in" in r["text"] for r in warroom.slack.responses)


async def test_a_channel_that_cannot_be_created_is_reported_to_the_declarer(
    warroom: Warroom,
) -> None:
    warroom.slack.fail("conversations.create", error="restricted_action")
    assert "*INC-1*" in assert_ephemeral(await warroom.command("declare Checkout down"))
    await warroom.settle()
    [response] = warroom.slack.responses
    assert response["response_type"] == "ephemeral"
    assert response["text"] == (
        "INC-1 is recorded, but its war room could not be opened: Slack said `restricted_action`."
    )
    assert "Traceback" not in response["text"]
    assert incident(warroom).channel_id is None
    assert warroom.kinds(1) == ["command", "declared", "role_assigned"]


async def test_a_redelivered_declaration_declares_once(warroom: Warroom) -> None:
    body = warroom.command_body("declare Checkout down")
    first = await warroom.post(body, "application/x-www-form-urlencoded")
    again = await warroom.post(body, "application/x-www-form-urlencoded")
    assert "*INC-1*" in assert_ephemeral(first)
    assert "already" in assert_ephemeral(again)
    await warroom.settle()
    assert [i.number for i in incidents(warroom)] == [1]


# -- roles -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["commander", "comms", "resolver"])
@pytest.mark.parametrize("who", ["<@U0BO|bo>", "<@U0BO>", "@bo"])
async def test_assign_a_role(warroom: Warroom, war_room: str, role: str, who: str) -> None:
    slack = warroom.slack
    header_ts = incident(warroom).header_ts
    message = assert_ephemeral(await warroom.command(f"role {role} {who}", channel=war_room))
    assert message.endswith(f" is now {role} of INC-1.")
    assert message.startswith("<@U0BO>" if who.startswith("<@") else "@bo")
    await warroom.settle()

    assert "U0BO" in slack.channels[war_room].members
    [briefing] = ephemerals_to(warroom, "U0BO")
    assert briefing["channel"] == war_room
    assert BRIEFING_FIRST_WORDS[role] in briefing["text"]
    assert f"{TOPIC_LABELS[role]}: Bo" in slack.channels[war_room].topic
    updates = slack.calls_to("chat.update")
    assert updates and updates[-1].args["ts"] == header_ts
    [header] = [m for m in slack.messages[war_room] if m["ts"] == header_ts]
    assert "<@U0BO>" in json.dumps(header["blocks"])

    assert "U0BO" in holders(warroom, role)
    event = last_event(warroom)
    assert event.kind == "role_assigned"
    assert event.actor_id == "U0ANA"
    assert event.data["role"] == role and event.data["user"] == {"id": "U0BO", "name": "Bo"}
    assert warroom.timeline(1)[-2].kind == "command"
    assert warroom.timeline(1)[-2].text == f"/incident role {role} {who}"


async def test_handing_over_command_relieves_the_previous_commander(
    warroom: Warroom, war_room: str
) -> None:
    assert_ephemeral(await warroom.command("role commander <@U0BO|bo>", channel=war_room))
    await warroom.settle()
    commanders = [r for r in roles(warroom) if r.role == "commander"]
    assert [(r.user_id, r.relieved_at is None) for r in commanders] == [
        ("U0ANA", False),
        ("U0BO", True),
    ]
    assert commanders[0].relieved_at == commanders[1].assigned_at
    assert last_event(warroom).data["previous"] == "U0ANA"
    assert "Commander: Bo" in warroom.slack.channels[war_room].topic
    assert "ana" not in warroom.slack.channels[war_room].topic.lower()
    # The new commander runs the room now; the old one does not.
    refused = assert_ephemeral(
        await warroom.command("role comms <@U0CY>", channel=war_room, user="U0ANA")
    )
    assert "Only the commander" in refused
    assert "is now comms" in assert_ephemeral(
        await warroom.command("role comms <@U0CY>", channel=war_room, user="U0BO")
    )


async def test_handing_over_comms_relieves_the_previous_lead(
    warroom: Warroom, war_room: str
) -> None:
    await warroom.command("role comms <@U0BO>", channel=war_room)
    await warroom.command("role comms <@U0CY>", channel=war_room)
    await warroom.settle()
    assert holders(warroom, "comms") == ["U0CY"]
    assert "Comms: Cy" in warroom.slack.channels[war_room].topic


async def test_resolver_can_be_several_people(warroom: Warroom, war_room: str) -> None:
    assert_ephemeral(await warroom.command("role resolver <@U0BO>", channel=war_room))
    assert_ephemeral(await warroom.command("role resolver @cy", channel=war_room))
    await warroom.settle()
    assert holders(warroom, "resolver") == ["U0BO", "U0CY"]
    assert "Resolver: Bo, Cy" in warroom.slack.channels[war_room].topic
    again = assert_ephemeral(await warroom.command("role resolver <@U0CY>", channel=war_room))
    assert again == "<@U0CY> is already resolver of INC-1."
    await warroom.settle()
    assert holders(warroom, "resolver") == ["U0BO", "U0CY"]
    assert len(ephemerals_to(warroom, "U0CY")) == 1, "briefed once"


async def test_someone_other_than_the_commander_is_refused(warroom: Warroom, war_room: str) -> None:
    calls_before, events_before = len(warroom.slack.calls), len(warroom.timeline(1))
    roles_before = roles(warroom)
    message = assert_ephemeral(
        await warroom.command("role comms <@U0CY>", channel=war_room, user="U0BO")
    )
    assert message.startswith("Only the commander")
    assert message.endswith("can assign roles in INC-1.")
    await warroom.settle()

    assert warroom.slack.calls[calls_before:] == []
    assert roles(warroom) == roles_before
    assert len(warroom.timeline(1)) == events_before + 1
    event = last_event(warroom)
    assert event.kind == "command_refused"
    assert event.actor_id == "U0BO"
    assert event.text == "/incident role comms <@U0CY>"
    assert event.data == {"reason": message}


async def test_an_admin_may_assign_roles(warroom: Warroom, war_room: str) -> None:
    message = assert_ephemeral(
        await warroom.command("role comms <@U0CY>", channel=war_room, user="U0ADMIN")
    )
    assert message == "<@U0CY> is now comms of INC-1."
    await warroom.settle()
    assert holders(warroom, "comms") == ["U0CY"]
    assert last_event(warroom).actor_id == "U0ADMIN"


@pytest.mark.parametrize(("who", "named"), [("<@U0NOPE>", "U0NOPE"), ("@nobody", "nobody")])
async def test_an_unknown_user_is_a_clear_error(
    warroom: Warroom, war_room: str, who: str, named: str
) -> None:
    roles_before, calls_before = roles(warroom), len(warroom.slack.calls)
    message = assert_ephemeral(await warroom.command(f"role comms {who}", channel=war_room))
    assert message == f"Slack has no user {named}."
    await warroom.settle()
    assert roles(warroom) == roles_before
    # Slack was asked who that is, and nothing else.
    asked = {c.method for c in warroom.slack.calls[calls_before:]}
    assert asked <= {"users.info", "users.list"}
    event = last_event(warroom)
    assert (event.kind, event.data) == ("command", {"reason": message})


async def test_roles_go_to_people_not_apps(warroom: Warroom, war_room: str) -> None:
    message = assert_ephemeral(
        await warroom.command(f"role resolver <@{BOT_USER}>", channel=war_room)
    )
    assert message == "Roles go to people, not apps."
    assert holders(warroom, "resolver") == []


@pytest.mark.parametrize("text", ["ic @bo", "lead <@U0BO>", "role ic <@U0BO|bo>"])
async def test_commander_aliases(warroom: Warroom, war_room: str, text: str) -> None:
    message = assert_ephemeral(await warroom.command(text, channel=war_room))
    assert message.endswith("is now commander of INC-1.")
    await warroom.settle()
    assert holders(warroom, "commander") == ["U0BO"]


async def test_a_role_from_another_channel_names_the_incident(
    warroom: Warroom, war_room: str
) -> None:
    message = assert_ephemeral(await warroom.command("INC-1 role comms @bo", channel="C0GENERAL"))
    assert message == "@bo is now comms of INC-1."
    await warroom.settle()
    assert holders(warroom, "comms") == ["U0BO"]
    assert "U0BO" in warroom.slack.channels[war_room].members
    [briefing] = ephemerals_to(warroom, "U0BO")
    assert briefing["channel"] == war_room, "briefed in the war room, not where they asked"


async def test_an_incident_that_does_not_exist(warroom: Warroom, war_room: str) -> None:
    message = assert_ephemeral(await warroom.command("INC-99 role comms @bo", channel="C0GENERAL"))
    assert message == "There is no INC-99."
    assert holders(warroom, "comms") == []


async def test_roles_lists_who_holds_what(warroom: Warroom, war_room: str) -> None:
    await warroom.command("role resolver <@U0BO>", channel=war_room)
    await warroom.command("role resolver <@U0CY>", channel=war_room)
    message = assert_ephemeral(await warroom.command("roles", channel=war_room))
    lines = message.splitlines()
    assert lines[0] == "*INC-1: Checkout API returning 500s*"
    # A date token: each reader sees the time in their own time zone, UTC where it cannot render.
    since = slack_date(roles(warroom)[0].assigned_at)
    assert lines[1] == f"• commander: <@U0ANA> since {since}"
    assert lines[2] == "• comms: nobody"
    assert lines[3].startswith("• resolver: <@U0BO> since ")
    assert lines[4].startswith("• resolver: <@U0CY> since ")
    assert last_event(warroom).kind == "command"
    assert last_event(warroom).text == "/incident roles"


async def test_roles_from_another_channel(warroom: Warroom, war_room: str) -> None:
    message = assert_ephemeral(await warroom.command("INC-1 roles", channel="C0GENERAL"))
    assert "commander: <@U0ANA>" in message


# -- notes, list, help -------------------------------------------------------------------


async def test_a_note_goes_on_the_timeline(warroom: Warroom, war_room: str) -> None:
    message = assert_ephemeral(
        await warroom.command("note Failing over to the replica <@U0BO>", channel=war_room)
    )
    assert message == "Noted on the INC-1 timeline."
    events = warroom.timeline(1)[-2:]
    assert [e.kind for e in events] == ["command", "note"]
    assert events[1].text == "Failing over to the replica <@U0BO>"
    assert events[1].actor_id == "U0ANA"


async def test_a_note_from_another_channel_names_the_incident(
    warroom: Warroom, war_room: str
) -> None:
    message = assert_ephemeral(
        await warroom.command(
            "INC-1 note customer reports from EU", channel="C0GENERAL", user="U0CY"
        )
    )
    assert message == "Noted on the INC-1 timeline."
    event = last_event(warroom)
    assert (event.kind, event.text, event.actor_id) == ("note", "customer reports from EU", "U0CY")


@pytest.mark.parametrize("text", ["note db is back", "roles", "role comms @bo"])
async def test_incident_commands_outside_a_war_room_need_an_id(
    warroom: Warroom, war_room: str, text: str
) -> None:
    events_before = len(warroom.timeline())
    message = assert_ephemeral(await warroom.command(text, channel="C0GENERAL"))
    assert message.startswith("This is not an incident channel; name the incident:")
    assert "`/incident INC-7 " in message
    assert len(warroom.timeline()) == events_before


async def test_list_shows_open_incidents(warroom: Warroom) -> None:
    assert assert_ephemeral(await warroom.command("list")) == "No open incidents."
    first = await warroom.declare("Checkout down sev1")
    second = await warroom.declare("Search <!here> slow", user="U0BO")
    message = assert_ephemeral(await warroom.command("list"))
    lines = message.splitlines()
    assert lines[0] == "*Open incidents*"
    assert lines[1] == (
        f"• *INC-1* SEV1 investigating: Checkout down (<#{first.channel_id}>, <@U0ANA>, "
        f"declared {slack_date(first.declared_at)})"
    )
    assert lines[2].startswith("• *INC-2* SEV3 investigating: Search @\u2060here slow")
    assert f"<#{second.channel_id}>, <@U0BO>" in lines[2]


@pytest.mark.parametrize("text", ["help", "", "HELP", "INC-1"])
async def test_help(warroom: Warroom, text: str) -> None:
    message = assert_ephemeral(await warroom.command(text))
    for usage in (
        "/incident declare <title> [sev1|sev2|sev3|sev4]",
        "/incident role <commander|comms|resolver> <@user>",
        "/incident roles",
        "/incident note <text>",
        "/incident list",
    ):
        # Placeholders go out escaped: Slack would read a raw `<title>` as a link.
        assert usage.replace("<", "&lt;").replace(">", "&gt;") in message
    assert "<title>" not in message and "<@user>" not in message
    assert "/incident INC-7 roles" in message


# -- bad input -----------------------------------------------------------------------------


ROLE_USAGE = "Usage: `/incident role &lt;commander|comms|resolver&gt; &lt;@user&gt;`"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("frobnicate the database", "Unknown subcommand `frobnicate`. Try `/incident help`."),
        ("role", "Usage: `/incident role &lt;commander|comms|resolver&gt; &lt;@user&gt;`"),
        ("role comms", "Usage: `/incident role &lt;commander|comms|resolver&gt; &lt;@user&gt;`"),
        (
            "role comms @bo @cy",
            "Usage: `/incident role &lt;commander|comms|resolver&gt; &lt;@user&gt;`",
        ),
        ("role janitor @bo", "`janitor` is not a role; use commander, comms or resolver."),
        ("role comms bo", "`bo` is not a person; mention them like @ana."),
        ("note", "Usage: `/incident note &lt;text&gt;`"),
        ("note    ", "Usage: `/incident note &lt;text&gt;`"),
        ("INC-one roles", "`INC-one` is not an incident id; write it like INC-7."),
    ],
)
async def test_malformed_input_in_a_war_room_is_answered_and_recorded(
    warroom: Warroom, war_room: str, text: str, message: str
) -> None:
    reply = assert_ephemeral(await warroom.command(text, channel=war_room, user="U0CY"))
    assert reply == message
    event = last_event(warroom)
    assert event.kind == "command"
    assert event.text == f"/incident {text}".strip()
    assert event.actor_id == "U0CY"
    assert event.data == {"reason": message}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # (`declare` with no title at all is to open a modal, so it is not tested here.)
        ("declare " + "x" * 500, "That title is 500 characters; keep it under 150"),
        ("declare " + "word " * 100 + "sev1", "That title is 499 characters"),
        ("declare :fire: :fire: :boom:", "not only emoji or punctuation"),
        ("declare 🔥🔥🔥 sev1", "not only emoji or punctuation"),
        ("declare !!! ???", "not only emoji or punctuation"),
    ],
)
async def test_a_bad_declaration_declares_nothing(
    warroom: Warroom, text: str, message: str
) -> None:
    assert message in assert_ephemeral(await warroom.command(text))
    await warroom.settle()
    assert incidents(warroom) == []
    assert warroom.slack.calls_to("conversations.create") == []


async def test_malformed_input_naming_an_incident_is_recorded_on_it(
    warroom: Warroom, war_room: str
) -> None:
    message = assert_ephemeral(
        await warroom.command("INC-1 frobnicate", channel="C0GENERAL", user="U0CY")
    )
    assert message == "Unknown subcommand `frobnicate`. Try `/incident help`."
    event = last_event(warroom)
    assert (event.kind, event.text, event.data) == (
        "command",
        "/incident INC-1 frobnicate",
        {"reason": message},
    )
    # An incident that does not exist keeps the usage line as the answer.
    other = assert_ephemeral(await warroom.command("INC-99 frobnicate", channel="C0GENERAL"))
    assert other.startswith("Unknown subcommand")


async def test_malformed_input_outside_a_war_room_records_nothing(warroom: Warroom) -> None:
    await warroom.declare("Checkout down")
    events_before = len(warroom.timeline())
    message = assert_ephemeral(await warroom.command("frobnicate", channel="C0GENERAL"))
    assert message.startswith("Unknown subcommand")
    assert len(warroom.timeline()) == events_before


@pytest.mark.parametrize(
    ("text", "in_war_room"),
    [
        ("declare <!channel> checkout is down sev2", False),
        ("declare <!here|here> checkout is down", False),
        ("declare @everyone checkout is down", False),
        ("declare @channel @here @everyone", False),
        ("declare &lt;!channel&gt; typed out by hand", False),
        ("<!channel>", False),
        ("@here", True),
        ("INC<!everyone> roles", False),
        ("role comms <!here>", True),
        ("role <!channel> @bo", True),
        ("note <!channel> please look", True),
    ],
)
async def test_broadcast_mentions_are_never_echoed_live(
    warroom: Warroom, war_room: str, text: str, in_war_room: bool
) -> None:
    channel = war_room if in_war_room else "C0GENERAL"
    reply = await warroom.command(text, channel=channel)
    message = assert_ephemeral(reply)
    await warroom.settle()
    assert not LIVE_BROADCAST.search(message), message
    sent = [s for s in everything_slack_received(warroom) if LIVE_BROADCAST.search(s)]
    assert sent == [], "Slack was sent a live broadcast mention"


async def test_a_display_name_never_becomes_a_mention_in_the_topic_or_a_refusal(
    warroom: Warroom,
) -> None:
    # Anyone may set their display name to markup; it must stay text everywhere it is shown.
    hostile = "<!channel> @here <@U0ADMIN> <#C0GENERAL>"
    warroom.slack.add_user("U0EVIL", "evil", display_name=hostile)
    declared = await warroom.declare("Checkout API returning 500s sev1")
    # Handed command by id alone, so that the name shown is the one Slack gives for U0EVIL.
    handed = await warroom.command("role commander <@U0EVIL>", channel=declared.channel_id)
    assert handed.status == 200
    await warroom.settle()
    refusal = assert_ephemeral(
        await warroom.command("role comms <@U0BO|bo>", channel=declared.channel_id, user="U0CY")
    )
    assert refusal.startswith("Only the commander (")
    await warroom.settle()
    topics = [c.args["topic"] for c in warroom.slack.calls_to("conversations.setTopic")]
    assert "@\u2060here" in topics[-1], topics  # the name is shown, made inert
    for text in [*topics, refusal]:
        assert not LIVE_BROADCAST.search(text), text
        assert "<@U0ADMIN>" not in text and "<#C0GENERAL>" not in text, text
    sent = [s for s in everything_slack_received(warroom) if LIVE_BROADCAST.search(s)]
    assert sent == [], "Slack was sent a live broadcast mention"


async def test_a_declared_broadcast_title_is_stored_as_read(warroom: Warroom) -> None:
    message = assert_ephemeral(await warroom.command("declare <!channel> checkout is down"))
    assert "@\u2060channel checkout is down" in message
    await warroom.settle()
    stored = incident(warroom)
    assert stored.title == "@channel checkout is down"
    assert stored.channel_name == "inc-1-channel-checkout-is-down"


async def test_an_app_whose_name_is_already_known_is_still_no_role_holder(
    warroom: Warroom, war_room: str
) -> None:
    # An app with a user id speaks in the war room, so warroom learns (and keeps) its name.
    warroom.slack.add_user("U0DEPLOYBOT", "deploybot", is_bot=True)
    reply = await warroom.event(
        {
            "type": "message",
            "channel": war_room,
            "user": "U0DEPLOYBOT",
            "text": "deploy 4.2.1 rolled back",
            "ts": "1700000500.000100",
        }
    )
    assert reply.status == 200
    await warroom.settle()
    asked = len(warroom.slack.calls_to("users.info"))

    message = assert_ephemeral(
        await warroom.command("role commander <@U0DEPLOYBOT>", channel=war_room)
    )
    assert message == "Roles go to people, not apps."
    assert len(warroom.slack.calls_to("users.info")) == asked  # answered from what it knew
    assert holders(warroom, "commander") != ["U0DEPLOYBOT"]
