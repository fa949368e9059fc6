"""Ack latency and durable throughput of warroom's /slack/events, beside a bare Bolt app.

Both servers run in this process on 127.0.0.1, with the fake Slack Web API from the tests; the
load comes from a second process so that the client does not eat the servers' CPU. Prints a table;
exits 1 when a request failed or a recorded message is missing, 2 when the deadline passed.

    python benchmarks/bench_ack.py [--database-url URL] [--requests N] [--events M]
                                   [--concurrency C] [--slack-latency S] [--settle-every K]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import col, func, select

from bot.app import SLACK_PATH, Services, build_services, build_web_app
from bot.config import Settings, WarroomConfig
from bot.demo.standin.slack_api import FakeSlack
from storage.db import Database, build_engine, is_sqlite
from storage.migrate import upgrade
from storage.models import Incident, TimelineEvent

N = TypeVar("N", int, float)
HOST = "127.0.0.1"
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
TEAM = "T0BENCH"
USER = "U0ANA"
WARMUP = 5
REQUEST_TIMEOUT_S = 10.0
P99_TARGET_MS = 50.0
THROUGHPUT_TARGET = 0.5


# -- what Slack sends -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """One request as Slack sends it: the body and its signed headers."""

    body: bytes
    headers: dict[str, str]


class SlackRequests:
    """Builds signed slash commands and message events; every message gets a fresh ts."""

    def __init__(self, secret: str, response_url: str) -> None:
        self.verifier = SignatureVerifier(secret)
        self.response_url = response_url
        self._base = int(time.time()) - 86_400
        self._seq = itertools.count(1)

    def sign(self, body: str, content_type: str) -> SignedRequest:
        ts = str(int(time.time()))
        signature = self.verifier.generate_signature(timestamp=ts, body=body)
        assert signature is not None, "a signing secret is set"
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature,
        }
        return SignedRequest(body.encode(), headers)

    def declare(self, title: str) -> SignedRequest:
        body = {
            "command": "/incident",
            "text": f"declare {title} sev2",
            "user_id": USER,
            "user_name": "ana",
            "channel_id": "C0GENERAL",
            "channel_name": "general",
            "team_id": TEAM,
            "api_app_id": "A0BENCH",
            "response_url": self.response_url,
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
        }
        return self.sign(urlencode(body), "application/x-www-form-urlencoded")

    def message(self, channel_id: str) -> SignedRequest:
        n = next(self._seq)
        ts = f"{self._base + n}.{n % 1_000_000:06d}"
        event = {
            "type": "message",
            "channel": channel_id,
            "user": USER,
            "ts": ts,
            "event_ts": ts,
            "text": f"bench message {n}",
            "channel_type": "channel",
        }
        body = {
            "token": "x",
            "team_id": TEAM,
            "api_app_id": "A0BENCH",
            "type": "event_callback",
            "event_id": f"Ev{n:010d}",
            "event_time": int(time.time()),
            "event": event,
            "authorizations": [{"team_id": TEAM, "user_id": "UBOT0001", "is_bot": True}],
        }
        return self.sign(json.dumps(body), "application/json")


# -- the load generator (runs in its own process) -------------------------------------------------


@dataclass(frozen=True)
class Run:
    """What one batch of requests took: each request's latency (s), the wall time, the failures."""

    latencies: list[float]
    wall: float
    failures: int


def drive(base: str, requests: Sequence[SignedRequest], concurrency: int) -> Run:
    """Send `requests` to `base`'s Slack route, `concurrency` in flight at a time."""
    return asyncio.run(_drive(base, requests, concurrency))


async def _drive(base: str, requests: Sequence[SignedRequest], concurrency: int) -> Run:
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    results: list[tuple[float, int]] = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        # Connect first, so no measured request pays for a TCP handshake.
        await asyncio.gather(*(_get(http, base + "/healthz") for _ in range(concurrency)))
        pending = iter(requests)
        start = time.perf_counter()
        await asyncio.gather(
            *(_worker(http, base + SLACK_PATH, pending, results) for _ in range(concurrency))
        )
        wall = time.perf_counter() - start
    failures = sum(1 for _, status in results if status != 200)
    return Run([latency for latency, _ in results], wall, failures)


async def _get(http: aiohttp.ClientSession, url: str) -> None:
    async with http.get(url) as response:
        await response.read()


async def _worker(
    http: aiohttp.ClientSession,
    url: str,
    pending: Iterator[SignedRequest],
    results: list[tuple[float, int]],
) -> None:
    for request in pending:
        start = time.perf_counter()
        status = await _post(http, url, request)
        results.append((time.perf_counter() - start, status))


async def _post(http: aiohttp.ClientSession, url: str, request: SignedRequest) -> int:
    """The response's status, or 0 when there was no response."""
    try:
        async with http.post(url, data=request.body, headers=request.headers) as response:
            await response.read()
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return 0


