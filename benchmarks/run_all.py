"""Every benchmark on SQLite and on PostgreSQL, printed as one Markdown table beside baselines.

Runs, in turn on a temp SQLite file and on a fresh schema of the PostgreSQL database: the ack
benchmark (bench_ack), `warroom serve` under wrk (bench_served), the war-room benchmark
(bench_warroom) and the export benchmark (bench_export). Rows measured against the server in
this process start `in-process:`, those against `warroom serve` as a process of its own
`served:`. Each figure is shown beside the baseline measured in the same run, with the ratio.
When PostgreSQL cannot be reached its column says why. Exits 1 when a correctness check failed
(a request not answered 200, a message not stored exactly once, a war room not opened), 2 when a
benchmark passed its deadline.

    python benchmarks/run_all.py [--quick] [--database-url URL | --sqlite-only]
                                 [--only ack|served|warroom|export ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_ack, bench_export, bench_served, bench_warroom  # noqa: E402
from benchmarks.bench_ack import describe_database, fresh_database, median_ms, p99_ms  # noqa: E402
from storage.db import build_engine  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DATABASES = ("SQLite", "PostgreSQL")
MEASURES = ("ack", "served", "warroom", "export")
# bench_served replays 100,000 events into each of two servers: longer than the others.
SERVED_DEADLINE_S = 900.0
EXPORT_FORMATS = {"json": "JSON", "csv": "CSV", "md": "Markdown", "html": "HTML"}

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    requests: int  # sequential requests behind each ack figure
    events: int  # message events in the throughput burst
    declares: int  # war rooms opened
    export_events: int  # events exported
    served_events: int  # message events replayed into `warroom serve` and the bare Bolt process
    served_declares: int  # declares timed by bench_served, alone and while war rooms open


FULL = Sizes(
    requests=300,
    events=2000,
    declares=20,
    export_events=100_000,
    served_events=bench_served.FULL_EVENTS,
    served_declares=bench_served.DECLARES,
)
QUICK = Sizes(
    requests=30,
    events=200,
    declares=5,
    export_events=10_000,
    served_events=bench_served.QUICK_EVENTS,
    served_declares=bench_served.QUICK_DECLARES,
)


@dataclass
class Results:
    """What each benchmark returned, by database; a reason where a database was not run."""

    ack: dict[str, bench_ack.AckResult] = field(default_factory=dict)
    served: dict[str, bench_served.ServedFigures] = field(default_factory=dict)
    warroom: dict[str, bench_warroom.WarRoomFigures] = field(default_factory=dict)
    export: dict[str, bench_export.ExportFigures] = field(default_factory=dict)
    not_run: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    timed_out: bool = False


# -- running ----------------------------------------------------------------------------------


def unreachable(url: str) -> str | None:
    """Why PostgreSQL at `url` cannot be used, or None when it answers."""
    separator = "&" if "?" in url else "?"
    try:
        engine = build_engine(f"{url}{separator}connect_timeout=3")
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as exc:  # any failure to connect means the column is not run
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{describe_database(url)} unreachable: {first[:120]}"
    return None


def timed(label: str, work: Callable[[], T]) -> T:
    print(f"  {label} ...", end="", flush=True)
    started = time.perf_counter()
    try:
        return work()
    finally:
        print(f" {time.perf_counter() - started:.0f} s", flush=True)


def run_ack(url: str, sizes: Sizes, args: argparse.Namespace) -> bench_ack.AckResult:
    options = bench_ack.parse_args(
        [
            f"--requests={sizes.requests}",
            f"--events={sizes.events}",
            f"--slack-latency={args.slack_latency}",
        ]
    )

    async def go() -> bench_ack.AckResult:
        async with asyncio.timeout(args.deadline):
            return await bench_ack.run(url, options)

    return asyncio.run(go())


def run_served(
    url: str, database: str, sizes: Sizes, args: argparse.Namespace
) -> bench_served.ServedFigures:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")

    async def go() -> bench_served.ServedFigures:
        async with asyncio.timeout(max(args.deadline, SERVED_DEADLINE_S)):
            with tempfile.TemporaryDirectory(prefix="warroom-served-") as tmp:
                return await bench_served.run(
                    url, database, sizes.served_events, sizes.served_declares, Path(tmp)
                )

    return asyncio.run(go())


def run_warroom(url: str, sizes: Sizes, args: argparse.Namespace) -> bench_warroom.WarRoomFigures:
    async def go() -> bench_warroom.WarRoomFigures:
        async with asyncio.timeout(args.deadline):
            return await bench_warroom.measure(
                url, declares=sizes.declares, slack_latency=args.slack_latency
            )

    return asyncio.run(go())


def run_all(
    urls: dict[str, str | None], sizes: Sizes, args: argparse.Namespace, results: Results
) -> None:
    """Each measure on each database in turn, so both see much the same machine load."""
    for measure in args.only or MEASURES:
        for database, url in urls.items():
            if database in results.not_run:
                continue
            label = f"{measure} on {database}"
            try:
                with fresh_database(url) as migrated:
                    if measure == "ack":
                        ack = timed(label, lambda: run_ack(migrated, sizes, args))
                        results.ack[database] = ack
                        if not ack.correct:
                            results.failed.append(f"{label}: {ack_problem(ack)}")
                    elif measure == "served":
                        served = timed(label, partial(run_served, migrated, database, sizes, args))
                        results.served[database] = served
                        if not served.exact:
                            results.failed.append(f"{label}: {served_problem(served)}")
                    elif measure == "warroom":
                        results.warroom[database] = timed(
                            label, lambda: run_warroom(migrated, sizes, args)
                        )
                    else:
                        results.export[database] = timed(
                            label,
                            lambda: bench_export.run(
                                migrated, sizes.export_events, tuple(EXPORT_FORMATS), (False,)
                            ),
                        )
            except TimeoutError:
                results.timed_out = True
                results.failed.append(f"{label}: gave up after {args.deadline:.0f} s")
            except (RuntimeError, SystemExit) as exc:
                results.failed.append(f"{label}: {exc}")
            except Exception as exc:  # one broken benchmark must not lose the others' figures
                traceback.print_exc()
                results.failed.append(f"{label}: {type(exc).__name__}: {exc}")


def ack_problem(result: bench_ack.AckResult) -> str:
    failures = ", ".join(f"{name} {count}" for name, count in result.failures.items())
    return (
        f"{result.stored} of {result.expected} burst messages stored; non-200 responses: {failures}"
    )


def served_problem(figures: bench_served.ServedFigures) -> str:
    return (
        f"{figures.recorded} of {figures.warroom.events} events recorded; failed requests: "
        f"warroom {figures.warroom.failures}, bare {figures.bare.failures}"
    )


# -- the table --------------------------------------------------------------------------------

Row = tuple[str, str, str, str, str]


class Table:
    """Rows of measure | SQLite | PostgreSQL | baseline | ratio; a database not run says so."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(
        self,
        label: str,
        figures: dict[str, tuple[float, float]],
        fmt: Callable[[float], str],
        unit: str,
        baseline_name: str,
        ratio_digits: int = 2,
    ) -> None:
        """`figures` maps a database to (its figure, the baseline measured beside it)."""
        cells: list[str] = []
        for database in DATABASES:
            if database in figures:
                cells.append(f"{fmt(figures[database][0])}{unit}")
            else:
                cells.append("not run")
        ran = [d for d in DATABASES if d in figures]
        baselines = " / ".join(fmt(figures[d][1]) for d in ran)
        ratios = " / ".join(f"{figures[d][0] / figures[d][1]:.{ratio_digits}f}x" for d in ran)
        baseline = f"{baseline_name} {baselines}{unit}" if ran else "not run"
        self.rows.append((label, cells[0], cells[1], baseline, ratios or "not run"))

    def add_alone(
        self, label: str, figures: dict[str, str], baseline: str = "", ratio: str = ""
    ) -> None:
        """A row whose cells are already written, for a measure without a baseline."""
        cells = [figures.get(database, "not run") for database in DATABASES]
        self.rows.append((label, cells[0], cells[1], baseline, ratio))

    def markdown(self) -> str:
        header: Row = ("measure", "SQLite", "PostgreSQL", "baseline", "ratio")
        widths = [max(len(row[i]) for row in (header, *self.rows)) for i in range(len(header))]

        def line(row: Sequence[str]) -> str:
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            return "| " + " | ".join(cells) + " |"

        rule = "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths))
        return "\n".join([line(header), rule + "|", *(line(row) for row in self.rows)])


