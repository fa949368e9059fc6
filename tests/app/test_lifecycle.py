"""The lifecycle commands end to end: `status`, `sev`, `update`, `resolve`, `postmortem` and
`ack` through signed requests to the real server, asserting on the reply, on what the fake Slack
was asked (topic, header, posts), on the stored incident and on the timeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.slack.text import slack_date
from storage.models import Incident, TimelineEvent
from tests.support.warroom import Reply, Warroom, WarroomFactory

TITLE = "Checkout API returning 500s"
LIVE_BROADCAST = re.compile(r"<!(?:channel|here|everyone)\b|@(?:channel|here|everyone)\b", re.I)
RESOLVED_REPLY = (
    ":white_check_mark: INC-1 is resolved. Post-mortem reminders start now; "
    "`/incident postmortem` posts a draft built from the timeline."
)


# -- helpers ---------------------------------------------------------------------------


def assert_ephemeral(reply: Reply) -> str:
    """The reply is a 200 with an ephemeral message and no trace of a crash; return its text."""
    assert reply.status == 200, reply.text
    assert reply.json["response_type"] == "ephemeral"
    assert "Traceback" not in reply.text and "went wrong" not in reply.message
    return reply.message


def stored(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def events_of(room: Warroom, kind: str, number: int = 1) -> list[TimelineEvent]:
    return [e for e in room.timeline(number) if e.kind == kind]


def last_event(room: Warroom, number: int = 1) -> TimelineEvent:
    return room.timeline(number)[-1]


def topic(room: Warroom, number: int = 1) -> str:
    return room.slack.channels[stored(room, number).channel_id or ""].topic


def header(room: Warroom, number: int = 1) -> str:
    """The pinned header message as it stands in the fake Slack (its blocks, as JSON)."""
    incident = stored(room, number)
    messages = room.slack.messages[incident.channel_id or ""]
    [message] = [m for m in messages if m["ts"] == incident.header_ts]
    return json.dumps(message["blocks"], ensure_ascii=False)


def posts(room: Warroom, channel_id: str, prefix: str = "") -> list[str]:
    """What warroom posted in a channel (chat.postMessage that Slack took), oldest first."""
    return [
        m["text"] for m in room.slack.messages.get(channel_id, []) if m["text"].startswith(prefix)
    ]


def snapshot(room: Warroom) -> tuple[object, ...]:
    """The lifecycle state of INC-1, to show that a refused or malformed command changed nothing."""
    i = stored(room)
    return (
        i.status,
        i.severity,
        i.mitigated_at,
        i.resolved_at,
        i.acknowledged_at,
        i.last_update_at,
        i.postmortem_url,
        i.postmortem_done_at,
    )


@pytest.fixture
async def war_room(warroom: Warroom) -> str:
    """INC-1 (SEV1), declared by U0ANA (its commander); the id of its channel."""
    declared = await warroom.declare(f"{TITLE} sev1")
    assert declared.channel_id is not None
    return declared.channel_id


# -- status ----------------------------------------------------------------------------


async def test_status_changes_state_topic_header_and_timeline(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    channel = (await room.declare(f"{TITLE} sev1")).channel_id
    assert "INC-1 SEV1 | Investigating" in topic(room)

    for status, previous in (("identified", "investigating"), ("monitoring", "identified")):
        reply = assert_ephemeral(await room.command(f"status {status}", channel=channel))
        assert reply == f"INC-1 is now *{status}*."
        await room.settle()
        assert stored(room).status == status
        assert topic(room) == f"INC-1 SEV1 | {status.capitalize()} | Commander: ana"
        assert f"*Status:* {status.capitalize()}" in header(room)
        command, change = room.timeline(1)[-2:]
        assert (command.kind, command.text) == ("command", f"/incident status {status}")
        assert change.kind == "status_changed"
        assert change.actor_id == "U0ANA"
        assert change.text == f"Status {previous} → {status}"
        assert change.data == {"from": previous, "to": status}

    # Mitigation is the first move to monitoring.
    mitigated = stored(room).mitigated_at
    assert mitigated is not None and mitigated == events_of(room, "status_changed")[-1].at
    assert stored(room).resolved_at is None
    assert_ephemeral(await room.command("status investigating", channel=channel))
    assert_ephemeral(await room.command("status monitoring", channel=channel))
    assert stored(room).mitigated_at == mitigated
    assert len(events_of(room, "status_changed")) == 4


async def test_the_same_status_again_changes_nothing(warroom: Warroom, war_room: str) -> None:
    before = len(warroom.timeline(1))
    reply = assert_ephemeral(await warroom.command("status Investigating", channel=war_room))
    assert reply == "INC-1 is already investigating."
    assert [e.kind for e in warroom.timeline(1)[before:]] == ["command"]


async def test_status_resolved_resolves(warroom: Warroom, war_room: str) -> None:
    assert assert_ephemeral(await warroom.command("status resolved", channel=war_room)) == (
        RESOLVED_REPLY
    )
    await warroom.settle()
    incident = stored(warroom)
    assert incident.status == "resolved"
    assert incident.resolved_at is not None and incident.mitigated_at is None
    assert [e.kind for e in warroom.timeline(1)[-3:]] == ["command", "status_changed", "resolved"]
    assert events_of(warroom, "resolved")[0].at == incident.resolved_at
    assert topic(warroom).startswith("INC-1 SEV1 | Resolved")
    assert "*Status:* Resolved" in header(warroom)

    # Resolved stays resolved: reopening is its own command.
    reply = assert_ephemeral(await warroom.command("status monitoring", channel=war_room))
    assert reply == "INC-1 is resolved; reopen it with `/incident reopen [reason]`."
    assert stored(warroom).status == "resolved"
    assert (last_event(warroom).kind, last_event(warroom).data) == ("command", {"reason": reply})


async def test_status_from_another_channel_names_the_incident(
    warroom: Warroom, war_room: str
) -> None:
    reply = assert_ephemeral(await warroom.command("INC-1 status monitoring", channel="C0GENERAL"))
    assert reply == "INC-1 is now *monitoring*."
    await warroom.settle()
    assert stored(warroom).mitigated_at is not None
    assert topic(warroom).startswith("INC-1 SEV1 | Monitoring")


# -- severity ----------------------------------------------------------------------------


@pytest.mark.parametrize("args", ["2", "sev2", "SEV-2"])
async def test_severity_change(warroom: Warroom, war_room: str, args: str) -> None:
    reply = assert_ephemeral(await warroom.command(f"sev {args}", channel=war_room))
    assert reply == "INC-1 is now *SEV2*; its reminders follow."
    await warroom.settle()
    assert stored(warroom).severity == "sev2"
    assert topic(warroom) == "INC-1 SEV2 | Investigating | Commander: ana"
    assert "*Severity:* SEV2" in header(warroom)
    update = warroom.slack.calls_to("chat.update")[-1].args
    assert update["text"] == f"INC-1 (SEV2): {TITLE}"
    event = last_event(warroom)
    assert event.kind == "severity_changed"
    assert (event.text, event.data) == ("Severity SEV1 → SEV2", {"from": "sev1", "to": "sev2"})

    again = assert_ephemeral(await warroom.command("sev 2", channel=war_room))
    assert again == "INC-1 is already SEV2."
    assert len(events_of(warroom, "severity_changed")) == 1


# -- customer updates ---------------------------------------------------------------------


async def test_a_customer_update_is_posted_and_recorded(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    channel = (await room.declare(f"{TITLE} sev1")).channel_id or ""
    text = "Checkout is failing for some customers. A fix is being rolled out."
    reply = assert_ephemeral(await room.command(f"update {text}", channel=channel))
    assert reply == (
        "Customer update for INC-1 posted in the war room and the announcement channel."
    )
    await room.settle()

    [in_room] = posts(room, channel, ":loudspeaker:")
    [announced] = posts(room, "C0ANNOUNCE", ":loudspeaker:")
    assert in_room == announced
    lines = in_room.splitlines()
    assert lines[0] == ":loudspeaker: *Customer update: INC-1 (SEV1, investigating)*"
    assert lines[1] == text
    assert lines[2] == f"_Posted by ana at {slack_date(stored(room).last_update_at)}._"

    event = last_event(room)
    assert (event.kind, event.text, event.actor_id) == ("customer_update", text, "U0ANA")
    assert stored(room).last_update_at == event.at
    assert topic(room).startswith("INC-1 SEV1 | Investigating")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("Checkout is probably back for most customers", "probably"),
        ("We think checkout is recovering", "we think"),
        ("Errors were caused by a bad deploy", "caused by"),
        ("The root cause is a full disk on db-1", "root cause"),
    ],
)
async def test_a_speculative_update_gets_a_caution(
    warroom: Warroom, war_room: str, text: str, flagged: str
) -> None:
    reply = assert_ephemeral(await warroom.command(f"update {text}", channel=war_room))
    first, caution = reply.split("\n", 1)
    assert first.startswith("Customer update for INC-1 posted")
    assert caution.startswith(":warning: Customer updates state facts, not guesses")
    assert f"“{flagged}”" in caution
    await warroom.settle()
    # A caution, not a refusal: the update went out.
    assert [p.splitlines()[1] for p in posts(warroom, war_room, ":loudspeaker:")] == [text]
    assert last_event(warroom).kind == "customer_update"


async def test_a_factual_update_gets_no_caution(warroom: Warroom, war_room: str) -> None:
    reply = assert_ephemeral(
        await warroom.command(
            "update Checkout errors have stopped since 14:05 UTC.", channel=war_room
        )
    )
    assert ":warning:" not in reply and "\n" not in reply


async def test_update_text_is_posted_as_read_and_inert(warroom: Warroom, war_room: str) -> None:
    text = (
        "<!channel> checkout is back &lt;b&gt; thanks <@U0BO|bo> see <https://status.example.com>"
    )
    assert_ephemeral(await warroom.command(f"update {text}", channel=war_room))
    await warroom.settle()
    [posted] = posts(warroom, war_room, ":loudspeaker:")
    body = posted.splitlines()[1]
    assert body == (
        "@\u2060channel checkout is back &lt;b&gt; thanks @bo see https://status.example.com"
    )
    assert not LIVE_BROADCAST.search(posted)
    # The timeline keeps what was typed.
    assert last_event(warroom).text == text


async def test_the_comms_lead_may_post_updates(warroom: Warroom, war_room: str) -> None:
    assert_ephemeral(await warroom.command("role comms <@U0BO>", channel=war_room))
    reply = assert_ephemeral(
        await warroom.command("update Checkout is back.", channel=war_room, user="U0BO")
    )
    assert reply.startswith("Customer update for INC-1 posted")
    await warroom.settle()
    assert len(posts(warroom, "C0ANNOUNCE", ":loudspeaker:")) == 1
    event = last_event(warroom)
    assert (event.kind, event.actor_id) == ("customer_update", "U0BO")
    assert "_Posted by bo at" in posts(warroom, war_room, ":loudspeaker:")[0]


# -- resolve -------------------------------------------------------------------------------


async def test_resolve_with_a_summary(warroom: Warroom, war_room: str) -> None:
    reply = assert_ephemeral(
        await warroom.command("resolve Rolled back deploy 4711 <!here>", channel=war_room)
    )
    assert reply == RESOLVED_REPLY
    await warroom.settle()
    incident = stored(warroom)
    assert incident.status == "resolved" and incident.resolved_at is not None
    changed, resolved = warroom.timeline(1)[-2:]
    assert (changed.kind, changed.data) == (
        "status_changed",
        {"from": "investigating", "to": "resolved"},
    )
    assert resolved.kind == "resolved"
    assert resolved.text == "Rolled back deploy 4711 <!here>"
    assert resolved.at == incident.resolved_at
    assert isinstance(resolved.data["duration_seconds"], int)
    [announced] = posts(warroom, "C0ANNOUNCE", ":white_check_mark:")
    assert announced.startswith(":white_check_mark: *INC-1* resolved after ")
    assert f"{TITLE} <#{war_room}>" in announced
    assert announced.endswith("\n>Rolled back deploy 4711 @\u2060here")
    assert topic(warroom).startswith("INC-1 SEV1 | Resolved")
    assert "*Status:* Resolved" in header(warroom)

    again = assert_ephemeral(await warroom.command("resolve", channel=war_room))
    assert again == "INC-1 is already resolved."
    assert len(events_of(warroom, "resolved")) == 1
    await warroom.settle()
    assert len(posts(warroom, "C0ANNOUNCE", ":white_check_mark:")) == 1


async def test_resolve_without_a_summary(warroom: Warroom, war_room: str) -> None:
    assert assert_ephemeral(await warroom.command("resolve", channel=war_room)) == RESOLVED_REPLY
    await warroom.settle()
    assert last_event(warroom).kind == "resolved" and last_event(warroom).text is None
    [announced] = posts(warroom, "C0ANNOUNCE", ":white_check_mark:")
    assert "\n" not in announced


# -- post-mortem -------------------------------------------------------------------------


async def test_the_postmortem_draft_is_built_from_the_timeline(
    warroom: Warroom, war_room: str
) -> None:
    for text in (
        "status monitoring",
        "update Checkout is recovering.",
        "note <!here> failing over to db-2 & draining the queue",
        "resolve Rolled back deploy 4711",
    ):
        assert_ephemeral(await warroom.command(text, channel=war_room))
    reply = assert_ephemeral(await warroom.command("postmortem", channel=war_room))
    assert reply == "A post-mortem draft for INC-1 is posted in the war room."
    await warroom.settle()

    [draft] = posts(warroom, war_room, "# Post-mortem")
    assert draft.startswith(f"# Post-mortem: INC-1 {TITLE}\n")
    assert "## Summary\nRolled back deploy 4711\n" in draft
    assert "- Severity: SEV1" in draft
    for line in ("Time to acknowledge: ", "Time to mitigate: ", "Time to resolve: "):
        assert re.search(rf"- {line}\d+s\n", draft), line
    assert re.search(r"UTC: Checkout is recovering\.\n", draft)
    for what in (
        f"Declared by ana: {TITLE}",
        "Status investigating → monitoring (ana)",
        "Customer update by ana: Checkout is recovering.",
        "Status monitoring → resolved (ana)",
        "Note from ana: @\u2060here failing over to db-2 &amp; draining the queue",
    ):
        assert re.search(rf"- \d{{4}}-\d\d-\d\d \d\d:\d\d UTC {re.escape(what)}\n", draft), what
    assert not LIVE_BROADCAST.search(draft)
    event = last_event(warroom)
    assert (event.kind, event.data) == ("postmortem", {"action": "draft"})
    assert stored(warroom).postmortem_done_at is None


async def test_a_draft_before_resolution_says_what_is_not_known_yet(
    warroom: Warroom, war_room: str
) -> None:
    assert_ephemeral(await warroom.command("postmortem", channel=war_room))
    await warroom.settle()
    [draft] = posts(warroom, war_room, "# Post-mortem")
    assert "- Time to resolve: n/a" in draft
    assert "_What happened, in two or three sentences._" in draft


@pytest.mark.parametrize(
    "link",
    [
        "https://wiki.example.com/pm/1",
        "<https://wiki.example.com/pm/1>",
        "<https://wiki.example.com/pm/1|PM for INC-1>",
    ],
)
async def test_postmortem_done_records_the_link(warroom: Warroom, war_room: str, link: str) -> None:
    assert_ephemeral(await warroom.command("resolve", channel=war_room))
    reply = assert_ephemeral(await warroom.command(f"postmortem done {link}", channel=war_room))
    assert reply == "Post-mortem for INC-1 recorded; its reminders have stopped."
    incident = stored(warroom)
    assert incident.postmortem_url == "https://wiki.example.com/pm/1"
    assert incident.postmortem_done_at is not None
    event = last_event(warroom)
    assert event.kind == "postmortem"
    assert event.data == {"action": "done", "url": "https://wiki.example.com/pm/1"}
    assert event.at == incident.postmortem_done_at


async def test_postmortem_done_needs_a_resolved_incident(warroom: Warroom, war_room: str) -> None:
    reply = assert_ephemeral(
        await warroom.command("postmortem done https://wiki.example.com/pm/1", channel=war_room)
    )
    assert reply == "Resolve INC-1 before closing its post-mortem."
    assert stored(warroom).postmortem_url is None
    assert (last_event(warroom).kind, last_event(warroom).data) == ("command", {"reason": reply})


# -- acknowledgement ---------------------------------------------------------------------


async def test_an_incident_a_person_declared_is_acknowledged_already(
    warroom: Warroom, war_room: str
) -> None:
    incident = stored(warroom)
    assert incident.acknowledged_at == incident.declared_at
    # Anyone may ack; here there is nothing left to acknowledge.
    reply = assert_ephemeral(await warroom.command("ack", channel=war_room, user="U0CY"))
    assert reply == "INC-1 is already acknowledged."
    assert stored(warroom).acknowledged_at == incident.acknowledged_at
    event = last_event(warroom)
    assert (event.kind, event.actor_id, event.text) == ("command", "U0CY", "/incident ack")


# -- who may do what ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("status monitoring", "change the status"),
        ("status resolved", "resolve the incident"),
        ("sev 2", "change the severity"),
        ("update Checkout is back.", "post customer updates"),
        ("resolve", "resolve the incident"),
        ("resolve all good now", "resolve the incident"),
        ("postmortem", "post the post-mortem draft"),
    ],
)
async def test_others_are_refused(warroom: Warroom, war_room: str, text: str, what: str) -> None:
    before, calls_before = snapshot(warroom), len(warroom.slack.calls)
    reply = assert_ephemeral(await warroom.command(text, channel=war_room, user="U0BO"))
    assert reply.startswith("Only the commander (ana)")
    assert reply.endswith(f"can {what} in INC-1.")
    await warroom.settle()
    assert snapshot(warroom) == before
    assert warroom.slack.calls[calls_before:] == []
    event = last_event(warroom)
    assert event.kind == "command_refused"
    assert (event.actor_id, event.text, event.data) == (
        "U0BO",
        f"/incident {text}",
        {"reason": reply},
    )


async def test_closing_the_postmortem_is_refused_to_others(warroom: Warroom, war_room: str) -> None:
    assert_ephemeral(await warroom.command("resolve", channel=war_room))
    reply = assert_ephemeral(
        await warroom.command(
            "postmortem done https://wiki.example.com/1", channel=war_room, user="U0CY"
        )
    )
    assert reply == "Only the commander (ana) or an admin can close the post-mortem in INC-1."
    assert stored(warroom).postmortem_done_at is None
    assert last_event(warroom).kind == "command_refused"


async def test_a_former_commander_is_refused(warroom: Warroom, war_room: str) -> None:
    assert_ephemeral(await warroom.command("role commander <@U0BO>", channel=war_room))
    reply = assert_ephemeral(await warroom.command("sev 2", channel=war_room))
    assert reply == "Only the commander (Bo) or an admin can change the severity in INC-1."
    assert stored(warroom).severity == "sev1"
    reply = assert_ephemeral(await warroom.command("sev 2", channel=war_room, user="U0BO"))
    assert reply == "INC-1 is now *SEV2*; its reminders follow."


async def test_an_admin_may_do_everything(warroom: Warroom, war_room: str) -> None:
    for text in (
        "status monitoring",
        "sev 2",
        "update Checkout is back.",
        "resolve Fixed",
        "postmortem",
        "postmortem done https://wiki.example.com/1",
    ):
        assert "Only" not in assert_ephemeral(
            await warroom.command(text, channel=war_room, user="U0ADMIN")
        )
    incident = stored(warroom)
    assert (incident.status, incident.severity) == ("resolved", "sev2")
    assert incident.postmortem_url == "https://wiki.example.com/1"
    assert "command_refused" not in warroom.kinds(1)
    assert {e.actor_id for e in warroom.timeline(1)[3:]} == {"U0ADMIN"}


# -- bad input ------------------------------------------------------------------------------


STATUS_USAGE = "Usage: `/incident status investigating|identified|monitoring|resolved`"
SEV_USAGE = "Usage: `/incident sev 1-4`"
NOT_A_URL = "Give the post-mortem's link as an http(s) URL."
POSTMORTEM_USAGE = "Usage: `/incident postmortem` or `/incident postmortem done &lt;url&gt;`"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status bogus", STATUS_USAGE),
        ("status", STATUS_USAGE),
        ("status monitoring now", STATUS_USAGE),
        ("sev 9", SEV_USAGE),
        ("sev 0", SEV_USAGE),
        ("sev", SEV_USAGE),
        ("sev high", SEV_USAGE),
        ("update", "Usage: `/incident update &lt;text&gt;`"),
        ("postmortem done notaurl", NOT_A_URL),
        (
            "postmortem done ftp://files.example.com/pm",
            NOT_A_URL,
        ),
        ("postmortem done", POSTMORTEM_USAGE),
        ("postmortem finished https://wiki.example.com/1", POSTMORTEM_USAGE),
        ("postmortem done https://a.example.com https://b.example.com", NOT_A_URL),
    ],
)
async def test_malformed_lifecycle_input_changes_nothing(
    warroom: Warroom, war_room: str, text: str, message: str
) -> None:
    before, calls_before = snapshot(warroom), len(warroom.slack.calls)
    reply = assert_ephemeral(await warroom.command(text, channel=war_room))
    assert reply == message
    await warroom.settle()
    assert snapshot(warroom) == before
    assert warroom.slack.calls[calls_before:] == []
    event = last_event(warroom)
    assert event.kind == "command"
    assert (event.text, event.data) == (f"/incident {text}", {"reason": message})


# -- templates ------------------------------------------------------------------------------


async def test_templates_dir_overrides_the_customer_update(
    make_warroom: WarroomFactory, tmp_path: Path
) -> None:
    overrides = tmp_path / "our-templates"
    overrides.mkdir()
    (overrides / "customer_update.md.j2").write_text(
        "ACME status | {{ incident.ref }} is {{ incident.status }} | {{ text | slack }} "
        "| {{ author | slack }}",
        encoding="utf-8",
    )
    room = await make_warroom({"templates_dir": str(overrides)})
    channel = (await room.declare(f"{TITLE} sev1")).channel_id or ""
    assert_ephemeral(await room.command("update Checkout &lt;is&gt; back", channel=channel))
    assert_ephemeral(await room.command("postmortem", channel=channel))
    await room.settle()
    expected = "ACME status | INC-1 is investigating | Checkout &lt;is&gt; back | ana"
    assert posts(room, channel, "ACME") == [expected]
    assert posts(room, "C0ANNOUNCE", "ACME") == [expected]
    assert posts(room, channel, ":loudspeaker:") == []
    # A template the folder does not have is the built-in one.
    assert len(posts(room, channel, "# Post-mortem: INC-1")) == 1
