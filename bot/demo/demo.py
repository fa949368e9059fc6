"""`warroom demo`: a whole scripted incident played through the real app, against local
stand-ins for Slack's Web API and Events API, then exported as HTML and Markdown."""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from slack_sdk.signature import SignatureVerifier

from bot.app import SLACK_PATH, Services, build_services, build_web_app
from bot.config import Settings, WarroomConfig
from bot.demo.standin.slack_api import BOT_USER, FakeSlack
from bot.errors import WarroomError
from bot.exports.export import export_chunks
from bot.exports.templating import build_environment
from bot.slack.text import to_plain
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.migrate import upgrade

TEAM_ID = "T0DEMO"
GENERAL = "C0GENERAL"
ANNOUNCE = "C0INCIDENTS"
PEOPLE = {"U0ANA": "ana", "U0BO": "bo", "U0CY": "cy", "U0DEE": "dee"}
TITLE = "Checkout API returning 500s"
# Short enough that a customer-update reminder fires during the demo (the config takes seconds);
# long enough that the scripted update comes first on a busy machine.
UPDATE_EVERY = "5s"
LINE_WIDTH = 100
# How long any one awaited step may take before the demo gives up with one line.
STEP_TIMEOUT = 30.0


class DemoSettings(Settings):
    """Settings made in code only: a stray SLACK_BOT_TOKEN or `.env` must not send the demo to
    a real workspace."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given in code: no environment, no `.env`, no secrets folder."""
        return (init_settings,)


