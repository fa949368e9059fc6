"""A flood of declarations (issue 12.6): at most `declare_limit` incidents a person declares in
any window, counted in the database on the services' clock, through the real server; admins and
alerts are not limited. Refusals are ephemeral, change nothing, and are logged and counted."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta

import pytest
from sqlmodel import Session, col, select

from bot.ids import BlockId, CallbackId
from storage.models import Incident
from tests.support.home import Clock, ClockedFactory
from tests.support.interactions import Interactions
from tests.support.warroom import Reply, Warroom, WarroomFactory

ALERT_TOKEN = "alert-token-limit"
REFUSAL = (
    "You have declared 5 incidents in the last 10 minutes; that is the limit. "
    "Try again in {wait}, or ask an admin to declare it."
)


def numbers(room: Warroom) -> list[int]:
    with Session(room.services.db.engine) as session:
        return list(session.exec(select(Incident.number).order_by(col(Incident.number))).all())


def refused_count(room: Warroom) -> float:
    value = room.services.metrics.registry.get_sample_value(
        "warroom_commands_refused_total", {"reason": "declare_limit"}
    )
    return value or 0.0


def ephemeral(reply: Reply) -> str:
    assert reply.status == 200, reply.text
    assert reply.json["response_type"] == "ephemeral", reply.text
    return reply.message


async def declare_five(room: Warroom, clock: Clock, user: str) -> None:
    """Five declarations by `user`, a minute apart (the first one ten minutes ago, then)."""
    for n in range(5):
        assert "Declared" in ephemeral(await room.command(f"declare Outage {n}", user=user))
        clock.advance(timedelta(minutes=1))


async def alert_declares(room: Warroom, name: str) -> Reply:
    body = {
        "receiver": "warroom",
        "status": "firing",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": name, "severity": "warning"},
                "annotations": {"summary": f"{name} fires"},
                "startsAt": "2024-05-01T10:00:00.000Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example:9090/graph",
                "fingerprint": name,
            }
        ],
        "groupLabels": {"alertname": name},
        "commonLabels": {"alertname": name, "severity": "warning"},
        "commonAnnotations": {"summary": f"{name} fires"},
        "externalURL": "http://alertmanager.example:9093",
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
    }
    url = room.server.make_url("/hooks/alertmanager")
    headers = {"Authorization": f"Bearer {ALERT_TOKEN}", "Content-Type": "application/json"}
    async with room.http.post(url, data=json.dumps(body), headers=headers) as response:
        return Reply(response.status, await response.text())


async def test_a_sixth_declaration_in_ten_minutes_is_refused_and_changes_nothing(
    make_clocked_warroom: ClockedFactory,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, None, database_url)
    await declare_five(room, clock, "U0BO")
    await room.settle()
    calls = len(room.slack.calls)

    with caplog.at_level(logging.INFO):
        reply = await room.command("declare One too many sev1", user="U0BO")
    # Five minutes on from the first of the five: it leaves the window in five more.
    assert ephemeral(reply) == REFUSAL.format(wait="5 minutes")
    await room.settle()
    assert numbers(room) == [1, 2, 3, 4, 5]
    assert room.slack.calls[calls:] == [], "a refused declaration asked Slack for something"
    # Logged as a refused command (who, not what they typed), and counted for /metrics.
    [line] = [r.getMessage() for r in caplog.records if "command_refused" in r.getMessage()]
    assert "U0BO" in line and "declare_limit 5/10m" in line and "One too many" not in line
    assert refused_count(room) == 1

    # Someone else may declare meanwhile; the refused one took no number.
    assert "*INC-6*" in ephemeral(await room.command("declare Search down", user="U0CY"))
    # Once the first of the five is ten minutes old, the limit lets one more through.
    clock.advance(timedelta(minutes=5))
    assert "*INC-7*" in ephemeral(await room.command("declare Back again", user="U0BO"))
    assert "Try again in a minute" in ephemeral(await room.command("declare Again", user="U0BO"))
    assert refused_count(room) == 2
    await room.settle()
    assert numbers(room) == [1, 2, 3, 4, 5, 6, 7]


async def test_admins_and_alerts_are_not_limited(make_warroom: WarroomFactory) -> None:
    clock = Clock()
    room = await make_warroom(env={"warroom_alert_token": ALERT_TOKEN}, clock=clock)
    await declare_five(room, clock, "U0ADMIN")
    assert "*INC-6*" in ephemeral(await room.command("declare Sixth", user="U0ADMIN"))
    await declare_five(room, clock, "U0BO")
    assert "that is the limit" in ephemeral(await room.command("declare Twelfth", user="U0BO"))
    # Alertmanager is not a person: its incidents are neither limited nor count for anyone.
    for n in range(6):
        reply = await alert_declares(room, f"Alert{n}")
        assert reply.status == 200 and reply.json["declared"], reply.text
    assert refused_count(room) == 1
    await room.settle()
    assert numbers(room) == list(range(1, 18))


async def test_the_limit_is_the_config_files(make_clocked_warroom: ClockedFactory) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock, {"declare_limit": "2/1h"})
    for n in range(2):
        assert "Declared" in ephemeral(await room.command(f"declare Outage {n}", user="U0BO"))
        clock.advance(timedelta(minutes=20))
    assert ephemeral(await room.command("declare Third", user="U0BO")) == (
        "You have declared 2 incidents in the last 1 hour; that is the limit. "
        "Try again in 20 minutes, or ask an admin to declare it."
    )
    await room.settle()
    assert numbers(room) == [1, 2]


async def test_the_declare_form_is_refused_on_its_field(
    make_clocked_warroom: ClockedFactory,
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(clock)
    ui = Interactions(room)
    await declare_five(room, clock, "U0BO")
    await room.settle()
    await room.command("declare", user="U0BO")
    reply = await ui.submit(
        ui.opened(CallbackId.DECLARE_MODAL), {BlockId.TITLE: "From the form"}, user="U0BO"
    )
    assert reply.status == 200, reply.text
    assert reply.json["response_action"] == "errors", reply.text
    assert reply.json["errors"] == {BlockId.TITLE: REFUSAL.format(wait="5 minutes")}
    assert numbers(room) == [1, 2, 3, 4, 5]
    assert refused_count(room) == 1


async def test_declarations_sent_at_once_are_counted_one_after_the_other(
    make_clocked_warroom: ClockedFactory, database_url: str
) -> None:
    # Eight at once (on PostgreSQL, on eight database threads, as on several replicas): each
    # is counted after the ones committed before it, so five are declared, not eight.
    clock = Clock()
    room = await make_clocked_warroom(clock, None, database_url)
    replies = await asyncio.gather(
        *(room.command(f"declare Outage {n}", user="U0BO") for n in range(8))
    )
    texts = [ephemeral(reply) for reply in replies]
    assert sum("Declared" in t for t in texts) == 5, texts
    assert sum("that is the limit" in t for t in texts) == 3, texts
    await room.settle()
    assert numbers(room) == [1, 2, 3, 4, 5]