class LoadClient:
    """Hands batches to the load generator process and waits for its figures."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool

    async def send(self, base: str, requests: Sequence[SignedRequest], concurrency: int = 1) -> Run:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, drive, base, list(requests), concurrency)


# -- the servers ----------------------------------------------------------------------------------


@dataclass
class Target:
    """A server under test, and how to wait for the work it does after its acks."""

    name: str
    base: str
    settle: Callable[[], Awaitable[None]]
    failures: int = 0


async def serve(stack: AsyncExitStack, app: web.Application) -> str:
    """Serve `app` on a free port of 127.0.0.1 until `stack` closes; its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, HOST, 0).start()
    port = runner.addresses[0][1]
    return f"http://{HOST}:{port}"


def bare_bolt(api_url: str) -> AsyncApp:
    """The baseline's Bolt app: the same secret and options as warroom's, listeners that only
    ack."""
    bolt = AsyncApp(
        signing_secret=SECRET,
        client=AsyncWebClient(token=TOKEN, base_url=api_url),
        process_before_response=True,
        # Like for like: warroom switches these per-request helpers off (bot/app.py), so the
        # baseline does too; with them on, the baseline would be slower and the ratio flattered.
        attaching_conversation_kwargs_enabled=False,
        attaching_function_token_enabled=False,
    )

    async def ack_only(ack: AsyncAck) -> None:
        await ack()

    bolt.command("/incident")(ack_only)
    bolt.event("message")(ack_only)
    return bolt


def bare_bolt_app(api_url: str) -> web.Application:
    """The baseline server: the bare Bolt app behind the same aiohttp route as warroom's."""
    bolt = bare_bolt(api_url)

    async def slack_events(request: web.Request) -> web.Response:
        return await to_aiohttp_response(await bolt.async_dispatch(await to_bolt_request(request)))

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post(SLACK_PATH, slack_events)
    app.router.add_get("/healthz", healthz)
    return app


def warroom_app(
    database_url: str, api_url: str, config: WarroomConfig | None = None
) -> tuple[web.Application, Services]:
    """The real warroom server, as `warroom serve` builds it."""
    settings = Settings(
        _env_file=None,
        slack_bot_token=TOKEN,
        slack_signing_secret=SECRET,
        slack_api_url=api_url,
        database_url=database_url,
    )
    # No announcement channel: posts into one channel are paced at about one a second, so with
    # one every declare, settling would take a second a declare. No ack waits for a post.
    # One person declares hundreds of times here: measured, not limited.
    config = config or WarroomConfig(admins=["U0ADMIN"], declare_limit=None)
    services = build_services(settings, config)
    return build_web_app(settings, config, services=services), services


async def start_fake_slack(stack: AsyncExitStack, latency: float) -> FakeSlack:
    fake = FakeSlack()
    for user_id, name in (("U0ANA", "ana"), ("U0BO", "bo"), ("U0ADMIN", "root")):
        fake.add_user(user_id, name)
    fake.add_channel("C0GENERAL", "general")
    fake.add_channel("C0ANNOUNCE", "incidents")
    await fake.start()
    stack.push_async_callback(fake.close)
    fake.latency = latency
    return fake


# -- databases ------------------------------------------------------------------------------------


@contextmanager
def fresh_database(url: str | None) -> Iterator[str]:
    """A migrated database: a temp SQLite file, the given SQLite URL, or a PostgreSQL schema of
    its own that is dropped afterwards."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="warroom-bench-") as tmp:
            yield migrated(f"sqlite:///{Path(tmp) / 'warroom.db'}")
        return
    if is_sqlite(url):
        yield migrated(url)
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = build_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA {schema}"))
        separator = "&" if "?" in url else "?"
        yield migrated(f"{url}{separator}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def migrated(url: str) -> str:
    db = Database(url)
    try:
        upgrade(db.engine)
    finally:
        db.close()
    return url


def incident_room(db: Database, title: str) -> tuple[int, str]:
    """The id and war-room channel of the incident declared with `title`."""
    with db.reading() as session:
        incident = session.exec(select(Incident).where(Incident.title == title)).one()
        incident_id, channel_id = incident.id, incident.channel_id
    if incident_id is None or channel_id is None:
        raise RuntimeError(f"the war room for {title!r} was not opened")
    return incident_id, channel_id


def stored_messages(db: Database, incident_id: int) -> int:
    """How many 'message' entries the incident's timeline holds."""
    with db.reading() as session:
        query = (
            select(func.count())
            .select_from(TimelineEvent)
            .where(col(TimelineEvent.incident_id) == incident_id)
            .where(col(TimelineEvent.kind) == "message")
        )
        return int(session.exec(query).one())


