"""`warroom serve` as users run it, beside a bare Bolt app, each a process of its own, under load
from Debian's `wrk`.

warroom runs exactly as shipped: the real CLI, settings from the environment, its own logging
and access log (to a file, as a service manager would keep it). The baseline is a bare Bolt app
on aiohttp that verifies signatures and only acks, built with warroom's options
(bench_ack.bare_bolt). Both get the same load of pre-signed, unique message events from
`wrk -c 10` (benchmarks/wrk_replay.lua), one after the other in the same run; a fake Slack Web
API runs in this process. Then `/incident declare` acks are timed alone and while 20 war rooms
are opening (Slack slowed to 500 ms a call), and warroom's resident memory is read after start
and after every event is recorded.

Every event acked must be in the timeline exactly once: the run fails (exit 1) otherwise.

    python benchmarks/bench_served.py [--database-url URL] [--events N] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_ack import (  # noqa: E402
    HOST,
    SECRET,
    TOKEN,
    SlackRequests,
    bare_bolt_app,
    bounded,
    describe_database,
    fresh_database,
    incident_room,
    median_ms,
    p99_ms,
    start_fake_slack,
    stored_messages,
)
from bot.app import SLACK_PATH  # noqa: E402
from storage.db import Database  # noqa: E402

CONNECTIONS = 10
WARMUP_EVENTS = 10
SLACK_LATENCY_S = 0.05
# Slow enough that 20 war rooms are still opening while the measured declares are acked.
SLOW_SLACK_LATENCY_S = 0.5
OPENING = 20
# Declares timed alone and while the war rooms open (each), full run and --quick.
DECLARES = 30
QUICK_DECLARES = 5
QUICK_EVENTS = 3_000
FULL_EVENTS = 100_000
START_TIMEOUT_S = 30.0
ROOM_TIMEOUT_S = 30.0
INGEST_TARGET = {"SQLite": 0.6, "PostgreSQL": 0.5}
ACK_P99_TARGET_MS = 50.0
DECLARE_P99_TARGET_MS = {"isolated": 25.0, "opening": 50.0}
MEMORY_TARGET = 1.5

# wrk's script (see its header): replays the pre-signed events, each once, and says when.
WRK_SCRIPT = Path(__file__).resolve().with_name("wrk_replay.lua")
# Events in one run of wrk: each run's events are signed just before it starts.
CHUNK_EVENTS = 25_000
# How long wrk may take to have every event answered before the run gives up on it.
WRK_DEADLINE_S = 1800.0


@dataclass(frozen=True)
class Load:
    """What wrk measured over one or more runs: events, seconds, ack latencies, failures.

    `latencies` is the merged distribution: (latency in ms, share of the events at it).
    """

    events: int
    seconds: float
    latencies: tuple[tuple[float, float], ...]
    failures: int

    @property
    def per_second(self) -> float:
        """Events answered a second."""
        return self.events / self.seconds

    @property
    def p50_ms(self) -> float:
        """Median ack latency."""
        return self.quantile(0.50)

    @property
    def p99_ms(self) -> float:
        """99th percentile ack latency."""
        return self.quantile(0.99)

    def quantile(self, q: float) -> float:
        """The latency below which a share `q` of the events was acked."""
        total = sum(mass for _, mass in self.latencies)
        seen = 0.0
        for value, mass in sorted(self.latencies):
            seen += mass
            if seen >= q * total - 1e-9:
                return value
        return max(value for value, _ in self.latencies)

    @staticmethod
    def merged(loads: Sequence[Load]) -> Load:
        """Several runs as one: their events, time and failures summed, latencies pooled."""
        return Load(
            events=sum(load.events for load in loads),
            seconds=sum(load.seconds for load in loads),
            latencies=tuple(pair for load in loads for pair in load.latencies),
            failures=sum(load.failures for load in loads),
        )


@dataclass(frozen=True)
class ServedFigures:
    """One database's run: both servers' ingest, warroom's declares and memory."""

    database: str
    warroom: Load
    bare: Load
    recorded: int
    declare_isolated: list[float]
    declare_opening: list[float]
    rss_start_mb: float
    rss_end_mb: float
    # CPU seconds (user + system, all threads) each server process spent over its events.
    warroom_cpu_s: float = 0.0
    bare_cpu_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.warroom.per_second / self.bare.per_second

    @property
    def exact(self) -> bool:
        """Every event acked is recorded once, and nothing failed."""
        return (
            self.recorded == self.warroom.events
            and self.warroom.failures == 0
            and self.bare.failures == 0
        )


# -- processes ------------------------------------------------------------------------------------


