"""Key events through the real path: the "Add to incident timeline" message shortcut (a signed
interactivity request), and pins and chosen reactions (signed Events API requests), stored in a
real database, confirmed through the response_url the fake Slack serves, and shown as key in the
exports. The parsers alone: tests/unit/test_key_event_parsing.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from bot.config import WarroomConfig
from bot.exports.export import export_chunks
from storage.models import Incident, TimelineEvent
from tests.support.fakes.slack_api import BOT_USER
from tests.support.home import (
    interaction,
    message_event,
    pin_event,
    reaction_event,
    run_shortcut,
    shortcut_payload,
)
from tests.support.warroom import Warroom, WarroomFactory

MESSAGE_TS = "1700000100.000200"
MESSAGE_TEXT = "rolling back <@U0CY|cy>'s deploy fixed it &amp; errors are down"
REPLY_TS = "1700000160.000300"


def key_events(room: Warroom, incident: Incident | None = None) -> list[TimelineEvent]:
    return [
        e for e in room.timeline(incident.number if incident else None) if e.kind == "key_event"
    ]


async def deliver(room: Warroom, event: dict[str, Any], **kwargs: Any) -> None:
    reply = await room.event(event, **kwargs)
    assert reply.status == 200, f"answered {reply.status} {reply.text!r}: Slack would retry"


async def war_room_with_message(room: Warroom) -> Incident:
    """A declared incident whose channel has one message from ana on its timeline."""
    incident = await room.declare("Checkout API returning 500s sev2", user="U0ANA")
    assert incident.channel_id
    await deliver(
        room, message_event(channel=incident.channel_id, ts=MESSAGE_TS, text=MESSAGE_TEXT)
    )
    # Names are learned after the acks; let them land so that what follows reads them.
    await room.settle()
    return incident


def message(ts: str = MESSAGE_TS, text: str = MESSAGE_TEXT, **extra: Any) -> dict[str, Any]:
    return {"ts": ts, "text": text, "user": "U0ANA", **extra}


def confirmations(room: Warroom, since: int) -> list[str]:
    """What was posted back through response_url after the first `since` replies."""
    return [str(r.get("text")) for r in room.slack.responses[since:]]


# -- the message shortcut ----------------------------------------------------------------------


async def test_the_shortcut_marks_a_war_room_message_as_a_key_event(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await war_room_with_message(room)
    replies = len(room.slack.responses)

    reply = await run_shortcut(room, channel=incident.channel_id, message=message(), user="U0BO")
    await room.settle()

    assert reply.status == 200, reply.text
    [key] = key_events(room, incident)
    assert key.actor_id == "U0BO"
    assert key.actor_name == "Bo"  # learned after the ack
    assert key.text == MESSAGE_TEXT
    assert key.slack_ts == MESSAGE_TS and key.thread_ts is None
    # At the message's own time, so it sits right after the message in the timeline.
    assert key.at == datetime(2023, 11, 14, 22, 15, 0, 200, tzinfo=UTC)
    assert key.data == {"via": "shortcut", "author_id": "U0ANA", "author_name": "Ana"}
    kinds = room.kinds(incident.number)
    assert kinds.index("key_event") == kinds.index("message") + 1
    assert confirmations(room, replies) == [
        f":pushpin: Added to the INC-{incident.number} timeline as a key event."
    ]
    assert room.slack.responses[-1].get("response_type") == "ephemeral"


async def test_a_message_is_a_key_event_once_however_often_and_however_it_is_marked(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await war_room_with_message(room)
    channel = incident.channel_id
    assert channel
    replies = len(room.slack.responses)

    await run_shortcut(room, channel=channel, message=message(), user="U0BO")
    await room.settle()
    await run_shortcut(room, channel=channel, message=message(), user="U0CY")
    pinned = pin_event(channel=channel, message=message(), user="U0CY")
    await deliver(room, pinned, event_id="EvPIN1")
    await deliver(room, pinned, event_id="EvPIN1", retry=1)
    await deliver(room, reaction_event(channel=channel, ts=MESSAGE_TS, reaction="star"))
    await room.settle()

    [key] = key_events(room, incident)
    assert key.actor_id == "U0BO", "the first mark counts"
    assert confirmations(room, replies)[1] == (
        f"That message is already a key event on the INC-{incident.number} timeline."
    )


async def test_the_shortcut_outside_a_war_room_records_nothing_and_says_why(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    before = room.kinds(incident.number)
    replies = len(room.slack.responses)

    reply = await run_shortcut(room, channel="C0GENERAL", message=message(), user="U0BO")
    await room.settle()

    assert reply.status == 200
    assert key_events(room) == []
    assert room.kinds(incident.number) == before
    [said] = confirmations(room, replies)
    assert said.startswith("This is not an incident channel")


async def test_the_shortcut_on_a_thread_reply_keeps_its_thread(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    reply_message = message(REPLY_TS, "confirmed on EU too", thread_ts=MESSAGE_TS, user="U0CY")

    await run_shortcut(room, channel=incident.channel_id, message=reply_message, user="U0ANA")

    [key] = key_events(room, incident)
    assert (key.slack_ts, key.thread_ts, key.text) == (REPLY_TS, MESSAGE_TS, "confirmed on EU too")
    assert key.data["author_id"] == "U0CY"


async def test_the_shortcut_on_the_header_records_nothing(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    header_ts = room_incident(room, incident).header_ts
    assert header_ts, "the header was posted"
    replies = len(room.slack.responses)

    header = {"ts": header_ts, "text": "INC header", "bot_id": "B0BOT"}
    await run_shortcut(room, channel=incident.channel_id, message=header, user="U0BO")
    await room.settle()

    assert key_events(room) == []
    assert confirmations(room, replies)[0].startswith(f"That is the INC-{incident.number} header")


async def test_without_a_response_url_the_confirmation_is_an_ephemeral_message(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    payload = shortcut_payload(room, channel=incident.channel_id or "", message=message())
    del payload["response_url"]
    payload["user"]["id"] = "U0ANA"  # in the war room: Slack shows ephemerals to members only

    reply = await interaction(room, payload)
    await room.settle()

    assert reply.status == 200
    assert len(key_events(room, incident)) == 1
    [sent] = [c for c in room.slack.calls_to("chat.postEphemeral") if ":pushpin:" in c.args["text"]]
    assert sent.args["channel"] == incident.channel_id and sent.args["user"] == "U0ANA"
    assert (
        sent.args["text"]
        == f":pushpin: Added to the INC-{incident.number} timeline as a key event."
    )


# -- pins ---------------------------------------------------------------------------------------


async def test_a_pin_in_a_war_room_is_a_key_event_once_even_when_redelivered(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await war_room_with_message(room)
    pinned = pin_event(channel=incident.channel_id or "", message=message(), user="U0CY")

    await deliver(room, pinned, event_id="EvPIN7")
    await deliver(room, pinned, event_id="EvPIN7", retry=1)
    await deliver(room, pinned, event_id="EvPIN7", retry=2)

    [key] = key_events(room, incident)
    assert (key.actor_id, key.text, key.slack_ts) == ("U0CY", MESSAGE_TEXT, MESSAGE_TS)
    assert key.data["via"] == "pin"


async def test_warroom_pinning_its_own_header_is_no_key_event(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    channel = incident.channel_id or ""
    header_ts = room_incident(room, incident).header_ts
    assert header_ts
    header = {"ts": header_ts, "text": "INC header", "bot_id": "B0BOT", "user": BOT_USER}

    # The event Slack sends for warroom's own pins.add, and a person pinning it again.
    await deliver(room, pin_event(channel=channel, message=header, user=BOT_USER))
    await deliver(room, pin_event(channel=channel, message=header, user="U0BO"))

    assert key_events(room) == []


async def test_pins_outside_war_rooms_and_of_files_record_nothing(
    make_warroom: WarroomFactory,
) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    file_pin = pin_event(channel=incident.channel_id or "", message=message())
    file_pin["item"] = {"type": "file", "file": {"id": "F1"}, "channel": incident.channel_id}

    await deliver(room, pin_event(channel="C0GENERAL", message=message()))
    await deliver(room, file_pin)

    assert key_events(room) == []


# -- reactions ----------------------------------------------------------------------------------


async def test_a_key_reaction_marks_the_message_with_the_text_the_timeline_has(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await make_warroom(database_url=database_url)
    incident = await war_room_with_message(room)
    channel = incident.channel_id or ""
    edited = dict(message_event(channel=channel, ts="1700000130.000100", text=""))
    edited.update(
        subtype="message_changed",
        message={"ts": MESSAGE_TS, "user": "U0ANA", "text": "edited: rollback fixed it"},
        previous_message={"ts": MESSAGE_TS, "user": "U0ANA", "text": MESSAGE_TEXT},
    )
    await deliver(room, edited)

    await deliver(room, reaction_event(channel=channel, ts=MESSAGE_TS, reaction="thumbsup"))
    assert key_events(room) == [], "only the configured reactions mark"
    await deliver(room, reaction_event(channel=channel, ts=MESSAGE_TS, reaction="pushpin"))
    await room.settle()

    [key] = key_events(room, incident)
    assert key.actor_id == "U0CY"
    assert key.text == "edited: rollback fixed it", "the latest text, from the timeline"
    assert key.data == {
        "via": "reaction",
        "author_id": "U0ANA",
        "author_name": "Ana",
        "reaction": "pushpin",
    }


async def test_the_reactions_that_mark_are_configured(make_warroom: WarroomFactory) -> None:
    room = await make_warroom({"key_event_reactions": [":fire:", "white_check_mark"]})
    incident = await war_room_with_message(room)
    channel = incident.channel_id or ""
    second_ts = "1700000200.000100"
    await deliver(room, message_event(channel=channel, ts=second_ts, text="second"))

    await deliver(room, reaction_event(channel=channel, ts=MESSAGE_TS, reaction="star"))
    await deliver(room, reaction_event(channel=channel, ts=MESSAGE_TS, reaction="fire"))
    await deliver(
        room,
        reaction_event(channel=channel, ts=second_ts, reaction="white_check_mark::skin-tone-3"),
    )

    assert [(k.slack_ts, k.data["reaction"]) for k in key_events(room, incident)] == [
        (MESSAGE_TS, "fire"),
        (second_ts, "white_check_mark"),
    ]


async def test_reactions_outside_war_rooms_record_nothing(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    await war_room_with_message(room)

    await deliver(room, reaction_event(channel="C0GENERAL", ts=MESSAGE_TS, reaction="star"))

    assert key_events(room) == []


# -- exports --------------------------------------------------------------------------------


async def test_a_marked_message_is_a_key_event_in_the_exports(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    incident = await war_room_with_message(room)
    await run_shortcut(room, channel=incident.channel_id, message=message(), user="U0BO")
    await room.settle()

    pages = {fmt: export(room, incident.number, fmt) for fmt in ("html", "md", "json")}

    assert 'class="event k-key_event key"' in pages["html"]
    assert "rolling back @cy&#39;s deploy fixed it &amp; errors are down" in pages["html"]
    # Markdown escapes what it must (`&`, a mention-like `@`) and bolds key events.
    assert "\n- **2023-11-14 22:15:00 key event** · Bo: rolling back @\u2060cy's" in pages["md"]
    assert '"kind": "key_event"' in pages["json"]
    # Whose words they were, beside who marked them.
    assert "marked key from Ana&#39;s message (shortcut)" in pages["html"]
    assert "marked key from Ana's message (shortcut)" in pages["md"]


def export(room: Warroom, number: int, fmt: str) -> str:
    services = room.services
    with Session(services.db.engine) as session:
        return "".join(
            export_chunks(
                session,
                number,
                fmt,
                config=WarroomConfig(),
                templates=services.templates,
                redact=False,
                now=datetime.now(UTC),
            )
        )


def room_incident(room: Warroom, incident: Incident) -> Incident:
    """The incident row as it is now (the header ts is written after the declaration)."""
    with Session(room.services.db.engine) as session:
        row = session.get(Incident, incident.id)
        assert row is not None
        return row
