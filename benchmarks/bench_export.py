"""Export benchmark: seconds and peak memory to export 100,000 events in each format.

Each export runs as `warroom export` in a process of its own, so that its peak resident memory
(ru_maxrss) is its own. Baselines in the same run: a process that only imports warroom (the
floor every export pays), and one that loads all the events into memory at once (what an export
that did not stream would need at least).

    python benchmarks/bench_export.py [--events 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from storage import incidents as incident_store  # noqa: E402
from storage import timeline as timeline_store  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

FORMATS = ("json", "csv", "md", "html")
BATCH = 5000
HOLD_ALL = (
    "import sys; from storage.db import Database; from storage import timeline as t\n"
    "db = Database(sys.argv[1])\n"
    "with db.reading() as s: held = list(t.events_for(s, incident_id=1))\n"
    "print(len(held))\n"
)


def seed(url: str, events: int) -> None:
    db = Database(url)
    upgrade(db.engine)
    start = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    with db.unit_of_work() as session:
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title="Checkout API returning 500s",
            severity="sev1",
            declared_at=start,
            declared_by_id="U0ANA",
            declared_by_name="ana",
            origin_channel_id="C0GENERAL",
        )
        incident_id = incident.id
    assert incident_id is not None
    for first in range(0, events, BATCH):
        rows: list[dict[str, Any]] = []
        for n in range(first, min(first + BATCH, events)):
            at = start + timedelta(milliseconds=250 * n)
            rows.append(
                {
                    "incident_id": incident_id,
                    "kind": "message",
                    "at": at,
                    "actor_id": ("U0ANA", "U0BO", "U0CY")[n % 3],
                    "actor_name": ("ana", "bo", "cy")[n % 3],
                    "text": f"step {n}: checked <@U0BO>, host 10.1.{n % 250}.7 looks fine",
                    "slack_ts": f"{at.timestamp():.6f}",
                    "thread_ts": None,
                    "data": {},
                    "dedupe_key": f"bench:{n}",
                }
            )
        with db.unit_of_work() as session:
            timeline_store.add_events(session, rows)
    db.close()


# Runs the command given in its arguments and prints its wall seconds and peak resident KiB.
# A child's ru_maxrss starts at its parent's resident size (Linux keeps the high-water mark
# across fork and exec), so the measured command must be the child of this small process, not
# of the benchmark, which holds the seeded rows and the servers' code.
TIMER = (
    "import resource, subprocess, sys, time\n"
    "started = time.perf_counter()\n"
    "status = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
    "seconds = time.perf_counter() - started\n"
    "print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(status)\n"
)


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one child process."""
    timer = subprocess.run(
        [sys.executable, "-c", TIMER, *command], cwd=REPO, env=env, capture_output=True, text=True
    )
    if timer.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{timer.stderr[-2000:]}")
    seconds, peak_kib = timer.stdout.split()
    return float(seconds), int(peak_kib) / 1024  # Linux reports KiB


@dataclass(frozen=True)
class Measured:
    """One child process: wall seconds, peak resident MB, and the size of what it wrote."""

    seconds: float
    peak_mb: float
    output_mb: float = 0.0


@dataclass(frozen=True)
class ExportFigures:
    events: int
    seeded_s: float
    import_only: Measured  # the floor every export pays
    hold_all: Measured  # what an export that did not stream would need at least
    exports: dict[str, Measured]  # by label: "json", "json --redact", ...


def run(
    url: str, events: int, formats: Sequence[str] = FORMATS, redact: Sequence[bool] = (False, True)
) -> ExportFigures:
    """Seed `events` into the empty database at `url`, then time each export and the baselines."""
    started = time.perf_counter()
    seed(url, events)
    seeded = time.perf_counter() - started
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO)}
    env.pop("WARROOM_CONFIG", None)
    python = sys.executable
    floor = Measured(*measure([python, "-c", "import bot.cli, bot.exports.export"], env))
    held = Measured(*measure([python, "-c", HOLD_ALL, url], env))
    exports: dict[str, Measured] = {}
    with tempfile.TemporaryDirectory(prefix="warroom-bench-export-") as folder:
        for fmt in formats:
            for redacted in redact:
                out = Path(folder) / f"out.{fmt}"
                command = [python, "-m", "bot.cli", "export", "INC-1", "--format", fmt]
                command += ["-o", str(out)] + (["--redact"] if redacted else [])
                seconds, peak = measure(command, env)
                label = f"{fmt}{' --redact' if redacted else ''}"
                exports[label] = Measured(seconds, peak, out.stat().st_size / 1e6)
    return ExportFigures(events, seeded, floor, held, exports)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-bench-export-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        figures = run(url, args.events)
    print(
        f"export benchmark: {args.events} events on "
        f"{'SQLite' if url.startswith('sqlite') else url.split('@')[-1]}, "
        f"seeded in {figures.seeded_s:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'what':34} {'seconds':>8} {'peak MB':>8} {'output MB':>10}")
    for label, baseline in (
        ("baseline: import only", figures.import_only),
        ("baseline: hold all events", figures.hold_all),
    ):
        print(f"{label:34} {baseline.seconds:8.2f} {baseline.peak_mb:8.1f} {'':>10}")
    for label, m in figures.exports.items():
        print(f"{'export ' + label:34} {m.seconds:8.2f} {m.peak_mb:8.1f} {m.output_mb:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