@dataclass
class Served:
    """A server process and where it answers."""

    process: asyncio.subprocess.Process
    base: str
    log: Path

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far, from /proc."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        # After the command's closing parenthesis: utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory now, from /proc."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        assert match, "no VmRSS in /proc"
        return int(match.group(1)) / 1024


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def running(command: Sequence[str], env: dict[str, str], log: Path) -> AsyncIterator[Served]:
    """Start a server, wait for its /healthz, and stop it (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            *command, "--host", HOST, "--port", str(port), env=env, stdout=out, stderr=out
        )
    served = Served(process, f"http://{HOST}:{port}", log)
    try:
        await _wait_healthy(served)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout=30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_healthy(served: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    async with aiohttp.ClientSession() as http:
        while True:
            if served.process.returncode is not None:
                raise RuntimeError(f"the server exited:\n{served.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server never came up:\n{served.log.read_text()[-2000:]}")
            try:
                async with http.get(served.base + "/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)


def warroom_command() -> list[str]:
    return [sys.executable, "-m", "bot.cli", "serve"]


def bare_command(api_url: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--bare-server", "--api-url", api_url]


def server_env(database_url: str, api_url: str, config: Path) -> dict[str, str]:
    """What a user puts in the environment for `warroom serve`, and nothing of this shell's."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": api_url,
        "DATABASE_URL": database_url,
        "WARROOM_CONFIG": str(config),
    }


# -- load -----------------------------------------------------------------------------------------


def write_events(path: Path, requests: SlackRequests, channel_id: str, count: int) -> None:
    """`count` unique message events into the war room, signed now, one a line for wrk."""
    with path.open("w") as out:
        for _ in range(count):
            signed = requests.message(channel_id)
            headers = signed.headers
            out.write(
                f"{headers['X-Slack-Request-Timestamp']}\t{headers['X-Slack-Signature']}\t"
                f"{signed.body.decode()}\n"
            )


async def replay(
    base: str, requests: SlackRequests, channel_id: str, events: int, tmp: Path
) -> Load:
    """`events` unique message events into `channel_id` through wrk, in runs of at most
    CHUNK_EVENTS, each signed just before it is sent (Slack's signatures are good for five
    minutes, which a slow server could take over 100,000 events)."""
    loads = []
    for start in range(0, events, CHUNK_EVENTS):
        count = min(CHUNK_EVENTS, events - start)
        events_file = tmp / "events.tsv"
        write_events(events_file, requests, channel_id, count)
        loads.append(await wrk(base, events_file, count))
    return Load.merged(loads)


async def wrk(base: str, events_file: Path, count: int) -> Load:
    """Send every event in `events_file` to `base` with wrk; what it measured.

    The time is from the script's first request to its last answer, as the script reports them;
    wrk itself is then interrupted (its own clock would run for the whole -d duration) and its
    summary gives the latencies and failures.
    """
    process = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{CONNECTIONS}", "-d3600s", "--timeout", "10s", "--latency",
        "-s", str(WRK_SCRIPT), base + SLACK_PATH,
        env={**os.environ, "WARROOM_BENCH_REQUESTS": str(events_file)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    assert process.stdout is not None
    output: list[str] = []
    started = answered = None
    try:
        async with asyncio.timeout(WRK_DEADLINE_S):
            while answered is None:
                line = (await process.stdout.readline()).decode()
                if not line:
                    break
                output.append(line)
                if line == "started\n":
                    started = time.perf_counter()
                elif line.startswith("answered "):
                    answered = time.perf_counter()
    except TimeoutError:
        pass
    if process.returncode is None:
        process.send_signal(signal.SIGINT)
    rest, _ = await process.communicate()
    summary = "".join(output) + rest.decode()
    if started is None or answered is None:
        raise RuntimeError(f"wrk did not get every event answered:\n{summary}")
    return parse_wrk(summary, count, answered - started)


def parse_wrk(output: str, count: int, seconds: float) -> Load:
    """wrk's summary as figures; `count` events were answered in `seconds`."""
    failures = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return Load(
        events=count,
        seconds=seconds,
        latencies=_latencies(output, count),
        failures=(int(failures.group(1)) if failures else 0)
        + (sum(int(n) for n in errors.groups()) if errors else 0),
    )


def _latencies(output: str, count: int) -> tuple[tuple[float, float], ...]:
    """The script's quantile lines as (ms, events at that value), each quantile holding the
    events between it and the one before."""
    quantiles = [
        (float(p), int(us))
        for p, us in re.findall(r"^quantile ([\d.]+) (\d+)$", output, re.MULTILINE)
    ]
    if not quantiles:
        raise RuntimeError(f"no latencies in wrk's output:\n{output}")
    pairs, below = [], 0.0
    for p, us in quantiles:
        pairs.append((us / 1000, count * (p - below) / 100))
        below = p
    return tuple(pairs)


async def send_events(
    http: aiohttp.ClientSession, base: str, requests: SlackRequests, channel_id: str, count: int
) -> None:
    """Send `count` message events one at a time, each answered 200."""
    for _ in range(count):
        signed = requests.message(channel_id)
        async with http.post(base + SLACK_PATH, data=signed.body, headers=signed.headers) as reply:
            await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"a message event was answered {reply.status}")


