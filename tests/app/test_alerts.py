"""The Alertmanager webhook, through the real server: a firing group declares an incident once,
later notifications of the group join its timeline, a resolved one is noted and resolves
nothing, and a request that is not an authorised v4 notification stores nothing.

The last test runs the real Alertmanager (Debian's `prometheus-alertmanager`) on loopback and
lets it deliver to warroom."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from sqlmodel import Session, col, func, select

from bot.alerts.alertmanager import MAX_BODY
from storage.models import (
    Incident,
    OutboxMessage,
    Reminder,
    RoleAssignment,
    TimelineEvent,
)
from tests.support.alerts import (
    ALERT_PATH,
    GENERATOR,
    GROUP,
    TOKEN,
    alert,
    alert_room,
    fire,
    notification,
    post,
)
from tests.support.ci import missing
from tests.support.fakes.slack_api import FakeSlack
from tests.support.warroom import Warroom, WarroomFactory

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
# A broadcast mention that could fire: `<!channel>`, `<!here|here>`, or a bare `@here` word.
LIVE_MENTION = re.compile(r"<!(channel|here|everyone)\b|(?<![\w\u2060])@(channel|here|everyone)\b")


def incidents(room: Warroom) -> list[Incident]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(Incident).order_by(col(Incident.number))).all())


def incident(room: Warroom, number: int = 1) -> Incident:
    with Session(room.services.db.engine) as session:
        return session.exec(select(Incident).where(Incident.number == number)).one()


def reminders(room: Warroom, incident_id: int | None) -> dict[str, Reminder]:
    with Session(room.services.db.engine) as session:
        rows = session.exec(select(Reminder).where(Reminder.incident_id == incident_id)).all()
        return {r.kind: r for r in rows}


def current_roles(room: Warroom, incident_id: int | None) -> dict[str, str]:
    with Session(room.services.db.engine) as session:
        rows = session.exec(
            select(RoleAssignment)
            .where(RoleAssignment.incident_id == incident_id)
            .where(col(RoleAssignment.relieved_at).is_(None))
        ).all()
        return {r.role: r.user_id for r in rows}


def alert_events(room: Warroom, number: int) -> list[TimelineEvent]:
    return [e for e in room.timeline(number) if e.kind == "alert"]


def count(room: Warroom, table: type[Any]) -> int:
    with Session(room.services.db.engine) as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


def nothing_stored(room: Warroom) -> None:
    assert count(room, Incident) == 0
    assert count(room, TimelineEvent) == 0
    assert count(room, Reminder) == 0
    assert count(room, OutboxMessage) == 0
    assert not room.slack.calls_to("conversations.create")
    assert not room.slack.calls_to("chat.postMessage")


def alert_posts(slack: FakeSlack, channel_id: str | None) -> list[str]:
    assert channel_id is not None
    return [m["text"] for m in slack.messages.get(channel_id, []) if "Alertmanager:" in m["text"]]


def war_room_id(room: Warroom, number: int = 1) -> str:
    channel_id = incident(room, number).channel_id
    assert channel_id, f"INC-{number} has no war room"
    return channel_id


# -- a firing group declares an incident -------------------------------------------------------


async def test_a_firing_group_declares_an_incident_with_its_war_room(
    make_warroom: WarroomFactory,
) -> None:
    room = await alert_room(make_warroom)
    result = await fire(room, notification())
    assert result == {"incident": "INC-1", "declared": True, "recorded": True}

    [row] = incidents(room)
    assert row.title == "Checkout error rate above 5%"
    assert row.severity == "sev1"
    assert row.source == "alert"
    assert row.status == "triage"  # a person decides it is one: `/incident accept`
    assert row.acknowledged_at is None
    assert row.declared_by_id is None and row.declared_by_name == "Alertmanager"
    assert current_roles(room, row.id) == {}, "nobody is commander until someone acknowledges"
    assert room.kinds(1) == ["declared", "alert"]
    declared, event = room.timeline(1)
    assert declared.data["source"] == "alert"
    assert event.text == "firing: Checkout error rate above 5%"
    assert event.data["group_key"] == GROUP
    assert event.data["alerts"][0]["labels"]["instance"] == "checkout-1:8080"
    assert event.data["alerts"][0]["generator_url"] == GENERATOR

    # The war room: a channel named after the incident, header pinned, announced.
    slack = room.slack
    assert len(slack.calls_to("conversations.create")) == 1
    channel = slack.channel_named("inc-1-checkout-error-rate-above-5")
    assert row.channel_id == channel.id
    assert channel.topic.startswith("INC-1 SEV1 | Triage")
    assert "Commander" not in channel.topic
    assert len(channel.pins) == 1
    announce = slack.messages["C0ANNOUNCE"][0]["text"]
    assert "*INC-1* (SEV1) declared by Alertmanager" in announce
    assert f"<#{channel.id}>" in announce

    # The alerts themselves: labels, annotations and a link to where they came from.
    [text] = alert_posts(slack, channel.id)
    assert text.startswith(":fire: *Alertmanager: 1 alert firing* (warroom)")
    assert "• *HighErrorRate* [firing]" in text
    assert "labels: `instance=checkout-1:8080, job=checkout, severity=critical`" in text
    assert "summary: Checkout error rate above 5%" in text
    assert "description: checkout-1:8080 serves 7% errors" in text
    assert f"<{GENERATOR.replace('&', '&amp;')}|source>" in text

    # The acknowledgement clock runs (SEV1 must be acknowledged within 15 minutes).
    clocks = reminders(room, row.id)
    assert clocks["ack"].active
    assert clocks["ack"].due_at == row.declared_at + timedelta(minutes=15)
    assert "update" not in clocks, "in triage nobody owes customers an update yet"


@pytest.mark.parametrize(
    ("label", "config", "severity"),
    [
        ("critical", None, "sev1"),
        ("page", None, "sev1"),
        ("error", None, "sev2"),
        ("warning", None, "sev3"),
        ("info", None, "sev4"),
        ("WARNING", None, "sev3"),
        ("whatever", None, "sev3"),
        ("whatever", {"default_severity": "sev2"}, "sev2"),
        (None, None, "sev3"),
        ("P1", {"alert_severities": {"P1": "sev1"}}, "sev1"),
        ("warning", {"alert_severities": {"warning": "sev2"}}, "sev2"),
    ],
)
async def test_severity_comes_from_the_severity_label(
    make_warroom: WarroomFactory, label: str | None, config: dict[str, Any] | None, severity: str
) -> None:
    room = await alert_room(make_warroom, config)
    reply = await post(room, notification(alert(severity=label)))
    assert reply.status == 200, reply.text
    await room.settle()
    assert [i.severity for i in incidents(room)] == [severity]


async def test_the_worst_severity_in_the_group_wins(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    body = notification(
        alert(severity="warning", instance="a:1"), alert(severity="critical", instance="b:1")
    )
    await fire(room, body)
    assert incident(room).severity == "sev1"


async def test_without_a_summary_the_title_is_the_alert_name(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification(alert("DiskWillFillIn4Hours", summary=None, severity="warning")))
    row = incident(room)
    assert row.title == "DiskWillFillIn4Hours"
    assert row.severity == "sev3"
    room.slack.channel_named("inc-1-diskwillfillin4hours")


async def test_without_an_ack_window_there_is_no_ack_clock(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification(alert(severity="warning")))
    row = incident(room)
    assert row.acknowledged_at is None
    assert "ack" not in reminders(room, row.id)  # SEV3 has no acknowledgement window


async def test_the_ack_window_comes_from_the_config(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom, {"severities": {"sev3": {"ack_within": "2h"}}})
    await fire(room, notification(alert(severity="warning")))
    row = incident(room)
    assert reminders(room, row.id)["ack"].due_at == row.declared_at + timedelta(hours=2)


# -- the same group again -------------------------------------------------------------------------


async def test_the_group_firing_again_joins_the_open_incident(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification())
    channel_id = war_room_id(room)

    more = notification(alert(instance="checkout-1:8080"), alert(instance="checkout-2:8080"))
    result = await fire(room, more)
    assert result == {"incident": "INC-1", "declared": False, "recorded": True}

    assert len(incidents(room)) == 1
    assert len(room.slack.calls_to("conversations.create")) == 1
    assert room.kinds(1) == ["declared", "alert", "alert"]
    second = alert_events(room, 1)[1]
    assert [a["labels"]["instance"] for a in second.data["alerts"]] == [
        "checkout-1:8080",
        "checkout-2:8080",
    ]
    _first_post, second_post = alert_posts(room.slack, channel_id)
    assert second_post.startswith(":fire: *Alertmanager: 2 alerts firing*")
    assert "instance=checkout-2:8080" in second_post
    # Nothing else happened: no second announcement, the ack clock unchanged.
    assert len(room.slack.messages["C0ANNOUNCE"]) == 1
    assert incident(room).acknowledged_at is None


async def test_another_group_declares_another_incident(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification())
    other = notification(
        alert("QueueBacklog", summary="Orders queue backing up"), group_key='{}:{alertname="Q"}'
    )
    result = await fire(room, other)
    assert result == {"incident": "INC-2", "declared": True, "recorded": True}
    assert [i.title for i in incidents(room)] == [
        "Checkout error rate above 5%",
        "Orders queue backing up",
    ]


async def test_a_retried_notification_is_recorded_once(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    body = json.dumps(notification()).encode()
    assert (await fire(room, body))["declared"] is True
    channel_id = war_room_id(room)

    again = await fire(room, body)  # Alertmanager retries when it did not see our 200
    assert again == {"incident": "INC-1", "declared": False, "recorded": False}
    assert room.kinds(1) == ["declared", "alert"]
    assert len(alert_posts(room.slack, channel_id)) == 1
    assert len(incidents(room)) == 1


async def test_identical_notifications_at_once_declare_one_incident(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await alert_room(make_warroom, database_url=database_url)
    body = json.dumps(notification()).encode()
    replies = await asyncio.gather(*(post(room, body) for _ in range(3)))
    assert [r.status for r in replies] == [200, 200, 200], [r.text for r in replies]
    await room.settle()
    assert sorted(r.json["declared"] for r in replies) == [False, False, True]
    assert len(incidents(room)) == 1
    assert room.kinds(1) == ["declared", "alert"]
    assert len(room.slack.calls_to("conversations.create")) == 1


async def test_a_new_group_firing_twice_at_once_declares_one_incident(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await alert_room(make_warroom, database_url=database_url)
    bodies = [notification(alert(instance=f"checkout-{n}:8080")) for n in range(4)]
    replies = await asyncio.gather(*(post(room, body) for body in bodies))
    assert [r.status for r in replies] == [200] * 4, [r.text for r in replies]
    await room.settle()
    assert [r.json["incident"] for r in replies] == ["INC-1"] * 4
    assert sorted(r.json["declared"] for r in replies) == [False, False, False, True]
    assert len(incidents(room)) == 1
    assert room.kinds(1) == ["declared"] + ["alert"] * 4
    assert len(alert_posts(room.slack, war_room_id(room))) == 4


async def test_resolved_is_noted_and_resolves_nothing(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification())
    channel_id = war_room_id(room)

    result = await fire(room, notification(alert(status="resolved")))
    assert result == {"incident": "INC-1", "declared": False, "recorded": True}

    row = incident(room)
    assert row.status == "triage" and row.resolved_at is None
    assert room.kinds(1) == ["declared", "alert", "alert"]
    resolved = alert_events(room, 1)[-1]
    assert resolved.text == "resolved: Checkout error rate above 5%"
    assert resolved.data["status"] == "resolved"
    note = alert_posts(room.slack, channel_id)[-1]
    assert note.startswith(":white_check_mark: *Alertmanager: 1 alert resolved*")
    assert "the incident stays open until someone resolves it with `/incident resolve`" in note
    assert reminders(room, row.id)["ack"].active, "Alertmanager resolving acknowledges nothing"


async def test_resolved_with_nothing_declared_declares_nothing(
    make_warroom: WarroomFactory,
) -> None:
    room = await alert_room(make_warroom)
    result = await fire(room, notification(alert(status="resolved")))
    assert result == {"incident": None, "declared": False, "recorded": False}
    nothing_stored(room)


async def test_after_resolution_the_group_declares_a_new_incident(
    make_warroom: WarroomFactory, database_url: str
) -> None:
    room = await alert_room(make_warroom, database_url=database_url)
    body = json.dumps(notification()).encode()
    await fire(room, body)
    first_channel = war_room_id(room)
    reply = await room.command("accept", user="U0ADMIN", channel=first_channel)
    assert reply.status == 200, reply.text
    reply = await room.command("resolve fixed by rollback", user="U0ADMIN", channel=first_channel)
    assert reply.status == 200, reply.text
    await room.settle()
    assert incident(room, 1).status == "resolved"

    # Alertmanager repeats a group that still fires with the very same body.
    result = await fire(room, body)
    assert result == {"incident": "INC-2", "declared": True, "recorded": True}
    first, second = incidents(room)
    assert first.status == "resolved" and second.status == "triage"
    assert second.title == first.title and second.acknowledged_at is None
    assert second.channel_id and second.channel_id != first_channel
    assert room.kinds(2) == ["declared", "alert"]
    assert len(alert_posts(room.slack, second.channel_id)) == 1
    assert reminders(room, second.id)["ack"].active
    assert room.kinds(1).count("alert") == 1

    # And from now on the group's notifications go to the new incident.
    result = await fire(room, notification(alert(instance="checkout-3:8080")))
    assert result == {"incident": "INC-2", "declared": False, "recorded": True}


async def test_a_notification_during_the_war_room_opening_is_still_posted(
    make_warroom: WarroomFactory,
) -> None:
    room = await alert_room(make_warroom)
    room.slack.latency = 0.05  # Slack is slow: the channel is not there yet
    first = await post(room, notification())
    assert first.json["declared"] is True
    second = await post(room, notification(alert(instance="checkout-9:8080")))
    assert second.json == {"incident": "INC-1", "declared": False, "recorded": True}
    await room.settle()
    posted = alert_posts(room.slack, war_room_id(room))
    assert len(posted) == 2
    assert any("instance=checkout-9:8080" in text for text in posted)


# -- acknowledging ----------------------------------------------------------------------------


async def test_ack_in_the_war_room_acknowledges_and_takes_command(
    make_warroom: WarroomFactory,
) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification())
    channel_id = war_room_id(room)

    reply = await room.command("ack", user="U0BO", channel=channel_id)
    assert reply.status == 200, reply.text
    assert reply.message == "INC-1 acknowledged. You are its commander."
    await room.settle()

    row = incident(room)
    assert row.acknowledged_at is not None
    assert current_roles(room, row.id) == {"commander": "U0BO"}
    assert not reminders(room, row.id)["ack"].active
    assert room.kinds(1)[-2:] == ["role_assigned", "command"] or "role_assigned" in room.kinds(1)
    assert "Commander: bo" in room.slack.channel_named(
        "inc-1-checkout-error-rate-above-5"
    ).topic or room.slack.calls_to("conversations.setTopic")

    again = await room.command("ack", user="U0CY", channel=channel_id)
    assert again.message == "INC-1 is already acknowledged."
    assert current_roles(room, row.id) == {"commander": "U0BO"}


async def test_taking_command_acknowledges(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    await fire(room, notification())
    channel_id = war_room_id(room)
    reply = await room.command("role commander <@U0CY|cy>", user="U0ADMIN", channel=channel_id)
    assert reply.status == 200, reply.text
    await room.settle()
    row = incident(room)
    assert row.acknowledged_at is not None
    assert current_roles(room, row.id) == {"commander": "U0CY"}
    assert not reminders(room, row.id)["ack"].active


@pytest.mark.parametrize(
    "text",
    ["status identified", "sev 2", "role comms <@U0CY|cy>", "resolve", "update all fine"],
)
async def test_with_nobody_in_command_only_an_admin_manages(
    make_warroom: WarroomFactory, text: str
) -> None:
    """An alert's incident has no commander until someone acks or takes command: meanwhile
    nobody but an admin may manage it (anyone may `ack`)."""
    room = await alert_room(make_warroom)
    await fire(room, notification())
    channel_id = war_room_id(room)
    before = incident(room)

    reply = await room.command(text, user="U0BO", channel=channel_id)
    assert reply.status == 200, reply.text
    assert "Only the commander (nobody)" in reply.message and "or an admin" in reply.message
    await room.settle()
    after = incident(room)
    assert (after.status, after.severity, after.resolved_at) == (
        before.status,
        before.severity,
        before.resolved_at,
    )
    assert current_roles(room, after.id) == {}
    assert room.kinds(1)[-1] == "command_refused"

    allowed = await room.command(text, user="U0ADMIN", channel=channel_id)
    assert allowed.status == 200 and "Only the commander" not in allowed.message
    assert room.kinds(1)[-1] != "command_refused"


# -- refused requests store nothing ---------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer t\u00f6ken"},
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme", "empty", "non-ascii"],
)
async def test_a_bad_token_is_refused(
    make_warroom: WarroomFactory, headers: dict[str, str]
) -> None:
    room = await alert_room(make_warroom)
    reply = await post(room, notification(), token=None, headers=headers)
    assert reply.status == 401, reply.text
    assert "Authorization: Bearer" in reply.text
    await room.settle()
    nothing_stored(room)


async def test_with_no_token_set_the_webhook_is_off(make_warroom: WarroomFactory) -> None:
    room = await make_warroom()
    reply = await post(room, notification())
    assert reply.status == 403
    assert "WARROOM_ALERT_TOKEN is not set" in reply.text
    await room.settle()
    nothing_stored(room)


def _without(key: str) -> dict[str, Any]:
    body = notification()
    del body[key]
    return body


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "body is not JSON"),
        (b"{not json", "body is not JSON"),
        (b"\xff\xfe{}", "body is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),
        (b"[]", "not an Alertmanager v4 notification: body"),
        (b'"firing"', "not an Alertmanager v4 notification: body"),
        (notification(version="3"), "version"),
        (notification(version=4), "version"),
        (_without("version"), "version"),
        (_without("alerts"), "alerts"),
        (notification(alerts=[]), "alerts"),
        (_without("groupKey"), "groupKey"),
        (notification(groupKey=""), "groupKey"),
        (notification(status="pending"), "status"),
        (notification(alerts=[{"labels": {"alertname": "X"}}]), "alerts.0.status"),
        (notification(alerts=[{**alert(), "labels": {"severity": 1}}]), "alerts.0.labels"),
    ],
    ids=[
        "empty",
        "broken",
        "not-utf8",
        "deeply-nested",
        "a-list",
        "a-string",
        "version-3",
        "version-number",
        "no-version",
        "no-alerts",
        "empty-alerts",
        "no-group-key",
        "empty-group-key",
        "bad-status",
        "alert-without-status",
        "label-not-text",
    ],
)
async def test_a_malformed_notification_is_refused_with_the_reason(
    make_warroom: WarroomFactory, body: dict[str, Any] | bytes, reason: str
) -> None:
    room = await alert_room(make_warroom)
    reply = await post(room, body)
    assert reply.status == 400, reply.text
    assert reason in reply.text
    await room.settle()
    nothing_stored(room)


async def test_an_oversized_body_is_refused(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    body = notification(alert(annotations={"runbook": "x" * MAX_BODY}))
    reply = await post(room, body)
    assert reply.status == 400, reply.text
    assert "body too large" in reply.text and str(MAX_BODY) in reply.text
    await room.settle()
    nothing_stored(room)


async def test_an_oversized_body_without_a_length_is_refused(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    data = json.dumps(notification(alert(annotations={"runbook": "x" * MAX_BODY}))).encode()

    async def chunks() -> Any:
        for start in range(0, len(data), 64 * 1024):
            yield data[start : start + 64 * 1024]

    url = room.server.make_url(ALERT_PATH)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with room.http.post(url, data=chunks(), headers=headers) as response:
        assert response.status == 400
        assert "body too large" in await response.text()
    await room.settle()
    nothing_stored(room)


async def test_a_large_notification_under_the_limit_is_read_whole(
    make_warroom: WarroomFactory,
) -> None:
    """Bodies arrive in pieces: all of one, not just its first piece, is the notification."""
    room = await alert_room(make_warroom)
    many = [
        alert(instance=f"checkout-{n}:8080", annotations={"runbook": "r" * 2000})
        for n in range(300)
    ]
    body = json.dumps(notification(*many)).encode()
    assert 512 * 1024 < len(body) < MAX_BODY
    result = await fire(room, body)
    assert result["declared"] is True
    [event] = alert_events(room, 1)
    assert len(event.data["alerts"]) == 300
    [text] = alert_posts(room.slack, war_room_id(room))
    assert "…and 290 more." in text


# -- mentions never fire ----------------------------------------------------------------------


async def test_mentions_in_alerts_are_never_posted_live(make_warroom: WarroomFactory) -> None:
    room = await alert_room(make_warroom)
    sneaky = alert(
        "Wake<!everyone>",
        summary="<!channel> checkout down @here",
        instance="<!here|here>",
        annotations={
            "description": "ping @channel and <!subteam^S0ONCALL|@oncall> and <@U0ANA>",
            "runbook": "@everyone <https://evil.example|click>",
        },
        generator="http://prom.example/graph?x=<!channel>|y",
    )
    await fire(room, notification(sneaky))
    channel_id = war_room_id(room)
    await fire(room, notification(sneaky, alert(instance="@here")))  # a later one, too
    await fire(room, notification(alert(status="resolved", summary="@here all clear")))

    texts = [m["text"] for m in room.slack.messages.get(channel_id, [])]
    assert len(alert_posts(room.slack, channel_id)) == 3
    # Everything warroom sent Slack: messages, blocks, topics, announcements.
    for call in room.slack.calls:
        sent = json.dumps(call.args, ensure_ascii=False)
        assert not LIVE_MENTION.search(sent), (call.method, sent)
        assert "<@U0ANA>" not in sent and "<!subteam" not in sent
        assert "<https://evil.example" not in sent
    assert any("&lt;!channel&gt; checkout down @\u2060here" in t for t in texts)
    # The timeline keeps what Alertmanager sent, as it was.
    first = alert_events(room, 1)[0]
    assert first.data["alerts"][0]["annotations"]["summary"] == "<!channel> checkout down @here"


# -- the real Alertmanager --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def alertmanager_binary() -> str:
    """Debian's Alertmanager; `WARROOM_TEST_ALERTMANAGER` names another binary. Missing, it
    fails the suite in CI (`CI=true`) and skips, saying why, elsewhere."""
    wanted = os.environ.get("WARROOM_TEST_ALERTMANAGER")
    path = (
        wanted
        if wanted
        else shutil.which("prometheus-alertmanager")
        or (ALERTMANAGER if os.access(ALERTMANAGER, os.X_OK) else None)
    )
    if path is None or not os.access(path, os.X_OK):
        reason = (
            f"Alertmanager ({path or 'prometheus-alertmanager'}) is not installed, so the "
            "webhook is not tested against the real thing: apt-get install prometheus-alertmanager"
        )
        missing(reason)
    return path


def _alertmanager_config(webhook_url: str) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "warroom",
            "group_by": ["alertname"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "warroom",
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": "Bearer", "credentials": TOKEN}},
                    }
                ],
            }
        ],
    }


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"


async def _wait_until(predicate: Any, *, timeout: float, what: str, log_path: Path) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"{what} within {timeout:.0f}s; Alertmanager said:\n{_log_tail(log_path)}"
            )
        await asyncio.sleep(0.1)


async def test_the_real_alertmanager_declares_an_incident(
    make_warroom: WarroomFactory, alertmanager_binary: str, tmp_path: Path
) -> None:
    room = await alert_room(make_warroom)
    config_file = tmp_path / "alertmanager.yml"
    config_file.write_text(
        yaml.safe_dump(_alertmanager_config(str(room.server.make_url(ALERT_PATH))))
    )
    storage = tmp_path / "alertmanager-data"
    storage.mkdir()
    log_path = tmp_path / "alertmanager.log"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            alertmanager_binary,
            f"--config.file={config_file}",
            f"--storage.path={storage}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one instance, nothing else on the host
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            await _run_against_alertmanager(room, http, base, process, log_path)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _run_against_alertmanager(
    room: Warroom,
    http: aiohttp.ClientSession,
    base: str,
    process: asyncio.subprocess.Process,
    log_path: Path,
) -> None:
    async def ready() -> bool:
        if process.returncode is not None:
            raise AssertionError(
                f"Alertmanager exited with {process.returncode}:\n{_log_tail(log_path)}"
            )
        try:
            async with http.get(f"{base}/-/ready") as response:
                return response.status == 200
        except aiohttp.ClientError:
            return False

    await _wait_until(ready, timeout=15, what="Alertmanager was not ready", log_path=log_path)

    sent: dict[str, Any] = {
        "labels": {"alertname": "CheckoutDown", "severity": "critical", "job": "checkout"},
        "annotations": {"summary": "Checkout is down in eu-west-1"},
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up%3D%3D0",
        "startsAt": _rfc3339(datetime.now(UTC) - timedelta(seconds=5)),
    }
    async with http.post(f"{base}/api/v2/alerts", json=[sent]) as response:
        assert response.status == 200, await response.text()

    async def declared() -> bool:
        return bool(incidents(room)) and bool(alert_events(room, 1))

    await _wait_until(
        declared, timeout=20, what="Alertmanager's alert declared no incident", log_path=log_path
    )
    # The rows are committed before the war room's opening is handed to the background tasks:
    # wait for the room's first post, then for what is still under way.
    name = "inc-1-checkout-is-down-in-eu-west-1"
    await room.slack.wait_for(
        lambda: (
            any(c.name == name for c in room.slack.channels.values())
            and bool(alert_posts(room.slack, room.slack.channel_named(name).id))
        ),
        timeout=20,
    )
    await room.settle()
    [row] = incidents(room)
    assert row.title == "Checkout is down in eu-west-1"
    assert row.severity == "sev1"
    assert row.source == "alert" and row.acknowledged_at is None
    assert current_roles(room, row.id) == {}
    assert reminders(room, row.id)["ack"].active
    channel = room.slack.channel_named(name)
    assert row.channel_id == channel.id
    [text] = alert_posts(room.slack, channel.id)
    assert "• *CheckoutDown* [firing]" in text
    assert "<http://prometheus.example:9090/graph?g0.expr=up%3D%3D0|source>" in text
    event = alert_events(room, 1)[0]
    assert event.data["group_key"] == '{}:{alertname="CheckoutDown"}'
    assert event.data["receiver"] == "warroom"

    # Resolved at Alertmanager: noted (send_resolved), and the incident stays open.
    sent["endsAt"] = _rfc3339(datetime.now(UTC))
    async with http.post(f"{base}/api/v2/alerts", json=[sent]) as response:
        assert response.status == 200, await response.text()

    async def noted() -> bool:
        return any(e.data.get("status") == "resolved" for e in alert_events(room, 1))

    await _wait_until(
        noted, timeout=20, what="Alertmanager's resolution never arrived", log_path=log_path
    )
    await room.settle()
    assert len(incidents(room)) == 1
    assert incident(room).status == "triage"
    assert alert_posts(room.slack, channel.id)[-1].startswith(":white_check_mark:")

    # Triaged by a person: not an incident after all. Its clocks stop; it stays on record.
    reply = await room.command("decline probe misfired", user="U0BO", channel=channel.id)
    assert reply.status == 200 and reply.message.startswith("INC-1 is declined"), reply.text
    await room.settle()
    declined = incident(room)
    assert declined.status == "declined" and declined.resolved_at is None
    assert not any(r.active for r in reminders(room, declined.id).values())
    assert [e.data for e in room.timeline(1) if e.kind == "declined"] == [
        {"reason": "probe misfired"}
    ]


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")
