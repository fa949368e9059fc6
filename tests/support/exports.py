"""One fixed incident for the export tests (INC-1, resolved, with every kind of event a reviewer
needs to tell apart and user text that tries to get out of every format), and the real server
serving it over the reviewer's routes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from sqlmodel import Session

from bot.app import build_services, build_web_app
from bot.config import Settings, WarroomConfig
from bot.exports.links import signed_query
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage import users as user_store
from storage.db import Database
from storage.migrate import upgrade
from storage.models import Incident
from tests.support.fakes.slack_api import FakeSlack

FORMATS = ("md", "html", "json", "csv")

T0 = datetime(2024, 3, 5, 9, 0, tzinfo=UTC)  # 10:00 in Berlin
NOW = datetime(2024, 3, 5, 13, 0, tzinfo=UTC)
CONFIG = WarroomConfig(timezone="Europe/Berlin", redact_patterns=[r"ACME-\d{4}"])

# What people typed, as Slack sends it: `&`, `<` and `>` typed by a person arrive escaped;
# mentions, broadcasts and links arrive as Slack markup.
SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMG = '"&gt;&lt;img src=x onerror=alert(1)&gt;'
RAW_SCRIPT = "<script>alert(2)</script>"  # not Slack's escaping: another app posting raw
MENTIONS = "<!channel> <!here> ping <@U0ANA> and <@U0CY|cy> see <http://x.example|label>"
FORMULAS = ("=SUM(A1)", "+1", "-2", "@cmd")
PERSONAL = "mail ana@example.com or call +49 30 1234567 from 10.0.0.12 / 2001:db8::1 ACME-1234"
EDITED_BEFORE = "Root cause: bad config pushd, ask ops@example.com"
EVIL_NAME = '"><svg onload=alert(3)>'
MULTILINE = 'line one, "quoted"\nline two | pipe *stars* _under_ `tick` # not a heading'


def ts(at: datetime) -> str:
    """Slack's ts for a moment."""
    return f"{at.timestamp():.6f}"


def build_incident(db: Database) -> int:
    """INC-1, resolved, with every kind of event a reviewer needs to tell apart."""
    with db.unit_of_work() as session:
        for user_id, name in (("U0ANA", "ana"), ("U0BO", "bo"), ("U0CY", "cy")):
            user_store.save_user(session, user_id=user_id, name=name, handle=name, at=T0)
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title="Checkout <API> returning 500s & timeouts",
            severity="sev1",
            declared_at=T0,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id="C0GENERAL",
        )
        assert incident.id is not None
        incident_store.set_incident_channel(
            session, incident_id=incident.id, channel_id="C0INC1", channel_name="inc-1-checkout"
        )
        add_story(session, incident)
        return incident.number


