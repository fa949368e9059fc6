"""benchmarks/bench_served.py runs end to end: `warroom serve` and a bare Bolt process under wrk,
its table printed and every acked event recorded exactly once. Its figures are not checked: they
depend on the machine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ci import missing
from tests.support.databases import PG_URL

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 200
# A guard against a hung run, not a measure: a run of 200 events takes seconds.
HANG_GUARD_S = 600

MEASURES = (
    "message events recorded durably",
    "message ack p50 / p99 at that load",
    "server CPU per 1,000 events",
    "`/incident declare` ack p50 / p99, isolated",
    "`/incident declare` ack p50 / p99, 20 war rooms opening",
    f"resident memory after {EVENTS} events / after start",
)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_bench_served_prints_its_rows_and_counts_every_event_once(database: str) -> None:
    if shutil.which("wrk") is None:
        missing("wrk is not installed (Debian: apt-get install wrk)")
    command = [sys.executable, "benchmarks/bench_served.py", "--quick", "--events", str(EVENTS)]
    if database == "postgresql":
        if not PG_URL:
            missing("WARROOM_TEST_DATABASE_URL is not set, so PostgreSQL is not tested here")
        command += ["--database-url", PG_URL]

    run = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=HANG_GUARD_S, check=False
    )

    assert run.returncode == 0, run.stdout + run.stderr
    label = "SQLite" if database == "sqlite" else "PostgreSQL"
    assert f"{label}: warroom serve recorded {EVENTS} of {EVENTS} events" in run.stdout
    assert "| measure | warroom serve | bare Bolt | ratio |" in run.stdout
    for measure in MEASURES:
        row = re.search(rf"^\| {re.escape(measure)} \| [^|]*\d[^|]* \|", run.stdout, re.MULTILINE)
        assert row, f"no figure for {measure!r} in:\n{run.stdout}"
    verdicts = re.findall(r"^  (met|MISSED): ", run.stdout, re.MULTILINE)
    assert len(verdicts) == 5, run.stdout
