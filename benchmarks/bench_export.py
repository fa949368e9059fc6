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


def measure(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024  # Linux reports KiB


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--database-url", help="an empty database (default: a temporary SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warroom-bench-export-") as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'bench.db'}"
        started = time.perf_counter()
        seed(url, args.events)
        print(
            f"export benchmark: {args.events} events on "
            f"{'SQLite' if url.startswith('sqlite') else url.split('@')[-1]}, "
            f"seeded in {time.perf_counter() - started:.1f} s; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(REPO)}
        env.pop("WARROOM_CONFIG", None)
        python = sys.executable
        floor = measure([python, "-c", "import bot.cli, bot.export"], env)
        held = measure([python, "-c", HOLD_ALL, url], env)
        print(f"{'what':34} {'seconds':>8} {'peak MB':>8} {'output MB':>10}")
        print(f"{'baseline: import only':34} {floor[0]:8.2f} {floor[1]:8.1f} {'':>10}")
        print(f"{'baseline: hold all events':34} {held[0]:8.2f} {held[1]:8.1f} {'':>10}")
        for fmt in FORMATS:
            for redact in (False, True):
                out = Path(folder) / f"out.{fmt}"
                command = [
                    python,
                    "-m",
                    "bot.cli",
                    "export",
                    "INC-1",
                    "--format",
                    fmt,
                    "-o",
                    str(out),
                ] + (["--redact"] if redact else [])
                seconds, peak = measure(command, env)
                label = f"export {fmt}{' --redact' if redact else ''}"
                print(f"{label:34} {seconds:8.2f} {peak:8.1f} {out.stat().st_size / 1e6:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