def add_story(session: Session, incident: Incident) -> None:
    assert incident.id is not None
    iid = incident.id

    def at(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    def event(kind: str, minutes: float, actor: str | None, text: str | None, **more: Any) -> None:
        names = {"U0ANA": "ana", "U0BO": "bo", "U0CY": "cy"}
        timeline_store.add_event(
            session,
            incident_id=iid,
            kind=kind,
            at=at(minutes),
            actor_id=actor,
            actor_name=names.get(actor or ""),
            text=text,
            **more,
        )

    def message(minutes: float, actor: str, text: str, **more: Any) -> str:
        stamp = ts(at(minutes))
        event("message", minutes, actor, text, slack_ts=stamp, **more)
        return stamp

    def role(minutes: float, name: str, user_id: str, by: str, previous: str | None) -> None:
        if previous:
            [held] = [
                r for r in incident_store.current_roles(session, incident_id=iid) if r.role == name
            ]
            incident_store.relieve_role(session, assignment=held, at=at(minutes))
        user_name = {"U0ANA": "ana", "U0BO": "bo", "U0CY": "cy"}[user_id]
        incident_store.add_role(
            session,
            incident_id=iid,
            role=name,
            user_id=user_id,
            user_name=user_name,
            assigned_by_id=by,
            at=at(minutes),
        )
        event(
            "role_assigned",
            minutes,
            by,
            f"{user_name} is {name}",
            data={"role": name, "user": {"id": user_id, "name": user_name}, "previous": previous},
        )

    def status(minutes: float, before: str, after: str, actor: str) -> None:
        event(
            "status_changed",
            minutes,
            actor,
            f"Status {before} → {after}",
            data={"from": before, "to": after},
        )

    event("declared", 0, "U0ANA", incident.title, data={"severity": "sev1", "source": "slack"})
    role(0, "commander", "U0ANA", "U0ANA", None)
    role(2, "comms", "U0BO", "U0ANA", None)
    parent = message(5, "U0BO", "Checkout is failing for everyone, <@U0ANA> can you look?")
    message(6, "U0CY", "On it: rolling back deploy 4711", thread_ts=parent)
    message(8, "U0ANA", "Top level meanwhile: dashboards are red")
    message(9, "U0ANA", "Thanks, rollback started", thread_ts=parent)
    status(10, "investigating", "identified", "U0ANA")
    role(12, "commander", "U0CY", "U0ANA", "U0ANA")
    edited = message(13, "U0BO", EDITED_BEFORE)
    event(
        "message_edited",
        14,
        "U0BO",
        "Root cause: bad config pushed at 09:58",
        slack_ts=edited,
        data={"previous_text": EDITED_BEFORE},
    )
    deleted = message(15, "U0CY", "wrong channel, sorry")
    event(
        "message_deleted",
        16,
        "U0CY",
        None,
        slack_ts=deleted,
        data={"previous_text": "wrong channel, sorry"},
    )
    message(
        18,
        "U0CY",
        "p99 latency after the rollback",
        data={
            "subtype": "file_share",
            "files": [{"id": "F0GRAPH", "name": "p99-latency.png", "title": "p99 latency"}],
        },
    )
    event(
        "customer_update",
        20,
        "U0BO",
        "We have found the cause of failed checkouts and are rolling out a fix.",
    )
    event(
        "command_refused",
        22,
        "U0BO",
        "/incident sev 2",
        data={"reason": "Only the commander (cy) or an admin can change the severity in INC-1."},
    )
    message(25, "U0BO", SCRIPT)
    message(25.5, "U0BO", IMG)
    message(26, "U0BO", RAW_SCRIPT)
    message(27, "U0CY", MENTIONS)
    for n, formula in enumerate(FORMULAS):
        message(28 + n / 4, "U0CY", formula)
    message(30, "U0ANA", PERSONAL)
    message(30.5, "U0ANA", "also <mailto:ops@example.com|ops@example.com>")
    timeline_store.add_event(
        session,
        incident_id=iid,
        kind="message",
        at=at(32),
        actor_id="B0EVIL",
        actor_name=EVIL_NAME,
        text="deploy bot reporting",
        slack_ts=ts(at(32)),
        data={"subtype": "bot_message", "bot_id": "B0EVIL"},
    )
    message(31, "U0ANA", MULTILINE)
    status(40, "identified", "monitoring", "U0CY")
    incident.mitigated_at = at(40)
    event("note", 50, "U0CY", "Error rate back to baseline")
    status(70, "monitoring", "resolved", "U0CY")
    event("resolved", 70, "U0CY", "Rolled back deploy 4711", data={"duration_seconds": 4200})
    incident.status = "resolved"
    incident.resolved_at = at(70)
    session.add(incident)
    session.flush()
    add_followups(session, iid, at)


def add_followups(session: Session, iid: int, at: Callable[[float], datetime]) -> None:
    """Three follow-ups: open with an owner (and text that tries to escape), dropped, unowned."""
    owned = followup_store.add_followup(
        session,
        incident_id=iid,
        text=f"Alert on 5xx | {RAW_SCRIPT} =SUM(A1) mail ops@example.com",
        at=at(60),
        created_by_id="U0CY",
        created_by_name="cy",
        owner_id="U0BO",
        owner_name="bo",
        due=date(2024, 3, 4),
        source_ts=ts(at(27)),
    )
    dropped = followup_store.add_followup(
        session,
        incident_id=iid,
        text="Rewrite the deploy tool",
        at=at(61),
        created_by_id="U0ANA",
        created_by_name="ana",
    )
    dropped.status, dropped.reason, dropped.closed_at = "dropped", "too big; see RFC-12", at(65)
    session.add(dropped)
    followup_store.add_followup(
        session,
        incident_id=iid,
        text="Runbook for rollbacks",
        at=at(62),
        created_by_id="U0ANA",
        created_by_name="ana",
        due=date(2024, 3, 20),
    )
    assert owned.id == 1
    session.flush()


# -- reading HTML ------------------------------------------------------------------------------


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(page: str) -> Tags:
    parser = Tags()
    parser.feed(page)
    parser.close()
    return parser


# -- the reviewer's routes on the real server --------------------------------------------------

TOKEN = "t0k3n"
TTL = timedelta(hours=1)


class Clock:
    """The one thing faked by hand: link expiry is checked against it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class ExportReply:
    status: int
    headers: Any
    text: str


@dataclass
class ExportServer:
    server: TestServer
    http: aiohttp.ClientSession
    clock: Clock
    token: str | None

    async def get(self, path: str, *, token: str | None = None, **headers: str) -> ExportReply:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self.http.get(self.server.make_url(path), headers=headers) as response:
            return ExportReply(response.status, response.headers, await response.text())

    def link(self, path: str, *, redact: bool = False, key: str | None = None) -> str:
        """A signed link, made as the bot makes the ones it posts in Slack."""
        key = key or self.token
        assert key
        return f"{path}?{signed_query(key, path, now=self.clock(), ttl=TTL, redact=redact)}"


@asynccontextmanager
async def serve_exports(
    slack: FakeSlack,
    tmp_path: Path,
    *,
    token: str | None = TOKEN,
    prepare: Callable[[Database], Any] = build_incident,
    database_url: str | None = None,
) -> AsyncIterator[ExportServer]:
    """The real server (Bolt, exports and all) over a database holding the fixed INC-1 (a
    SQLite file, unless `database_url` names another, empty one)."""
    url = database_url or f"sqlite:///{tmp_path / 'routes.db'}"
    db = Database(url)
    try:
        upgrade(db.engine)
        prepare(db)
    finally:
        db.close()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        slack_bot_token="xoxb-test",
        slack_signing_secret="test-signing-secret",
        slack_api_url=slack.api_url,
        database_url=url,
        warroom_export_token=token,
    )
    config = WarroomConfig.model_validate(
        {**CONFIG.model_dump(), "export_link_ttl": TTL, "announce_channel": "C0ANNOUNCE"}
    )
    clock = Clock(NOW)
    services = build_services(settings, config, clock=clock)
    server = TestServer(build_web_app(settings, config, services=services), host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    try:
        yield ExportServer(server, http, clock, token)
    finally:
        await http.close()
        await server.close()
