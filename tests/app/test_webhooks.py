"""Webhooks out end to end: incidents played through the real server and fake Slack, and a
local receiver that fails twice first. Each subscribed event arrives once (by delivery id),
signed, in order; unsubscribed kinds and private incidents stay home unless configured."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import Session, select

from bot.webhooks.signing import is_valid
from storage.models import WebhookDelivery
from tests.support.home import Clock, ClockedFactory
from tests.support.warroom import Warroom

SECRET = "s3cret-for-tests"
PRIVATE_SECRET = "another-secret"
SUBSCRIBED = ["declared", "status_changed", "customer_update", "message", "resolved"]


@dataclass
class Received:
    """One request the receiver saw, and how it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A webhook receiver on a free local port: its first `failures` requests get a 500."""

    failures: int = 2
    failure_status: int = 500
    seen: list[Received] = field(default_factory=list)
    server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        status = self.failure_status if self.failures > 0 else 200
        self.failures -= 1
        self.seen.append(Received(request.path, dict(request.headers), body, status))
        return web.Response(status=status)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    def delivered(self, path: str) -> list[Received]:
        """Accepted deliveries to `path`, deduplicated by delivery id, in arrival order."""
        kept: dict[str, Received] = {}
        for received in self.seen:
            if received.path == path and received.answered == 200:
                kept.setdefault(received.headers["X-Warroom-Delivery"], received)
        return list(kept.values())


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", receiver.handle)
    receiver.server = TestServer(app, host="127.0.0.1")
    await receiver.server.start_server()
    yield receiver
    await receiver.server.close()


def owed(room: Warroom) -> list[WebhookDelivery]:
    with Session(room.services.db.engine) as session:
        return list(
            session.exec(select(WebhookDelivery).where(WebhookDelivery.finished_at == None))  # noqa: E711
        )


async def deliver_all(room: Warroom, clock: Clock) -> None:
    """Run the sender, moving the clock past each backoff, until nothing is owed."""
    for _ in range(40):
        await room.services.webhooks.flush()
        if not owed(room):
            return
        clock.advance(timedelta(hours=1))
    raise AssertionError("deliveries still owed after 40 flushes")


async def metrics_text(room: Warroom) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(room.server.make_url("/metrics")) as response,
    ):
        return await response.text()


def assert_signed(received: Received, secret: str) -> None:
    timestamp = int(received.headers["X-Warroom-Timestamp"])
    signature = received.headers["X-Warroom-Signature"]
    assert signature.startswith("sha256=")
    assert is_valid(secret, timestamp, received.body, signature)
    assert not is_valid("wrong", timestamp, received.body, signature)


async def test_each_subscribed_event_arrives_once_signed_and_in_order(
    make_clocked_warroom: ClockedFactory, receiver: Receiver, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(
        clock,
        {
            "webhooks": [
                {"url": receiver.url("/public"), "secret": SECRET, "events": SUBSCRIBED},
                {
                    "url": receiver.url("/private"),
                    "secret": PRIVATE_SECRET,
                    "events": ["declared"],
                    "include_private": True,
                },
            ]
        },
        database_url,
    )
    channel = (await room.declare("Checkout API returning 500s sev1")).channel_id or ""
    for command in ("status identified", "update Payments are back"):
        reply = await room.command(command, channel=channel)
        assert reply.status == 200, reply.text
    # A person's message takes the timeline's batch path, not a command's unit of work.
    said = {"type": "message", "channel": channel, "user": "U0BO", "text": "Rolling back now"}
    reply = await room.event({**said, "ts": "1700000300.000100"})
    assert reply.status == 200, reply.text
    reply = await room.command("status resolved", channel=channel)
    assert reply.status == 200, reply.text
    await room.settle()
    await room.declare("--private Suspicious logins sev2")

    await deliver_all(room, clock)

    public = receiver.delivered("/public")
    assert [(r.payload["incident"]["id"], r.payload["event"]) for r in public] == [
        ("INC-1", "declared"),
        ("INC-1", "status_changed"),
        ("INC-1", "customer_update"),
        ("INC-1", "message"),
        ("INC-1", "status_changed"),
        ("INC-1", "resolved"),
    ]  # role_assigned and commands are not subscribed; INC-2 is private
    failed = [r for r in receiver.seen if r.answered == 500]
    assert len(failed) == 2
    delivered_ids = {r.headers["X-Warroom-Delivery"] for r in receiver.seen if r.answered == 200}
    # Retried under the same id, and each id accepted once.
    assert {r.headers["X-Warroom-Delivery"] for r in failed} <= delivered_ids
    accepted = [r for r in receiver.seen if r.answered == 200]
    assert len(accepted) == len(delivered_ids)
    for received in public:
        assert_signed(received, SECRET)
        payload = received.payload
        assert received.headers["X-Warroom-Event"] == payload["event"] == payload["entry"]["kind"]
        assert received.headers["X-Warroom-Delivery"] == payload["delivery"]
        assert payload["incident"]["number"] == 1 and payload["incident"]["private"] is False
    assert public[1].payload["incident"]["status"] == "identified"
    assert public[1].payload["entry"]["data"]["to"] == "identified"
    assert public[2].payload["entry"]["text"] == "Payments are back"
    assert public[3].payload["entry"]["text"] == "Rolling back now"
    assert public[3].payload["entry"]["actor"]["id"] == "U0BO"
    assert public[5].payload["incident"]["status"] == "resolved"

    private = receiver.delivered("/private")
    # In order per incident; one incident's retries do not hold up another's deliveries.
    private.sort(key=lambda r: r.payload["incident"]["number"])
    assert [(r.payload["incident"]["id"], r.payload["event"]) for r in private] == [
        ("INC-1", "declared"),
        ("INC-2", "declared"),
    ]
    assert private[1].payload["incident"]["private"] is True
    for received in private:
        assert_signed(received, PRIVATE_SECRET)

    text = await metrics_text(room)
    assert 'warroom_webhook_deliveries{outcome="delivered"} 8.0' in text
    assert "warroom_webhook_deliveries_given_up 0.0" in text


async def test_a_client_error_is_given_up_at_once_and_a_dead_receiver_after_a_day(
    make_clocked_warroom: ClockedFactory, receiver: Receiver, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(
        clock,
        {"webhooks": [{"url": receiver.url("/hook"), "secret": SECRET, "events": ["declared"]}]},
        database_url,
    )
    receiver.failures, receiver.failure_status = 1000, 404
    await room.declare("Checkout API returning 500s sev1")
    await room.services.webhooks.flush()
    assert len(receiver.seen) == 1 and not owed(room)  # a 404 is not retried

    receiver.failure_status = 503
    await room.declare("Search is slow sev2")
    started = clock()
    await deliver_all(room, clock)  # an hour between flushes, once backoff reaches it
    tries = [r for r in receiver.seen if r.answered == 503]
    assert len(tries) > 2 and len({r.headers["X-Warroom-Delivery"] for r in tries}) == 1
    assert clock() - started >= timedelta(days=1)  # given up only after a day
    metrics = await metrics_text(room)
    assert "warroom_webhook_deliveries_given_up 2.0" in metrics
    assert 'warroom_webhook_deliveries{outcome="delivered"} 0.0' in metrics


async def test_delivered_rows_are_pruned_after_a_week_and_given_up_ones_kept(
    make_clocked_warroom: ClockedFactory, receiver: Receiver, database_url: str
) -> None:
    clock = Clock()
    room = await make_clocked_warroom(
        clock,
        {"webhooks": [{"url": receiver.url("/hook"), "secret": SECRET, "events": ["declared"]}]},
        database_url,
    )
    receiver.failures = 0
    await room.declare("Checkout API returning 500s sev1")
    await room.services.webhooks.flush()
    receiver.failures, receiver.failure_status = 1, 404
    await room.declare("Search is slow sev2")
    await room.services.webhooks.flush()
    assert [r.answered for r in receiver.seen] == [200, 404]

    clock.advance(timedelta(days=6))
    await room.services.webhooks.flush()
    assert 'warroom_webhook_deliveries{outcome="delivered"} 1.0' in await metrics_text(room)

    clock.advance(timedelta(days=2))  # the delivered one is now more than a week old
    await room.services.webhooks.flush()
    metrics = await metrics_text(room)
    assert 'warroom_webhook_deliveries{outcome="delivered"} 0.0' in metrics
    assert "warroom_webhook_deliveries_given_up 1.0" in metrics
    assert len(receiver.seen) == 2, "pruning sends nothing"
