"""How long from `/incident declare` until the war room is ready, beside the floor Slack allows.

Everything runs in this process on 127.0.0.1: the real warroom server on a freshly migrated
database and the fake Slack Web API, which takes `--slack-latency` seconds (50 ms) over every
call. Each milestone is when the fake Slack answered the call that reaches it (the call's arrival
plus the latency), counted from the moment the signed declare was sent. The baseline, in the same
run against the same fake: the same calls made directly with an `AsyncWebClient`, once one after
another and once in the ideal order (create; then invite, topic, header and announcement side by
side; pin after the header). Exits 1 when a war room did not open, 2 when the deadline passed.

    python benchmarks/bench_warroom.py [--database-url URL] [--declares N] [--slack-latency S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ack import (  # noqa: E402
    SECRET,
    TOKEN,
    SlackRequests,
    describe_database,
    fresh_database,
    incident_room,
    serve,
    start_fake_slack,
    warroom_app,
)
from bot.app import SLACK_PATH  # noqa: E402
from bot.config import WarroomConfig  # noqa: E402
from bot.demo.standin.slack_api import Call, FakeSlack  # noqa: E402

ANNOUNCE = "C0ANNOUNCE"
ONCALL = "S0ONCALL"
WARMUP = 2
# Who a sev2 pulls in: a user group (one usergroups.users.list call) and one person.
CONFIG = {
    "announce_channel": ANNOUNCE,
    "admins": ["U0ADMIN"],
    "severities": {"sev2": {"invite": [ONCALL, "U0CY"]}},
    # One person declares every war room measured: not the flood the limit is for.
    "declare_limit": None,
}
# The milestones, in the order they are printed; "ready" is the last of the first five.
MILESTONES = ("created", "invited", "topic", "posted", "pinned")
LABELS = {
    "created": "channel created",
    "invited": "people invited",
    "topic": "topic set",
    "posted": "header posted",
    "pinned": "header pinned",
    "ready": "war room ready",
}


@dataclass(frozen=True)
class Opening:
    """Seconds from the start to each milestone of one war room."""

    at: dict[str, float]

    @property
    def ready(self) -> float:
        return max(self.at[m] for m in MILESTONES)


@dataclass(frozen=True)
class WarRoomFigures:
    """Medians (seconds) per milestone: warroom, the ideal-order floor, the one-by-one floor."""

    warroom: dict[str, float]
    floor: dict[str, float]
    sequential: dict[str, float]
    ack: float
    declares: int
    slack_latency: float


def milestones(calls: Sequence[Call], channel_id: str, start: float, latency: float) -> Opening:
    """When Slack answered each milestone's call, counted from `start`: the last of its kind,
    but for the header, the first post into the war room."""

    def answered(method: str, channel: str | None = channel_id, first: bool = False) -> float:
        times = [c.at for c in calls if c.method == method and _channel(c) == channel]
        if not times:
            raise RuntimeError(f"no {method} call for {channel}")
        return (min(times) if first else max(times)) + latency - start

    return Opening(
        {
            "created": answered("conversations.create", None),
            "invited": answered("conversations.invite"),
            "topic": answered("conversations.setTopic"),
            "posted": answered("chat.postMessage", first=True),
            "pinned": answered("pins.add"),
        }
    )


def _channel(call: Call) -> str | None:
    channel = call.args.get("channel")
    return str(channel) if channel is not None else None


def medians(openings: Sequence[Opening]) -> dict[str, float]:
    figures = {m: statistics.median(o.at[m] for o in openings) for m in MILESTONES}
    figures["ready"] = statistics.median(o.ready for o in openings)
    return figures


# -- warroom ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    opening: Opening
    ack: float
    calls: list[Call]
    channel_id: str


async def declare_once(
    http: aiohttp.ClientSession,
    base: str,
    slack: SlackRequests,
    fake: FakeSlack,
    settle: Callable[[], Awaitable[None]],
    find_room: Callable[[str], str],
    title: str,
) -> Declared:
    """Send one signed declare, wait for the war room, and read its milestones off the fake."""
    request = slack.declare(title)
    first = len(fake.calls)
    start = time.monotonic()
    async with http.post(base + SLACK_PATH, data=request.body, headers=request.headers) as answer:
        await answer.read()
        if answer.status != 200:
            raise RuntimeError(f"declare answered {answer.status}")
    ack = time.monotonic() - start
    await settle()
    channel_id = find_room(title)
    calls = fake.calls[first:]
    return Declared(milestones(calls, channel_id, start, fake.latency), ack, calls, channel_id)


# -- the floor: the same calls straight from a client ------------------------------------------


class Replay:
    """Makes a war room's Slack calls again, with a client of its own, in a chosen order."""

    def __init__(self, client: AsyncWebClient, calls: Sequence[Call], channel_id: str) -> None:
        self.client = client
        self.calls = calls
        self.channel_id = channel_id

    def _args(self, method: str, channel: str | None) -> list[dict[str, Any]]:
        return [dict(c.args) for c in self.calls if c.method == method and _channel(c) == channel]

    async def create(self) -> str:
        response = await self.client.conversations_create(name=f"floor-{uuid.uuid4().hex[:12]}")
        return str(response["channel"]["id"])

    async def groups(self) -> None:
        for args in self._args("usergroups.users.list", None):
            await self.client.usergroups_users_list(usergroup=args["usergroup"])

    async def invite(self, channel: str) -> None:
        for args in self._args("conversations.invite", self.channel_id):
            await self.client.conversations_invite(channel=channel, users=args["users"])

    async def topic(self, channel: str) -> None:
        args = self._args("conversations.setTopic", self.channel_id)[0]
        await self.client.conversations_setTopic(channel=channel, topic=args["topic"])

    async def header(self, channel: str) -> None:
        """Post the header, then pin it: the one dependency after the channel exists."""
        args = self._args("chat.postMessage", self.channel_id)[0]
        posted = await self.client.chat_postMessage(
            channel=channel, text=args["text"], blocks=args.get("blocks")
        )
        await self.client.pins_add(channel=channel, timestamp=posted["ts"])

    async def announce(self, channel: str) -> None:
        for args in self._args("chat.postMessage", ANNOUNCE):
            await self.client.chat_postMessage(channel=ANNOUNCE, text=args["text"])

    async def one_by_one(self) -> str:
        await self.groups()
        channel = await self.create()
        await self.invite(channel)
        await self.topic(channel)
        await self.header(channel)
        await self.announce(channel)
        return channel

    async def ideal(self) -> str:
        channel, _ = await asyncio.gather(self.create(), self.groups())
        await asyncio.gather(
            self.invite(channel), self.topic(channel), self.header(channel), self.announce(channel)
        )
        return channel