def ms(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def whole(value: float) -> str:
    return f"{value:,.0f}"


def seconds(value: float) -> str:
    return f"{value:.2f}"


def ack_rows(table: Table, results: dict[str, bench_ack.AckResult]) -> None:
    if not results:
        return
    for label, pick in (("`/incident declare` ack", "declare"), ("message event ack", "message")):
        for stat, fn in (("median", median_ms), ("p99", p99_ms)):
            table.add(
                f"in-process: {label}, {stat}",
                {
                    d: (fn(getattr(r.warroom, pick)), fn(getattr(r.bare, pick)))
                    for d, r in results.items()
                },
                ms,
                " ms",
                "bare Bolt",
                1,
            )
    table.add(
        "in-process: message events recorded durably",
        {d: (r.warroom.events_per_s, r.bare.events_per_s) for d, r in results.items()},
        whole,
        "/s",
        "bare Bolt acks",
    )


def served_rows(table: Table, results: dict[str, bench_served.ServedFigures]) -> None:
    if not results:
        return
    table.add(
        "served: message events recorded durably",
        {d: (r.warroom.per_second, r.bare.per_second) for d, r in results.items()},
        whole,
        "/s",
        "bare Bolt",
    )
    for stat, pick in (("median", "p50_ms"), ("p99", "p99_ms")):
        table.add(
            f"served: message event ack under that load, {stat}",
            {d: (getattr(r.warroom, pick), getattr(r.bare, pick)) for d, r in results.items()},
            ms,
            " ms",
            "bare Bolt",
            1,
        )
    table.add(
        "served: server CPU per 1,000 events",
        {
            d: (1000 * r.warroom_cpu_s / r.warroom.events, 1000 * r.bare_cpu_s / r.bare.events)
            for d, r in results.items()
        },
        seconds,
        " s",
        "bare Bolt",
    )
    for when, pick in (
        ("isolated", "declare_isolated"),
        ("while 20 war rooms open", "declare_opening"),
    ):
        for stat, fn in (("median", median_ms), ("p99", p99_ms)):
            table.add_alone(
                f"served: `/incident declare` ack {when}, {stat}",
                {d: f"{ms(fn(getattr(r, pick)))} ms" for d, r in results.items()},
            )
    events = next(iter(results.values())).warroom.events
    table.add(
        f"served: resident memory after {events:,} events",
        {d: (r.rss_end_mb, r.rss_start_mb) for d, r in results.items()},
        whole,
        " MB",
        "after start",
    )


def warroom_rows(table: Table, results: dict[str, bench_warroom.WarRoomFigures]) -> None:
    if not results:
        return
    for key in (*bench_warroom.MILESTONES, "ready"):
        table.add(
            f"in-process: declare → {bench_warroom.LABELS[key]}",
            {d: (r.warroom[key] * 1000, r.floor[key] * 1000) for d, r in results.items()},
            whole,
            " ms",
            "floor",
        )


def export_rows(table: Table, results: dict[str, bench_export.ExportFigures]) -> None:
    if not results:
        return
    events = next(iter(results.values())).events
    for fmt, name in EXPORT_FORMATS.items():
        table.add(
            f"in-process: export {events:,} events, {name}",
            {d: (r.exports[fmt].seconds, r.hold_all.seconds) for d, r in results.items()},
            seconds,
            " s",
            "load all",
        )
    table.add(
        "in-process: export peak memory, worst format",
        {
            d: (max(m.peak_mb for m in r.exports.values()), r.import_only.peak_mb)
            for d, r in results.items()
        },
        whole,
        " MB",
        "import only",
    )


def notes(results: Results) -> list[str]:
    lines = []
    for database, reason in results.not_run.items():
        lines.append(f"- {database} not run: {reason}.")
    if len([d for d in DATABASES if d not in results.not_run]) == 2:
        lines.append("- Baseline and ratio cells with two values: SQLite run / PostgreSQL run.")
    for database, ack in results.ack.items():
        p99 = p99_ms(ack.warroom.declare), p99_ms(ack.warroom.message)
        rate = ack.warroom.events_per_s / ack.bare.events_per_s
        lines.append(
            f"- {database}: targets ack p99 < {bench_ack.P99_TARGET_MS:.0f} ms "
            f"{verdict(max(p99) < bench_ack.P99_TARGET_MS)}, throughput >= "
            f"{bench_ack.THROUGHPUT_TARGET}x bare {verdict(rate >= bench_ack.THROUGHPUT_TARGET)}; "
            f"burst messages stored {ack.stored} of {ack.expected}; first ack after start "
            f"{ack.cold[0] * 1000:.0f} ms (bare {ack.cold[1] * 1000:.0f} ms)."
        )
    for database, served in results.served.items():
        met = "; ".join(bench_served.verdicts(served))
        lines.append(
            f"- {database}, served: {served.recorded:,} of {served.warroom.events:,} events "
            f"recorded exactly once; targets: {met}."
        )
    for database, room in results.warroom.items():
        lines.append(
            f"- {database}: war room ready {room.warroom['ready'] * 1000:.0f} ms (median of "
            f"{room.declares}); the same calls one by one take "
            f"{room.sequential['ready'] * 1000:.0f} ms; fake Slack "
            f"{room.slack_latency * 1000:.0f} ms a call."
        )
    for database, export in results.export.items():
        lines.append(
            f"- {database}: holding all {export.events:,} events takes "
            f"{export.hold_all.peak_mb:.0f} MB; seeding took {export.seeded_s:.0f} s."
        )
    for failure in results.failed:
        lines.append(f"- FAILED {failure}")
    return lines


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def header(sizes: Sizes, args: argparse.Namespace) -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return (
        f"warroom benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, commit {commit}"
        f"{' (quick)' if args.quick else ''}: {sizes.requests} requests per ack figure, "
        f"{sizes.events} events in the burst, {sizes.served_events:,} events served, "
        f"{sizes.declares} war rooms, "
        f"{sizes.export_events:,} events exported; fake Slack {args.slack_latency * 1000:.0f} ms "
        f"a call; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


# -- the command ------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("WARROOM_TEST_DATABASE_URL") or DEFAULT_POSTGRES,
        help="PostgreSQL URL; each benchmark gets a fresh schema, dropped afterwards "
        f"(default: $WARROOM_TEST_DATABASE_URL or {DEFAULT_POSTGRES})",
    )
    parser.add_argument("--sqlite-only", action="store_true", help="leave PostgreSQL out")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smaller sizes for a smoke test ({QUICK.requests} requests, {QUICK.events} events, "
        f"{QUICK.declares} war rooms, {QUICK.export_events:,} exported)",
    )
    parser.add_argument(
        "--only", action="append", choices=MEASURES, help="run only this measure (repeatable)"
    )
    parser.add_argument("--requests", type=int, help="sequential requests per ack figure")
    parser.add_argument("--events", type=int, help="message events in the throughput burst")
    parser.add_argument("--declares", type=int, help="war rooms opened")
    parser.add_argument(
        "--served-events", type=int, help="message events replayed into `warroom serve`"
    )
    parser.add_argument("--export-events", type=int, help="events exported")
    parser.add_argument(
        "--slack-latency", type=float, default=0.05, help="seconds per Slack call (default 0.05)"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=300.0,
        help="give up on one benchmark after this many seconds (default 300)",
    )
    return parser.parse_args(argv)


def sizes_from(args: argparse.Namespace) -> Sizes:
    base = QUICK if args.quick else FULL
    return Sizes(
        requests=args.requests or base.requests,
        events=args.events or base.events,
        declares=args.declares or base.declares,
        export_events=args.export_events or base.export_events,
        served_events=args.served_events or base.served_events,
        served_declares=base.served_declares,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = sizes_from(args)
    print(header(sizes, args), flush=True)
    results = Results()
    urls: dict[str, str | None] = {"SQLite": None, "PostgreSQL": args.database_url}
    if args.sqlite_only:
        results.not_run["PostgreSQL"] = "--sqlite-only"
    elif (reason := unreachable(args.database_url)) is not None:
        results.not_run["PostgreSQL"] = reason
    run_all(urls, sizes, args, results)

    table = Table()
    ack_rows(table, results.ack)
    served_rows(table, results.served)
    warroom_rows(table, results.warroom)
    export_rows(table, results.export)
    print()
    print(table.markdown())
    print()
    print("\n".join(notes(results)))
    if results.timed_out:
        return 2
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