def demo_config() -> WarroomConfig:
    """Built-in defaults, an announcement channel, and a SEV1 update clock of seconds."""
    return WarroomConfig.model_validate(
        {"announce_channel": ANNOUNCE, "severities": {"sev1": {"update_every": UPDATE_EVERY}}}
    )


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote, and how much Slack traffic the stand-in answered."""

    incident: str
    html: Path
    markdown: Path
    api_calls: int
    api_url: str
    seconds: float


class SlackSender:
    """The Events API side of the stand-in: sends the app signed slash commands and events,
    shaped as Slack sends them."""

    def __init__(self, *, url: str, signing_secret: str, slack: FakeSlack) -> None:
        self.url = url
        self.slack = slack
        self.verifier = SignatureVerifier(signing_secret)
        self.http = aiohttp.ClientSession()
        self._last_ts = 0.0
        self._commands = 0

    async def close(self) -> None:
        """Close the HTTP session the requests go out on."""
        await self.http.close()

    def next_ts(self) -> str:
        """A message ts from the wall clock, unique like Slack's."""
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    async def _post(self, body: str, content_type: str) -> str:
        timestamp = str(int(time.time()))
        # None only for a missing timestamp or body, and both are here.
        signature = self.verifier.generate_signature(timestamp=timestamp, body=body) or ""
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        }
        async with self.http.post(self.url, data=body.encode(), headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise WarroomError(f"the demo app answered {response.status} to Slack: {text}")
            return text

    async def command(self, user: str, channel: str, text: str) -> str:
        """`/incident <text>` typed by `user` in `channel`; the ephemeral reply's text."""
        self._commands += 1
        body = urlencode(
            {
                "command": "/incident",
                "text": text,
                "user_id": user,
                "user_name": PEOPLE.get(user, user),
                "channel_id": channel,
                "channel_name": self.slack.channels[channel].name,
                "team_id": TEAM_ID,
                "trigger_id": f"{self._commands}.{uuid.uuid4().hex}",
                "response_url": self.slack.response_url(f"demo{self._commands}"),
                "api_app_id": "A0WARROOM",
            }
        )
        reply = await self._post(body, "application/x-www-form-urlencoded")
        return str(json.loads(reply).get("text", "")) if reply else ""

    async def event(self, event: dict[str, Any]) -> None:
        """One Events API delivery of `event`."""
        body = json.dumps(
            {
                "token": "demo",
                "team_id": TEAM_ID,
                "api_app_id": "A0WARROOM",
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
                "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER, "is_bot": True}],
                "event": event,
            }
        )
        await self._post(body, "application/json")

    async def message(
        self, user: str, channel: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person's message (or thread reply) in `channel`; the message as Slack stored it."""
        ts = self.next_ts()
        message = {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
        if thread_ts:
            message["thread_ts"] = thread_ts
        # The person posted it through their Slack client: the channel holds it too.
        self.slack.messages.setdefault(channel, []).append(dict(message))
        await self.event({**message, "channel": channel, "event_ts": ts, "channel_type": "channel"})
        return message

    async def edit(self, channel: str, message: dict[str, Any], text: str) -> None:
        """The author edits `message`: Slack's message_changed event, old text included."""
        edited_ts = self.next_ts()
        new = {**message, "text": text, "edited": {"user": message["user"], "ts": edited_ts}}
        await self.event(
            {
                "type": "message",
                "subtype": "message_changed",
                "hidden": True,
                "channel": channel,
                "ts": edited_ts,
                "event_ts": edited_ts,
                "channel_type": "channel",
                "message": new,
                "previous_message": message,
            }
        )

    async def joined(self, user: str, channel: str) -> None:
        """Slack's member_joined_channel after the bot invited `user`."""
        await self.event(
            {
                "type": "member_joined_channel",
                "user": user,
                "channel": channel,
                "channel_type": "C",
                "team": TEAM_ID,
                "inviter": BOT_USER,
                "event_ts": self.next_ts(),
            }
        )


async def wait_until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll `check` until it holds; a stall is one line naming `what`, not a hang."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while not await check():
        if time.monotonic() > deadline:
            raise WarroomError(f"the demo stalled: {what} did not happen in {STEP_TIMEOUT:.0f}s")
        await asyncio.sleep(0.05)


class Script:
    """The scripted incident, step by step, printing one line per step."""

    def __init__(
        self, *, sender: SlackSender, slack: FakeSlack, services: Services, echo: Echo
    ) -> None:
        self.sender = sender
        self.slack = slack
        self.services = services
        self.echo = echo
        self.room = ""
        self._seen_members: set[str] = {BOT_USER}

    def say(self, who: str, what: str) -> None:
        """Print one timed line, `who` then `what` as plain text, cut to the demo's line width."""
        line = f"  {datetime.now(UTC):%H:%M:%S}  {who:<8} {to_plain(what, PEOPLE)}"
        self.echo(line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 3] + "...")

    async def settle(self) -> None:
        """Tell the app who has joined the war room since the last step, as Slack would.

        No waiting for the app's after-ack work (invitations, topic, header) between steps:
        people in a war room don't wait for it either, and the header's updates are paced."""
        if not self.room:
            return
        for user in sorted(self.slack.channels[self.room].members - self._seen_members):
            self._seen_members.add(user)
            await self.sender.joined(user, self.room)

    async def command(self, user: str, text: str, *, channel: str | None = None) -> None:
        """Type `/incident text` as `user`, in the war room unless `channel` says otherwise."""
        self.say(f"@{PEOPLE[user]}", f"/incident {text}")
        await self.sender.command(user, channel or self.room, _mentions(text))
        await self.settle()

    async def message(
        self, user: str, text: str, *, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """Post `text` as `user` (in the thread `thread_ts`, if given); the message as stored."""
        self.say(f"@{PEOPLE[user]}", f"(in thread) {text}" if thread_ts else text)
        message = await self.sender.message(user, self.room, text, thread_ts=thread_ts)
        await self.settle()
        return message

    async def play(self) -> int:
        """Play the incident; its number."""
        await self.command("U0ANA", f"declare {TITLE} sev1", channel=GENERAL)
        number, self.room = await self._war_room()
        self.say("warroom", f"opened #{self.slack.channels[self.room].name}")
        await self.settle()
        await self.command("U0ANA", "role comms @cy")
        await self.command("U0ANA", "role resolver @bo")
        first = await self.message("U0BO", "checkout-api 5xx rate is at 40% since 4.2.1 went out")
        await self.message(
            "U0CY", "support has 12 tickets from EU customers so far", thread_ts=first["ts"]
        )
        edited = "checkout-api 5xx rate is at 40%, starting right after the 4.2.1 deploy"
        self.say("@bo", f"(edits) {edited}")
        await self.sender.edit(self.room, first, edited)
        await self.settle()
        await self.command("U0ANA", "status identified")
        await self.message("U0BO", "rolling checkout-api back to 4.2.0")
        await self.command("U0ANA", "status monitoring")
        await self.command(
            "U0CY",
            "update Checkout is working again after we rolled back this morning's release; "
            "we are watching error rates.",
        )
        reminder = await self._reminder_after_update(number)
        self.say("warroom", f"(reminder) {reminder}")
        await self.message("U0BO", "error rate back to baseline for 10 minutes")
        await self.command("U0ANA", "role commander @dee")
        await self.command("U0DEE", "resolve Rolled back 4.2.1; checkout error rate is normal")
        await self.services.tasks.join()
        await self.settle()
        await self._check_nothing_refused(number)
        return number

    async def _war_room(self) -> tuple[int, str]:
        """The number and channel of the incident just declared (opened after the ack)."""

        def _latest(session: Any) -> tuple[int, str | None] | None:
            incidents = incident_store.open_incidents(session)
            if not incidents:
                return None
            latest = max(incidents, key=lambda incident: incident.number)
            return latest.number, latest.channel_id

        found: tuple[int, str | None] | None = None

        async def _opened() -> bool:
            nonlocal found
            found = await self.services.db.run(_latest)
            return found is not None and found[1] is not None

        await wait_until("opening the war room", _opened)
        assert found is not None and found[1] is not None
        return found[0], found[1]

    async def _reminder_after_update(self, number: int) -> str:
        """Wait for the customer-update reminder due after the update; the text Slack got."""

        def _reminder_text(session: Any) -> str | None:
            incident = incident_store.incident_by_number(session, number=number)
            assert incident is not None and incident.id is not None
            events = timeline_store.events_of_kinds(
                session, incident_id=incident.id, kinds=("customer_update", "reminder")
            )
            updated = [e.at for e in events if e.kind == "customer_update"]
            later = [
                e.text or ""
                for e in events
                if e.kind == "reminder" and updated and e.at > updated[-1]
            ]
            return later[0] if later else None

        text: str | None = None

        async def _posted() -> bool:
            nonlocal text
            text = await self.services.db.run(_reminder_text)
            posted = [m.get("text") for m in self.slack.messages.get(self.room, [])]
            return text is not None and text in posted

        await wait_until("the customer-update reminder", _posted)
        assert text is not None
        return text

    async def _check_nothing_refused(self, number: int) -> None:
        """The script is written to be allowed throughout; a refusal means the demo is broken."""

        def _refused(session: Any) -> list[str]:
            incident = incident_store.incident_by_number(session, number=number)
            assert incident is not None and incident.id is not None
            events = timeline_store.events_of_kinds(
                session, incident_id=incident.id, kinds=("command_refused",)
            )
            return [e.text or "" for e in events]

        refused = await self.services.db.run(_refused)
        if refused:
            raise WarroomError(f"the demo's command {refused[0]!r} was refused")


Echo = Callable[[str], None]


def _mentions(text: str) -> str:
    """`@cy` as Slack sends it from a slash command with escaped usernames: `<@U0CY|cy>`."""
    ids = {name: user for user, name in PEOPLE.items()}
    words = [
        f"<@{ids[w[1:]]}|{w[1:]}>" if w.startswith("@") and w[1:] in ids else w
        for w in text.split(" ")
    ]
    return " ".join(words)


def _writable(out_dir: Path) -> None:
    """Fail before anything starts when `out_dir` cannot take the exports."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".warroom-demo-{uuid.uuid4().hex}"
        probe.write_text("", encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        raise WarroomError(f"--out {out_dir}: cannot write there ({exc.strerror})") from None


def _export(db: Database, number: int, fmt: str, path: Path, config: WarroomConfig) -> None:
    templates = build_environment(config.templates_dir)
    with db.reading() as session, path.open("w", encoding="utf-8") as out:
        chunks = export_chunks(
            session,
            number,
            fmt,
            config=config,
            templates=templates,
            redact=False,
            now=datetime.now(UTC),
        )
        for chunk in chunks:
            out.write(chunk)


async def run_demo(out_dir: Path, *, echo: Echo = print) -> DemoResult:
    """Play the scripted incident through the real app on loopback and export it to `out_dir`."""
    started = time.monotonic()
    _writable(out_dir)
    slack = FakeSlack()
    for user, name in PEOPLE.items():
        slack.add_user(user, name, display_name=name)
    slack.add_channel(GENERAL, "general", members={BOT_USER, *PEOPLE})
    slack.add_channel(ANNOUNCE, "incidents")
    await slack.start()
    # The database lives only as long as the demo: the exports are what it leaves behind.
    scratch = tempfile.TemporaryDirectory(prefix="warroom-demo-")
    runner: web.AppRunner | None = None
    sender: SlackSender | None = None
    try:
        signing_secret = secrets.token_hex(16)
        settings = DemoSettings(
            slack_bot_token="xoxb-demo",
            slack_signing_secret=signing_secret,
            slack_api_url=slack.api_url,
            database_url=f"sqlite:///{Path(scratch.name) / 'warroom.db'}",
        )
        config = demo_config()
        services = build_services(settings, config)
        await asyncio.to_thread(upgrade, services.db.engine)
        runner = web.AppRunner(build_web_app(settings, config, services=services), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        sender = SlackSender(
            url=f"http://{host}:{port}{SLACK_PATH}", signing_secret=signing_secret, slack=slack
        )
        echo(f"warroom demo: the real app on http://{host}:{port}, Slack stood in for locally")
        number = await Script(sender=sender, slack=slack, services=services, echo=echo).play()
        html, markdown = out_dir / f"INC-{number}.html", out_dir / f"INC-{number}.md"
        await asyncio.to_thread(_export, services.db, number, "html", html, config)
        await asyncio.to_thread(_export, services.db, number, "md", markdown, config)
        return DemoResult(
            incident=f"INC-{number}",
            html=html,
            markdown=markdown,
            api_calls=len(slack.calls),
            api_url=slack.api_url,
            seconds=time.monotonic() - started,
        )
    finally:
        if sender is not None:
            await sender.close()
        if runner is not None:
            # Stops the scheduler, waits for work under way, closes the client and database.
            await runner.cleanup()
        await slack.close()
        scratch.cleanup()