async def declare_acks(
    http: aiohttp.ClientSession, base: str, requests: SlackRequests, titles: Sequence[str]
) -> list[float]:
    """Declare each title in turn; each ack's latency (s)."""
    latencies = []
    for title in titles:
        signed = requests.declare(title)
        started = time.perf_counter()
        async with http.post(base + SLACK_PATH, data=signed.body, headers=signed.headers) as reply:
            await reply.read()
            if reply.status != 200:
                raise RuntimeError(f"declare answered {reply.status}")
        latencies.append(time.perf_counter() - started)
    return latencies


async def room_opened(db: Database, title: str) -> str:
    deadline = time.monotonic() + ROOM_TIMEOUT_S
    while True:
        try:
            return incident_room(db, title)[1]
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


# -- the run --------------------------------------------------------------------------------------


async def run(
    database_url: str, label: str, events: int, declares: int, tmp: Path
) -> ServedFigures:
    """Both servers on one database, under the same load."""
    async with AsyncExitStack() as stack:
        slack = await start_fake_slack(stack, SLACK_LATENCY_S)
        api_url = slack.api_url
        config = tmp / "warroom.yml"
        # One person declares dozens of times here: measured, not limited.
        config.write_text("admins: [U0ADMIN]\ndeclare_limit: null\n")
        env = server_env(database_url, api_url, config)
        warroom = await stack.enter_async_context(
            running(warroom_command(), env, tmp / f"warroom-{label}.log")
        )
        bare = await stack.enter_async_context(
            running(bare_command(api_url), env, tmp / f"bare-{label}.log")
        )
        # Resident memory once it answers, before its first request.
        rss_start = warroom.rss_mb()
        http = await stack.enter_async_context(aiohttp.ClientSession())
        requests = SlackRequests(SECRET, slack.response_url())
        db = Database(database_url)
        stack.callback(db.close)

        # Isolated declares: each room opens before the next is declared.
        isolated = []
        for n in range(declares):
            title = f"Isolated {n}"
            isolated += await declare_acks(http, warroom.base, requests, [title])
            channel_id = await room_opened(db, title)

        # A few events first, one at a time: each server's first event waits on Bolt's one
        # auth.test call, which is start-up, not load.
        for server in (bare, warroom):
            await send_events(http, server.base, requests, channel_id, WARMUP_EVENTS)
        cpu = bare.cpu_seconds()
        bare_load = await replay(bare.base, requests, channel_id, events, tmp)
        bare_cpu = bare.cpu_seconds() - cpu
        cpu = warroom.cpu_seconds()
        warroom_load = await replay(warroom.base, requests, channel_id, events, tmp)
        warroom_cpu = warroom.cpu_seconds() - cpu
        incident_id = incident_room(db, f"Isolated {declares - 1}")[0]
        recorded = stored_messages(db, incident_id) - WARMUP_EVENTS
        rss_end = warroom.rss_mb()

        # Declares while 20 war rooms are opening on a slow Slack.
        slack.latency = SLOW_SLACK_LATENCY_S
        await asyncio.gather(
            *(declare_acks(http, warroom.base, requests, [f"Opening {n}"]) for n in range(OPENING))
        )
        opening = await declare_acks(
            http, warroom.base, requests, [f"During {n}" for n in range(declares)]
        )
        return ServedFigures(
            database=label,
            warroom=warroom_load,
            bare=bare_load,
            recorded=recorded,
            declare_isolated=isolated,
            declare_opening=opening,
            rss_start_mb=rss_start,
            rss_end_mb=rss_end,
            warroom_cpu_s=warroom_cpu,
            bare_cpu_s=bare_cpu,
        )


