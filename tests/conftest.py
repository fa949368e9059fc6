"""Fixtures: a fake Slack Web API server, real databases, and the real warroom server. The
helpers they hand out live in tests/support, which is where tests import them from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from bot.app import build_services, build_web_app
from bot.clock import utc_now
from bot.config import Settings, WarroomConfig
from bot.outbox.sender import FLUSH_EVERY_SECONDS
from tests.support.databases import migrate, migrated_pg_url
from tests.support.fakes.held import HeldSlack
from tests.support.fakes.slack_api import FakeSlack
from tests.support.fakes.workspace import add_workspace
from tests.support.home import Clock, ClockedFactory
from tests.support.serving import Process
from tests.support.stopping import stop_within
from tests.support.warroom import SIGNING_SECRET, Warroom, WarroomFactory


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database: a SQLite file, and PostgreSQL when it is configured."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warroom.db'}"
        migrate(url)
        yield url
        return
    yield from migrated_pg_url()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'warroom.db'}"
    migrate(url)
    return url


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    add_workspace(fake)
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def held_slack() -> AsyncIterator[HeldSlack]:
    """The fake Slack that can keep its answers back until the test releases them."""
    fake = HeldSlack()
    add_workspace(fake)
    await fake.start()
    try:
        yield fake
    finally:
        fake.release_all()
        await fake.close()


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
        migrate(url)
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
        await stop_within(room.server.close(), "the warroom server")


@pytest.fixture
async def warroom(make_warroom: WarroomFactory) -> Warroom:
    return await make_warroom()


@pytest.fixture
def make_clocked_warroom(make_warroom: WarroomFactory) -> ClockedFactory:
    """Like `make_warroom`, with the services' clock handed in first."""

    async def _make(
        clock: Clock, config: dict[str, Any] | None = None, database_url: str | None = None
    ) -> Warroom:
        return await make_warroom(config, database_url, clock=clock)

    return _make


@pytest.fixture
async def processes() -> AsyncIterator[list[Process]]:
    """`warroom serve` processes a test started (tests/support/serving.py), killed after it."""
    started: list[Process] = []
    yield started
    for process in started:
        await process.kill()
