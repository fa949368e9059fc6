"""The real warroom server as a test drives it: signed slash commands and events, as Slack
sends them, and what the server stored."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier
from sqlmodel import Session, col, select

from bot.app import Services
from storage.models import Incident, TimelineEvent
from tests.support.fakes.slack_api import FakeSlack

SIGNING_SECRET = "test-signing-secret"


@dataclass
class Reply:
    status: int
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def message(self) -> str:
        return str(self.json.get("text", ""))


def ephemeral(reply: Reply) -> str:
    """The reply is a 200 with an ephemeral message and no trace of a crash; its text."""
    assert reply.status == 200, reply.text
    assert reply.json["response_type"] == "ephemeral", reply.text
    assert "Traceback" not in reply.text and "went wrong" not in reply.message
    return reply.message


@dataclass(frozen=True)
class Signed:
    """One request as Slack signed it: sent again, it is the very same bytes and headers (a
    replay within the signature's 5-minute window)."""

    body: str
    content_type: str
    timestamp: str
    signature: str


class Warroom:
    """The real server on a free port, and a Slack that signs what it sends to it."""

    def __init__(self, server: TestServer, services: Services, slack: FakeSlack) -> None:
        self.server = server
        self.services = services
        self.slack = slack
        self.verifier = SignatureVerifier(SIGNING_SECRET)
        self.http = aiohttp.ClientSession()
        self._triggers = 0

    @property
    def url(self) -> str:
        return str(self.server.make_url("/slack/events"))

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        sent = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature
            or self.verifier.generate_signature(timestamp=ts, body=body),
            **(headers or {}),
        }
        async with self.http.post(self.url, data=body.encode(), headers=sent) as response:
            return Reply(response.status, await response.text())

    def sign(self, body: str, content_type: str) -> Signed:
        """`body` signed now, to be sent (and sent again) with `send`."""
        ts = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=ts, body=body)
        return Signed(body, content_type, ts, signature)

    async def send(self, request: Signed) -> Reply:
        """Post a signed request exactly as it was signed."""
        return await self.post(
            request.body,
            request.content_type,
            timestamp=int(request.timestamp),
            signature=request.signature,
        )

    def command_body(
        self,
        text: str,
        *,
        user: str = "U0ANA",
        channel: str = "C0GENERAL",
        user_name: str | None = None,
        response_url: str | None = None,
    ) -> str:
        self._triggers += 1
        return urlencode(
            {
                "command": "/incident",
                "text": text,
                "user_id": user,
                "user_name": user_name or self.slack.users.get(user, {}).get("name", "someone"),
                "channel_id": channel,
                "channel_name": "x",
                "team_id": "T0TEST",
                "trigger_id": f"trigger-{uuid.uuid4().hex}",
                "response_url": response_url or self.slack.response_url(f"r{self._triggers}"),
                "api_app_id": "A0WARROOM",
            }
        )

    async def command(self, text: str, **kwargs: Any) -> Reply:
        return await self.post(
            self.command_body(text, **kwargs), "application/x-www-form-urlencoded"
        )

    def event_body(self, event: dict[str, Any], *, event_id: str | None = None) -> str:
        return json.dumps(
            {
                "token": "x",
                "team_id": "T0TEST",
                "api_app_id": "A0WARROOM",
                "type": "event_callback",
                "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": "T0TEST", "user_id": "UBOT0001", "is_bot": True}],
                "event": event,
            }
        )

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> Reply:
        headers = (
            {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
            if retry
            else None
        )
        return await self.post(
            self.event_body(event, event_id=event_id), "application/json", headers=headers
        )

    async def settle(self) -> None:
        """Wait for the work that runs after acks (channel creation, invitations, names)."""
        await self.services.tasks.join()

    async def declare(
        self, text: str = "Checkout API returning 500s sev1", user: str = "U0ANA"
    ) -> Incident:
        reply = await self.command(f"declare {text}", user=user)
        assert reply.status == 200, reply.text
        await self.settle()
        with Session(self.services.db.engine) as session:
            incident = session.exec(select(Incident).order_by(col(Incident.number).desc())).first()
        assert incident is not None and incident.channel_id, "the war room was not opened"
        return incident

    def stored(self, number: int) -> Incident:
        """The incident row as it is in the database now."""
        with Session(self.services.db.engine) as session:
            return session.exec(select(Incident).where(Incident.number == number)).one()

    def timeline(self, number: int | None = None) -> list[TimelineEvent]:
        with Session(self.services.db.engine) as session:
            query = select(TimelineEvent).order_by(col(TimelineEvent.at), col(TimelineEvent.id))
            if number is not None:
                incident = session.exec(select(Incident).where(Incident.number == number)).one()
                query = query.where(TimelineEvent.incident_id == incident.id)
            return list(session.exec(query).all())

    def kinds(self, number: int | None = None) -> list[str]:
        return [e.kind for e in self.timeline(number)]


WarroomFactory = Callable[..., Awaitable[Warroom]]