def rows(figures: ServedFigures) -> list[tuple[str, str, str, str]]:
    """The table's rows for one database: measure, warroom serve, bare Bolt, ratio."""
    w, b = figures.warroom, figures.bare
    return [
        (
            "message events recorded durably",
            f"{w.per_second:,.0f}/s",
            f"{b.per_second:,.0f}/s",
            f"{figures.ratio:.2f}x",
        ),
        (
            "message ack p50 / p99 at that load",
            f"{w.p50_ms:.1f} / {w.p99_ms:.1f} ms",
            f"{b.p50_ms:.1f} / {b.p99_ms:.1f} ms",
            "",
        ),
        (
            "server CPU per 1,000 events",
            f"{1000 * figures.warroom_cpu_s / w.events:.2f} s",
            f"{1000 * figures.bare_cpu_s / b.events:.2f} s",
            f"{figures.warroom_cpu_s / figures.bare_cpu_s:.2f}x" if figures.bare_cpu_s else "",
        ),
        (
            "`/incident declare` ack p50 / p99, isolated",
            f"{median_ms(figures.declare_isolated):.1f} / "
            f"{p99_ms(figures.declare_isolated):.1f} ms",
            "",
            "",
        ),
        (
            f"`/incident declare` ack p50 / p99, {OPENING} war rooms opening",
            f"{median_ms(figures.declare_opening):.1f} / {p99_ms(figures.declare_opening):.1f} ms",
            "",
            "",
        ),
        (
            f"resident memory after {w.events:,} events / after start",
            f"{figures.rss_end_mb:.0f} / {figures.rss_start_mb:.0f} MB",
            "",
            f"{figures.rss_end_mb / figures.rss_start_mb:.2f}x",
        ),
    ]


def verdicts(figures: ServedFigures) -> list[str]:
    """Each target, met or missed."""
    return [
        _verdict(
            f"ingest at least {INGEST_TARGET[figures.database]}x the bare app",
            figures.ratio >= INGEST_TARGET[figures.database],
        ),
        _verdict(
            f"message ack p99 under {ACK_P99_TARGET_MS:.0f} ms",
            figures.warroom.p99_ms < ACK_P99_TARGET_MS,
        ),
        _verdict(
            f"declare ack p99 under {DECLARE_P99_TARGET_MS['isolated']:.0f} ms isolated",
            p99_ms(figures.declare_isolated) < DECLARE_P99_TARGET_MS["isolated"],
        ),
        _verdict(
            f"declare ack p99 under {DECLARE_P99_TARGET_MS['opening']:.0f} ms while rooms open",
            p99_ms(figures.declare_opening) < DECLARE_P99_TARGET_MS["opening"],
        ),
        _verdict(
            f"memory under {MEMORY_TARGET}x its start",
            figures.rss_end_mb < MEMORY_TARGET * figures.rss_start_mb,
        ),
    ]


def _verdict(what: str, met: bool) -> str:
    return f"{'met' if met else 'MISSED'}: {what}"


def print_figures(figures: ServedFigures) -> None:
    print(f"\n{figures.database}: warroom serve recorded {figures.recorded:,} of "
          f"{figures.warroom.events:,} events")  # fmt: skip
    print("| measure | warroom serve | bare Bolt | ratio |\n|---|---|---|---|")
    for row in rows(figures):
        print("| " + " | ".join(row) + " |")
    for line in verdicts(figures):
        print(f"  {line}")


async def measure(
    database_url: str | None,
    label: str,
    events: int = FULL_EVENTS,
    declares: int = DECLARES,
    logs: Path | None = None,
) -> ServedFigures:
    """One database's figures (a temp SQLite file when `database_url` is None); the servers'
    logs are kept in `logs` when given."""
    with (
        tempfile.TemporaryDirectory(prefix="warroom-served-") as tmp,
        fresh_database(database_url) as url,
    ):
        return await run(url, label, events, declares, logs or Path(tmp))


# -- the baseline server (this file, run with --bare-server) -------------------------------------


def serve_bare(api_url: str, host: str, port: int) -> None:
    """The bare Bolt app as its own process, as a user would run one: no logging set up."""
    web.run_app(bare_bolt_app(api_url), host=host, port=port, print=None)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a temp SQLite file)")
    parser.add_argument(
        "--events",
        type=bounded(int, 100, 1_000_000),
        help="message events sent to each server (default 100,000; 3,000 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: {QUICK_EVENTS:,} events, {QUICK_DECLARES} declares of each kind",
    )
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this folder")
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--api-url", help=argparse.SUPPRESS)
    parser.add_argument("--host", default=HOST, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.bare_server:
        serve_bare(args.api_url, args.host, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)")
        return 2
    events = args.events or (QUICK_EVENTS if args.quick else FULL_EVENTS)
    declares = QUICK_DECLARES if args.quick else DECLARES
    label = "SQLite" if args.database_url is None else "PostgreSQL"
    print(f"{label}: {describe_database(args.database_url)}; {events:,} events, "
          f"{CONNECTIONS} connections", flush=True)  # fmt: skip
    if args.logs is not None:
        args.logs.mkdir(parents=True, exist_ok=True)
    figures = asyncio.run(measure(args.database_url, label, events, declares, args.logs))
    print_figures(figures)
    return 0 if figures.exact else 1


if __name__ == "__main__":
    sys.exit(main())