# -- measuring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """The same requests for every target."""

    warmup: list[SignedRequest]
    declares: list[SignedRequest]
    messages: list[SignedRequest]
    burst: list[SignedRequest]


@dataclass(frozen=True)
class Figures:
    declare: list[float]
    message: list[float]
    events_per_s: float


def chunks(items: Sequence[SignedRequest], size: int) -> Iterator[Sequence[SignedRequest]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def latencies(
    client: LoadClient, target: Target, requests: Sequence[SignedRequest], settle_every: int
) -> list[float]:
    """Sequential request->response times; background work is waited out between batches."""
    measured: list[float] = []
    for batch in chunks(requests, settle_every):
        run = await client.send(target.base, batch)
        measured += run.latencies
        target.failures += run.failures
        await target.settle()
    return measured


async def throughput(
    client: LoadClient, target: Target, requests: Sequence[SignedRequest], concurrency: int
) -> float:
    """Requests answered per second with `concurrency` in flight."""
    run = await client.send(target.base, requests, concurrency)
    target.failures += run.failures
    await target.settle()
    return len(requests) / run.wall


async def measure(
    client: LoadClient, targets: Sequence[Target], work: Workload, args: argparse.Namespace
) -> list[Figures]:
    """Each phase runs on every target in turn, so that all see much the same machine load."""
    for target in targets:
        await latencies(client, target, work.warmup, args.settle_every)
    declares = [await latencies(client, t, work.declares, args.settle_every) for t in targets]
    messages = [await latencies(client, t, work.messages, args.settle_every) for t in targets]
    rates = [await throughput(client, t, work.burst, args.concurrency) for t in targets]
    return [Figures(*figures) for figures in zip(declares, messages, rates, strict=True)]


async def first_ack(client: LoadClient, target: Target, request: SignedRequest) -> float:
    """The first request a fresh server answers (Bolt calls auth.test before it acks)."""
    return (await latencies(client, target, [request], 1))[0]


async def open_room(
    client: LoadClient, target: Target, db: Database, slack: SlackRequests, title: str
) -> tuple[int, str]:
    """Declare an incident on warroom and wait for its war room."""
    await latencies(client, target, [slack.declare(title)], 1)
    return incident_room(db, title)


def workload(
    slack: SlackRequests, run_id: str, latency_room: str, burst_room: str, args: argparse.Namespace
) -> Workload:
    warmup = [slack.declare(f"Bench warmup {run_id} {i}") for i in range(WARMUP)]
    warmup += [slack.message(latency_room) for _ in range(WARMUP)]
    return Workload(
        warmup=warmup,
        declares=[slack.declare(f"Bench declare {run_id} {i}") for i in range(args.requests)],
        messages=[slack.message(latency_room) for _ in range(args.requests)],
        burst=[slack.message(burst_room) for _ in range(args.events)],
    )


# -- reporting ------------------------------------------------------------------------------------


def median_ms(values: Sequence[float]) -> float:
    return statistics.median(values) * 1000


def p99_ms(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def table_rows(app: Figures, bare: Figures) -> list[tuple[str, ...]]:
    rows = latency_rows("declare ack", app.declare, bare.declare)
    rows += latency_rows("message ack", app.message, bare.message)
    rows.append(throughput_row(app.events_per_s, bare.events_per_s))
    return rows


def latency_rows(label: str, ours: list[float], theirs: list[float]) -> list[tuple[str, ...]]:
    a, b = median_ms(ours), median_ms(theirs)
    median = (f"{label} median (ms)", f"{a:.2f}", f"{b:.2f}", f"{a / b:.1f}x", "", "")
    a, b = p99_ms(ours), p99_ms(theirs)
    target, result = f"< {P99_TARGET_MS:.0f} ms", verdict(a < P99_TARGET_MS)
    p99 = (f"{label} p99 (ms)", f"{a:.2f}", f"{b:.2f}", f"{a / b:.1f}x", target, result)
    return [median, p99]


def throughput_row(ours: float, theirs: float) -> tuple[str, ...]:
    ratio = ours / theirs
    target, result = f">= {THROUGHPUT_TARGET}x bare", verdict(ratio >= THROUGHPUT_TARGET)
    return ("message events/s", f"{ours:.0f}", f"{theirs:.0f}", f"{ratio:.2f}x", target, result)


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    header = ("metric", "warroom", "bare Bolt", "ratio", "target", "result")
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:4], strict=True)]
        cells += [cell.ljust(width) for cell, width in zip(row[4:], widths[4:], strict=True)]
        print("  ".join(cells).rstrip())