async def floor_once(fake: FakeSlack, replay: Callable[[], Awaitable[str]]) -> Opening:
    first = len(fake.calls)
    start = time.monotonic()
    channel = await replay()
    return milestones(fake.calls[first:], channel, start, fake.latency)


# -- the run ------------------------------------------------------------------------------------


async def measure(
    database_url: str, *, declares: int, slack_latency: float, quiet: bool = True
) -> WarRoomFigures:
    """Declare `declares` incidents one at a time; replay each one's calls as the two floors."""
    async with AsyncExitStack() as stack:
        fake = await start_fake_slack(stack, slack_latency)
        fake.add_user("U0CY", "cy")
        fake.usergroups[ONCALL] = ["U0BO", "U0ADMIN"]
        config = WarroomConfig.model_validate(CONFIG)
        app, services = warroom_app(database_url, fake.api_url, config)
        base = await serve(stack, app)
        slack = SlackRequests(SECRET, fake.response_url("bench"))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url)
        run_id = uuid.uuid4().hex[:6]

        def find_room(title: str) -> str:
            return incident_room(services.db, title)[1]

        async def declare(title: str) -> Declared:
            return await declare_once(
                http, base, slack, fake, services.tasks.join, find_room, title
            )

        for i in range(WARMUP):
            await declare(f"Warm-up {run_id} {i}")
        ours: list[Declared] = []
        floor: list[Opening] = []
        sequential: list[Opening] = []
        for i in range(declares):
            # Each declare is followed by its own replays, so all three see the same machine.
            declared = await declare(f"Room {run_id} {i}")
            replay = Replay(client, declared.calls, declared.channel_id)
            floor.append(await floor_once(fake, replay.ideal))
            sequential.append(await floor_once(fake, replay.one_by_one))
            ours.append(declared)
            if not quiet:
                print(
                    f"  declare {i + 1}: ready {declared.opening.ready * 1000:.0f} ms, "
                    f"floor {floor[-1].ready * 1000:.0f} ms",
                    flush=True,
                )
    return WarRoomFigures(
        warroom=medians([d.opening for d in ours]),
        floor=medians(floor),
        sequential=medians(sequential),
        ack=statistics.median(d.ack for d in ours),
        declares=declares,
        slack_latency=slack_latency,
    )


def print_figures(figures: WarRoomFigures) -> None:
    header = ("from declare to (median ms)", "warroom", "floor", "ratio", "one by one")
    rows = [header]
    for key in (*MILESTONES, "ready"):
        ours, floor = figures.warroom[key] * 1000, figures.floor[key] * 1000
        rows.append(
            (
                LABELS[key],
                f"{ours:.0f}",
                f"{floor:.0f}",
                f"{ours / floor:.2f}x",
                f"{figures.sequential[key] * 1000:.0f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    print(f"declare ack (median): {figures.ack * 1000:.1f} ms")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: a temp SQLite file)")
    parser.add_argument("--declares", type=int, default=20, help="war rooms opened (default 20)")
    parser.add_argument(
        "--slack-latency", type=float, default=0.05, help="seconds per Slack call (default 0.05)"
    )
    parser.add_argument("--deadline", type=float, default=110.0, help="give up after (s)")
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> int:
    print(
        f"war-room benchmark on {describe_database(args.database_url)}: {args.declares} "
        f"declares, fake Slack latency {args.slack_latency * 1000:.0f} ms",
        flush=True,
    )
    with fresh_database(args.database_url) as url:
        try:
            async with asyncio.timeout(args.deadline):
                figures = await measure(
                    url, declares=args.declares, slack_latency=args.slack_latency, quiet=False
                )
        except TimeoutError:
            print(f"gave up: the benchmark took longer than {args.deadline:.0f} s")
            return 2
        except RuntimeError as exc:
            print(f"failed: {exc}")
            return 1
    print_figures(figures)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
