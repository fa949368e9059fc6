"""Fixtures: a fake Slack Web API server, real databases, and the real warroom server."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

from bot.app import Services, build_services, build_web_app
from bot.clock import utc_now
from bot.config import Settings, WarroomConfig
from bot.outbox.sender import FLUSH_EVERY_SECONDS
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Incident, TimelineEvent
from tests.fakes.slack_api import FakeSlack

# Fixtures for tests that run `warroom serve` as a real process, and for a server with a clock
# the test moves.
pytest_plugins = ["tests.serving", "tests.home_helpers"]

SIGNING_SECRET = "test-signing-secret"
PG_URL = os.environ.get("WARROOM_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> NoReturn:
    """Something a test needs is not here: in CI (`.ci/run` sets CI=true) that fails the
    build; on a developer's machine the test is skipped, with the reason printed."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    print(f"skipping: {reason}")
    pytest.skip(reason)


def _pg_schema_url(base: str) -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, and PostgreSQL when it is configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warroom.db'}"
        _migrate(url)
        yield url
        return
    if not PG_URL:
        missing("WARROOM_TEST_DATABASE_URL is not set, so PostgreSQL is not tested here")
    for url in _pg_schema_url(PG_URL):
        _migrate(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warroom.db'}"
    _migrate(url)
    return url


def _migrate(url: str) -> None:
    db = Database(url)
    try:
        upgrade(db.engine)
    finally:
        db.close()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    for user_id, name in (("U0ANA", "ana"), ("U0BO", "bo"), ("U0CY", "cy"), ("U0ADMIN", "root")):
        fake.add_user(user_id, name)
    fake.add_channel("C0GENERAL", "general")
    fake.add_channel("C0ANNOUNCE", "incidents")
    await fake.start()
    yield fake
    await fake.close()


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

    def command_body(
        self,
        text: str,
        *,
        user: str = "U0ANA",
        channel: str = "C0GENERAL",
        user_name: str | None = None,
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
                "response_url": self.slack.response_url(f"r{self._triggers}"),
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


@pytest.fixture
async def make_warroom(slack: FakeSlack, tmp_path: Path) -> AsyncIterator[WarroomFactory]:
    started: list[Warroom] = []

    async def _make(
        config: dict[str, Any] | None = None,
        database_url: str | None = None,
        *,
        outbox_every: float = FLUSH_EVERY_SECONDS,
        env: dict[str, Any] | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> Warroom:
        url = database_url or f"sqlite:///{tmp_path / 'warroom.db'}"
        _migrate(url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            slack_bot_token="xoxb-test",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.api_url,
            database_url=url,
            **(env or {}),
        )
        warroom_config = WarroomConfig.model_validate(
            {"announce_channel": "C0ANNOUNCE", "admins": ["U0ADMIN"], **(config or {})}
        )
        # A short outbox interval lets a test see Slack failures retried by the next flush.
        services = build_services(settings, warroom_config, outbox_every=outbox_every, clock=clock)
        # Retries honour Retry-After in whole seconds; tests keep them short.
        app = build_web_app(settings, warroom_config, services=services)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        room = Warroom(server, services, slack)
        started.append(room)
        return room

    yield _make
    for room in started:
        await room.http.close()
        await room.server.close()


@pytest.fixture
async def warroom(make_warroom: WarroomFactory) -> Warroom:
    return await make_warroom()
