"""The timeline through the real path: signed Events API requests into the real server and Bolt,
stored in a real SQLite file, with the fake Slack answering users.info.

Canned events live in tests/payloads/; each test puts them in the war room it declared."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from slack_sdk.signature import SignatureVerifier
from sqlmodel import select

from storage.db import Database
from storage.models import Incident, TimelineEvent
from tests.support.databases import timeline_writes_failing
from tests.support.paths import PAYLOADS, REPO
from tests.support.warroom import SIGNING_SECRET, Warroom, WarroomFactory

MANIFEST = REPO / "manifest.yml"

FIRST_TS = "1700000100.000200"  # the ts of payloads/message.json, which the others refer to
FIRST_TEXT = "checkout is failing for EU customers"
EDITED_TEXT = "checkout is failing for all customers"


# -- helpers ------------------------------------------------------------------------------


def payload(name: str, channel: str | None, **changes: Any) -> dict[str, Any]:
    """A canned Slack event from tests/payloads, placed in `channel`."""
    assert channel, "no channel to put the event in: was the war room opened?"
    event: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    event["channel"] = channel
    event.update(changes)
    return event


def slack_time(ts: str) -> datetime:
    """What a Slack ts means, worked out without float arithmetic."""
    seconds, micros = ts.split(".")
    return datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=int(micros))


async def deliver(warroom: Warroom, event: dict[str, Any], **kwargs: Any) -> None:
    """Send `event` as Slack would and insist on a 200 (anything else makes Slack retry)."""
    reply = await warroom.event(event, **kwargs)
    assert reply.status == 200, f"answered {reply.status} {reply.text!r}: Slack would retry"


def entries(warroom: Warroom, incident: Incident, kind: str) -> list[TimelineEvent]:
    return [e for e in warroom.timeline(incident.number) if e.kind == kind]


def the_one(warroom: Warroom, incident: Incident, kind: str) -> TimelineEvent:
    """The single entry of `kind`; fails when there is none or more than one."""
    found = entries(warroom, incident, kind)
    assert len(found) == 1, f"want one {kind!r}; the timeline is {warroom.kinds(incident.number)}"
    return found[0]


def assert_entry(
    entry: TimelineEvent, *, data: dict[str, Any] | None = None, **fields: Any
) -> None:
    """Compare the named columns exactly, and `data` key by key (other keys may be added)."""
    actual = {name: getattr(entry, name) for name in fields}
    assert actual == fields
    if data is not None:
        assert {key: entry.data.get(key) for key in data} == data, entry.data


def numbered(channel: str | None, n: int) -> dict[str, Any]:
    """The n-th of a run of distinct messages from U0BO."""
    ts = f"17000002{n:02d}.000100"
    return payload("message", channel, ts=ts, event_ts=ts, text=f"update {n}")


def users_info_calls(warroom: Warroom, user_id: str) -> int:
    return sum(1 for c in warroom.slack.calls_to("users.info") if c.args.get("user") == user_id)


@pytest.fixture
async def incident(warroom: Warroom) -> Incident:
    """A declared incident whose war room the events below are sent to."""
    return await warroom.declare()


# -- what a message in the war room records --------------------------------------------------


MESSAGES = {
    "message": {
        "actor_id": "U0BO",
        "actor_name": "Bo",
        "text": FIRST_TEXT,
        "slack_ts": FIRST_TS,
        "thread_ts": None,
        "data": {"subtype": None, "files": None},
    },
    "thread_reply": {
        "actor_id": "U0CY",
        "actor_name": "Cy",
        "text": "seeing 502s from the payments gateway",
        "slack_ts": "1700000160.000300",
        "thread_ts": FIRST_TS,
        "data": {"subtype": None},
    },
    "thread_broadcast": {
        "actor_id": "U0CY",
        "actor_name": "Cy",
        "text": "root cause: expired TLS certificate on the gateway",
        "slack_ts": "1700000220.000400",
        "thread_ts": FIRST_TS,
        "data": {"subtype": "thread_broadcast"},
    },
    "file_share": {
        "actor_id": "U0BO",
        "actor_name": "Bo",
        "text": "error rate since 14:02",
        "slack_ts": "1700000280.000500",
        "thread_ts": None,
        "data": {
            "subtype": "file_share",
            "files": [
                {
                    "id": "F0GRAFANA1",
                    "name": "error-rate.png",
                    "title": "Error rate",
                    "mimetype": "image/png",
                    "permalink": "https://test.slack.com/files/U0BO/F0GRAFANA1/error-rate.png",
                }
            ],
        },
    },
    "bot_message": {
        # Another app's post: named from bot_profile, not from the username it posted under.
        "actor_id": "B0PAGER",
        "actor_name": "PagerDuty",
        "text": "Alert triggered: checkout-api 5xx rate above 5%",
        "slack_ts": "1700000130.000250",
        "thread_ts": None,
        "data": {"subtype": "bot_message", "bot_id": "B0PAGER"},
    },
    "me_message": {
        "actor_id": "U0BO",
        "actor_name": "Bo",
        "text": "is rolling back the 14:00 deploy",
        "slack_ts": "1700000310.000550",
        "thread_ts": None,
        "data": {"subtype": "me_message"},
    },
}


@pytest.mark.parametrize(("name", "expected"), MESSAGES.items(), ids=list(MESSAGES))
async def test_a_war_room_message_is_recorded(
    warroom: Warroom, incident: Incident, name: str, expected: dict[str, Any]
) -> None:
    event = payload(name, incident.channel_id)
    await deliver(warroom, event)
    await warroom.settle()

    entry = the_one(warroom, incident, "message")
    assert_entry(entry, **expected)
    assert entry.at == slack_time(event["ts"])
    assert entry.at.utcoffset() == timedelta(0)  # aware, in UTC


async def test_a_thread_reply_keeps_its_thread(warroom: Warroom, incident: Incident) -> None:
    await deliver(warroom, payload("message", incident.channel_id))
    await deliver(warroom, payload("thread_reply", incident.channel_id))

    parent, reply = entries(warroom, incident, "message")
    assert (parent.slack_ts, parent.thread_ts) == (FIRST_TS, None)
    assert reply.thread_ts == parent.slack_ts != reply.slack_ts


async def test_another_apps_post_asks_slack_for_no_user(
    warroom: Warroom, incident: Incident
) -> None:
    await deliver(warroom, payload("bot_message", incident.channel_id))
    await warroom.settle()
    assert warroom.slack.calls_to("users.info") == []


@pytest.mark.parametrize(
    "ours",
    [
        {"user": "UBOT0001", "bot_id": "B0BOT", "text": "Customer update posted"},
        {"subtype": "bot_message", "bot_id": "B0BOT", "text": "Reminder: update due"},
    ],
    ids=["as-bot-user", "as-bot-message"],
)
async def test_warroom_s_own_posts_are_not_recorded_as_messages(
    warroom: Warroom, incident: Incident, ours: dict[str, Any]
) -> None:
    # What warroom says goes on the timeline under its own kind (update, reminder...) when it
    # says it; Slack echoing it back must not add a second entry.
    event = {k: v for k, v in payload("message", incident.channel_id).items() if k != "user"}
    await deliver(warroom, {**event, **ours})
    assert entries(warroom, incident, "message") == []


# -- edits and deletions --------------------------------------------------------------------


async def test_an_edit_keeps_the_old_and_the_new_text(warroom: Warroom, incident: Incident) -> None:
    await deliver(warroom, payload("message", incident.channel_id))
    await deliver(warroom, payload("message_changed", incident.channel_id))

    assert_entry(the_one(warroom, incident, "message"), text=FIRST_TEXT, slack_ts=FIRST_TS)
    edit = the_one(warroom, incident, "message_edited")
    assert_entry(
        edit,
        actor_id="U0BO",
        text=EDITED_TEXT,
        slack_ts=FIRST_TS,
        thread_ts=None,
        data={"previous_text": FIRST_TEXT},
    )
    assert edit.at == slack_time("1700000340.000000")  # when it was edited, not posted


async def test_an_unfurl_is_not_an_edit(warroom: Warroom, incident: Incident) -> None:
    await deliver(warroom, payload("message", incident.channel_id))
    await deliver(warroom, payload("message_changed_unfurl", incident.channel_id))

    assert entries(warroom, incident, "message_edited") == []
    assert_entry(the_one(warroom, incident, "message"), text=FIRST_TEXT)


@pytest.mark.parametrize(
    ("sequence", "previous_text"),
    [
        (["message", "message_deleted"], FIRST_TEXT),
        # No previous_message in the event: the text comes from the timeline itself...
        (["message", "message_deleted_bare"], FIRST_TEXT),
        # ...and it is the text as last edited.
        (["message", "message_changed", "message_deleted_bare"], EDITED_TEXT),
    ],
    ids=["with-previous-message", "without-previous-message", "after-an-edit"],
)
async def test_a_deletion_leaves_a_tombstone(
    warroom: Warroom, incident: Incident, sequence: list[str], previous_text: str
) -> None:
    for name in sequence:
        await deliver(warroom, payload(name, incident.channel_id))

    tombstone = the_one(warroom, incident, "message_deleted")
    assert_entry(tombstone, slack_ts=FIRST_TS, data={"previous_text": previous_text})
    assert tombstone.at == slack_time("1700000400.000700")
    # Deleting in Slack does not rewrite history: the message itself is still there.
    assert_entry(the_one(warroom, incident, "message"), text=FIRST_TEXT)


# -- members joining and leaving ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "data"),
    [
        ("member_joined_channel", "member_joined", {"inviter": "U0ANA"}),
        ("member_left_channel", "member_left", {}),
    ],
)
async def test_members_joining_and_leaving_are_recorded(
    warroom: Warroom, incident: Incident, name: str, kind: str, data: dict[str, Any]
) -> None:
    event = payload(name, incident.channel_id)
    await deliver(warroom, event)

    entry = the_one(warroom, incident, kind)
    assert_entry(entry, actor_id="U0CY", data=data)
    assert entry.at == slack_time(event["event_ts"])


@pytest.mark.parametrize(
    ("member_event", "message", "kind"),
    [
        ("member_joined_channel", "channel_join", "member_joined"),
        ("member_left_channel", "channel_leave", "member_left"),
    ],
)
async def test_a_join_message_is_not_a_second_entry(
    warroom: Warroom, incident: Incident, member_event: str, message: str, kind: str
) -> None:
    await deliver(warroom, payload(member_event, incident.channel_id))
    await deliver(warroom, payload(message, incident.channel_id))

    the_one(warroom, incident, kind)
    assert entries(warroom, incident, "message") == []


# -- exactly once, durable before the 200 -------------------------------------------------------


REDELIVERABLE = [
    ("message", "message"),
    ("thread_reply", "message"),
    ("file_share", "message"),
    ("bot_message", "message"),
    ("message_changed", "message_edited"),
    ("message_deleted", "message_deleted"),
    ("member_joined_channel", "member_joined"),
    ("member_left_channel", "member_left"),
]


@pytest.mark.parametrize(("name", "kind"), REDELIVERABLE)
async def test_a_redelivery_makes_no_second_entry(
    warroom: Warroom, incident: Incident, name: str, kind: str
) -> None:
    event = payload(name, incident.channel_id)
    for retry in (None, 1, 2, 3):  # the first delivery, then Slack's three retries
        await deliver(warroom, event, event_id="Ev0REDELIVER1", retry=retry)

    the_one(warroom, incident, kind)


@pytest.mark.parametrize("name", ["member_joined_channel", "member_left_channel"])
async def test_a_membership_redelivery_is_known_by_its_event_id_alone(
    warroom: Warroom, incident: Incident, name: str
) -> None:
    """Without an `event_ts` to go by, each delivery would get a time of its own: the event id
    is what tells a retry from a second join."""
    event = payload(name, incident.channel_id)
    event.pop("event_ts", None)
    for retry in (None, 1, 2):
        await deliver(warroom, event, event_id="Ev0MEMBER1", retry=retry)
    await deliver(warroom, event, event_id="Ev0MEMBER2")  # the same person, another time

    kind = "member_joined" if name == "member_joined_channel" else "member_left"
    assert len(entries(warroom, incident, kind)) == 2


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("message", "message"),
        ("message_changed", "message_edited"),
        ("message_deleted", "message_deleted"),
    ],
)
async def test_the_same_message_under_a_new_event_id_makes_no_second_entry(
    warroom: Warroom, incident: Incident, name: str, kind: str
) -> None:
    event = payload(name, incident.channel_id)
    await deliver(warroom, event, event_id="Ev0FIRSTTIME")
    await deliver(warroom, event, event_id="Ev0SECONDTIME")

    the_one(warroom, incident, kind)


@pytest.mark.parametrize(
    ("name", "kind"), [("message", "message"), ("member_joined_channel", "member_joined")]
)
async def test_an_entry_is_committed_before_slack_gets_its_200(
    warroom: Warroom, incident: Incident, name: str, kind: str
) -> None:
    await deliver(warroom, payload(name, incident.channel_id))

    # Another process's view of the file: only committed rows are visible to it.
    other = Database(warroom.services.db.url)
    try:
        with other.reading() as session:
            stored = session.exec(
                select(TimelineEvent.kind).where(TimelineEvent.incident_id == incident.id)
            ).all()
    finally:
        other.close()
    assert kind in stored


async def test_a_write_that_fails_is_not_acknowledged(warroom: Warroom, incident: Incident) -> None:
    """The 200 waits on the commit: when the write fails Slack is told so, and its retry is
    then recorded (once)."""
    event = payload("message", incident.channel_id)
    with timeline_writes_failing(warroom.services.db.url):
        reply = await warroom.event(event, event_id="Ev0FAILSONCE")
        assert reply.status >= 500, "Slack must hear about a failed write, or it will not retry"
        assert entries(warroom, incident, "message") == []

    await deliver(warroom, event, event_id="Ev0FAILSONCE", retry=1)
    the_one(warroom, incident, "message")


@pytest.mark.parametrize("name", ["message", "file_share", "member_joined_channel"])
async def test_an_event_outside_a_war_room_is_acknowledged_and_not_recorded(
    warroom: Warroom, incident: Incident, name: str
) -> None:
    before = warroom.timeline()
    await deliver(warroom, payload(name, "C0GENERAL"))
    await warroom.settle()

    assert [e.id for e in warroom.timeline()] == [e.id for e in before]


async def test_overlapping_deliveries_on_every_database(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    """With PostgreSQL behind it the server writes in parallel; still one entry per message,
    every one of them named, and one users.info."""
    warroom = await make_warroom(database_url=database_url)
    incident = await warroom.declare()
    messages = [numbered(incident.channel_id, n) for n in range(20)]

    replies = await asyncio.gather(
        *(
            warroom.event(message, event_id=f"Ev0OVERLAP{n}", retry=retry)
            for n, message in enumerate(messages)
            for retry in (None, 1)  # each one, and a retry that overtakes it
        )
    )
    assert [r.status for r in replies] == [200] * 40
    await warroom.settle()

    recorded = entries(warroom, incident, "message")
    assert sorted(str(e.slack_ts) for e in recorded) == sorted(m["ts"] for m in messages)
    assert {e.actor_name for e in recorded} == {"Bo"}
    assert users_info_calls(warroom, "U0BO") == 1


# -- requests that are not from Slack --------------------------------------------------------


FORGERIES = [
    "ten-minutes-old",
    "ten-minutes-ahead",
    "wrong-signature",
    "other-secret",
    "body-changed-after-signing",
    "no-signature",
    "no-timestamp",
    "no-headers",
]


def forged_headers(how: str, body: str) -> dict[str, str]:
    """Headers for `body` that Slack's signing rules refuse, in the way `how` names."""
    now = int(time.time())

    def signed(at: int, secret: str = SIGNING_SECRET, content: str = body) -> dict[str, str]:
        stamp = str(at)
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=content)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}

    forgeries = {
        "ten-minutes-old": signed(now - 600),
        "ten-minutes-ahead": signed(now + 600),
        "wrong-signature": {
            "X-Slack-Request-Timestamp": str(now),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
        "other-secret": signed(now, secret="not-the-signing-secret"),
        "body-changed-after-signing": signed(now, content=body.replace("EU", "US")),
        "no-signature": {"X-Slack-Request-Timestamp": str(now)},
        "no-timestamp": {"X-Slack-Signature": signed(now)["X-Slack-Signature"]},
        "no-headers": {},
    }
    return forgeries[how]


@pytest.mark.parametrize("how", FORGERIES)
async def test_a_request_not_signed_by_slack_is_refused(
    warroom: Warroom, incident: Incident, how: str
) -> None:
    event = payload("message", incident.channel_id)
    body = warroom.event_body(event)
    headers = {"Content-Type": "application/json", **forged_headers(how, body)}
    async with warroom.http.post(warroom.url, data=body.encode(), headers=headers) as response:
        assert response.status == 401
    await warroom.settle()
    assert entries(warroom, incident, "message") == []

    # The event itself was fine: signed properly, it is taken.
    await deliver(warroom, event)
    the_one(warroom, incident, "message")


# -- display names ----------------------------------------------------------------------------


async def test_an_unknown_actor_is_named_from_users_info_after_the_ack(
    warroom: Warroom, incident: Incident
) -> None:
    assert users_info_calls(warroom, "U0BO") == 0, "the test needs someone warroom has not met"
    await deliver(warroom, payload("message", incident.channel_id))
    assert the_one(warroom, incident, "message").actor_id == "U0BO"

    await warroom.settle()
    assert the_one(warroom, incident, "message").actor_name == "Bo"
    assert users_info_calls(warroom, "U0BO") == 1


async def test_a_message_is_recorded_when_users_info_fails(
    warroom: Warroom, incident: Incident
) -> None:
    warroom.slack.fail("users.info", error="fatal_error")
    await deliver(warroom, payload("message", incident.channel_id))
    await warroom.settle()
    assert_entry(the_one(warroom, incident, "message"), actor_id="U0BO", actor_name=None)

    # The next message tries again, and names the earlier one too.
    await deliver(warroom, payload("thread_reply", incident.channel_id, user="U0BO"))
    await warroom.settle()
    assert [e.actor_name for e in entries(warroom, incident, "message")] == ["Bo", "Bo"]


async def test_users_info_is_asked_once_for_many_messages_from_one_person(
    warroom: Warroom, incident: Incident
) -> None:
    channel = incident.channel_id
    replies = await asyncio.gather(*(warroom.event(numbered(channel, n)) for n in range(8)))
    assert [r.status for r in replies] == [200] * 8
    await warroom.settle()
    await deliver(warroom, numbered(channel, 8))  # the name is known now: from the cache
    await warroom.settle()

    assert [e.actor_name for e in entries(warroom, incident, "message")] == ["Bo"] * 9
    assert users_info_calls(warroom, "U0BO") == 1


# -- every subscribed event is answered 200 ---------------------------------------------------


def _pin(channel: str) -> dict[str, Any]:
    message = {
        "type": "message",
        "user": "U0BO",
        "text": "rollback done",
        "ts": "1700000300.000100",
    }
    return {
        "type": "pin_added",
        "user": "U0ANA",
        "channel_id": channel,
        "item": {"type": "message", "channel": channel, "message": message},
        "event_ts": "1700000301.000100",
    }


def _reaction(channel: str) -> dict[str, Any]:
    return {
        "type": "reaction_added",
        "user": "U0ANA",
        "reaction": "pushpin",
        "item_user": "U0BO",
        "item": {"type": "message", "channel": channel, "ts": "1700000302.000100"},
        "event_ts": "1700000303.000100",
    }


def _home(_channel: str) -> dict[str, Any]:
    return {"type": "app_home_opened", "user": "U0ANA", "channel": "D0ANA", "tab": "home"}


# subscription -> (the event, placed in a channel; the timeline entry it makes in a war room,
# or None for an event that belongs to no channel's timeline)
SAMPLE_EVENTS: dict[str, tuple[Callable[[str], dict[str, Any]], str | None]] = {
    "message.channels": (lambda c: payload("message", c, channel_type="channel"), "message"),
    # private war rooms
    "message.groups": (lambda c: payload("message", c, channel_type="group"), "message"),
    "member_joined_channel": (lambda c: payload("member_joined_channel", c), "member_joined"),
    "member_left_channel": (lambda c: payload("member_left_channel", c), "member_left"),
    "pin_added": (_pin, "key_event"),
    "reaction_added": (_reaction, "key_event"),
    "app_home_opened": (_home, None),
    # a war room archived by hand (Slack's group_archive names no user)
    "channel_archive": (lambda c: payload("channel_archive", c), "channel_archive"),
    "group_archive": (lambda c: payload("group_archive", c), "channel_archive"),
}


def subscribed_bot_events() -> list[str]:
    manifest = yaml.safe_load(MANIFEST.read_text())
    return list(manifest["settings"]["event_subscriptions"]["bot_events"])


@pytest.mark.parametrize("subscription", subscribed_bot_events())
async def test_every_subscribed_event_is_answered_200(
    warroom: Warroom, incident: Incident, subscription: str
) -> None:
    assert subscription in SAMPLE_EVENTS, f"add a sample {subscription} event to SAMPLE_EVENTS"
    make, kind = SAMPLE_EVENTS[subscription]
    before = warroom.kinds(incident.number)
    for channel in (incident.channel_id, "C0GENERAL"):  # a war room, and anywhere else
        assert channel
        await deliver(warroom, make(channel))
    if kind is None:
        assert warroom.kinds(incident.number) == before
    else:
        the_one(warroom, incident, kind)


async def test_the_request_url_check_is_answered(warroom: Warroom) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps({"token": "x", "challenge": challenge, "type": "url_verification"})
    reply = await warroom.post(body, "application/json")
    assert reply.status == 200
    assert challenge in reply.text