def describe(database_url: str | None, args: argparse.Namespace) -> str:
    where = describe_database(database_url)
    return (
        f"warroom ack benchmark on {where}: {args.requests} sequential requests per kind, "
        f"{args.events} events at concurrency {args.concurrency}, fake Slack latency "
        f"{args.slack_latency * 1000:.0f} ms, background work settled every "
        f"{args.settle_every} requests; load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs"
    )


def describe_database(url: str | None) -> str:
    return "SQLite (temp file)" if url is None else _redacted(url)


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- the run --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AckResult:
    """One run's figures, warroom's beside the bare app's, and its correctness checks."""

    warroom: Figures
    bare: Figures
    cold: tuple[float, float]  # the first ack after start: warroom, bare Bolt
    stored: int  # 'message' timeline rows for the burst's incident
    expected: int
    failures: dict[str, int]  # non-200 responses by server

    @property
    def correct(self) -> bool:
        return self.stored == self.expected and not any(self.failures.values())


async def run(database_url: str, args: argparse.Namespace) -> AckResult:
    """Serve warroom and the bare app on a migrated database and measure both."""
    async with AsyncExitStack() as stack:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        stack.callback(pool.shutdown)
        client = LoadClient(pool)
        fake = await start_fake_slack(stack, args.slack_latency)
        app, services = warroom_app(database_url, fake.api_url)
        warroom = Target("warroom", await serve(stack, app), services.tasks.join)
        bare = Target("bare Bolt", await serve(stack, bare_bolt_app(fake.api_url)), _nothing)

        targets = (warroom, bare)
        slack = SlackRequests(SECRET, fake.response_url("bench"))
        cold = [await first_ack(client, t, slack.message("C0GENERAL")) for t in targets]
        run_id = uuid.uuid4().hex[:6]
        _, latency_room = await open_room(client, warroom, services.db, slack, f"Room {run_id}")
        burst_id, burst_room = await open_room(
            client, warroom, services.db, slack, f"Burst {run_id}"
        )
        work = workload(slack, run_id, latency_room, burst_room, args)

        app_figures, bare_figures = await measure(client, targets, work, args)
        stored = stored_messages(services.db, burst_id)
    return AckResult(
        warroom=app_figures,
        bare=bare_figures,
        cold=(cold[0], cold[1]),
        stored=stored,
        expected=len(work.burst),
        failures={t.name: t.failures for t in targets},
    )


async def benchmark(database_url: str, args: argparse.Namespace) -> int:
    result = await run(database_url, args)
    print_table(table_rows(result.warroom, result.bare))
    print()
    print(
        f"first ack after start (waits for Bolt's one auth.test call): "
        f"warroom {result.cold[0] * 1000:.1f} ms, bare Bolt {result.cold[1] * 1000:.1f} ms"
    )
    return report_correctness(result)


def report_correctness(result: AckResult) -> int:
    durable = result.stored == result.expected
    print(
        f"durably recorded: {result.stored} 'message' timeline rows for the burst incident "
        f"(expected {result.expected}) -> {'ok' if durable else 'WRONG'}"
    )
    failures = ", ".join(f"{name} {count}" for name, count in result.failures.items())
    print(f"non-200 responses: {failures}")
    return 0 if result.correct else 1


async def _nothing() -> None:
    return None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: a temp SQLite file); "
        "PostgreSQL gets a fresh schema, dropped afterwards",
    )
    parser.add_argument(
        "--requests",
        type=bounded(int, 2, 100_000),
        default=300,
        help="sequential requests per latency figure (default 300)",
    )
    parser.add_argument(
        "--events",
        type=bounded(int, 1, 1_000_000),
        default=2000,
        help="message events in the throughput burst (default 2000)",
    )
    parser.add_argument(
        "--concurrency",
        type=bounded(int, 1, 256),
        default=16,
        help="requests in flight during the burst (default 16)",
    )
    parser.add_argument(
        "--slack-latency",
        type=float,
        default=0.05,
        help="seconds the fake Slack Web API takes per call (default 0.05)",
    )
    parser.add_argument(
        "--settle-every",
        type=bounded(int, 1, 100_000),
        default=10,
        help="wait for background work after this many requests (default 10)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=110.0,
        help="give up after this many seconds (default 110)",
    )
    return parser.parse_args(argv)


def bounded(kind: Callable[[str], N], low: N, high: N) -> Callable[[str], N]:
    """An argparse type: `kind` of the value, refused unless between `low` and `high`."""

    def parse(value: str) -> N:
        number = kind(value)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"{value} is not between {low} and {high}")
        return number

    return parse


async def main_async(args: argparse.Namespace) -> int:
    print(describe(args.database_url, args), flush=True)
    with fresh_database(args.database_url) as url:
        try:
            async with asyncio.timeout(args.deadline):
                return await benchmark(url, args)
        except TimeoutError:
            print(f"gave up: the benchmark took longer than {args.deadline:.0f} s")
            return 2


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
