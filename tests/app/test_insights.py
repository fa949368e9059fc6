"""The insights report over a seeded set of incidents (resolved, open, in triage, declined,
merged, private, one outside the window), its figures worked out by hand; through the CLI in
every format and through `GET /insights` with its access check and its 400s."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.cli import warroom_cli
from tests.support.exports import parse_html
from tests.support.home import Clock
from tests.support.insights import PRIVATE_ALERT, PRIVATE_TITLE, SINCE, UNTIL, seed_incidents
from tests.support.warroom import Warroom, WarroomFactory

TOKEN = "insights-token"
WINDOW = {"since": SINCE, "until": UNTIL}


def spread(count: int, median: int | None, p90: int | None) -> dict[str, Any]:
    return {"count": count, "median_seconds": median, "p90_seconds": p90}


NONE = spread(0, None, None)
# Worked out by hand from tests/support/insights.py. Counted: INC-2 (sev1, resolved after 1h),
# INC-3 (private sev2, resolved after 3h), INC-6 (sev3, open), INC-7 (sev4, triage). INC-1 is
# before the window; INC-4 (declined) and INC-5 (merged) are excluded.
EXPECTED: dict[str, Any] = {
    "window": {"since": "2024-03-01T00:00:00Z", "until": "2024-03-12T14:00:00Z"},
    "incidents": {
        "declared": 6,
        "counted": 4,
        "excluded": {"declined": 1, "merged": 1},
        "private": 1,
        "by_severity": {"sev1": 1, "sev2": 1, "sev3": 1, "sev4": 1},
        "by_status": {
            "triage": 1,
            "investigating": 1,
            "identified": 0,
            "monitoring": 0,
            "resolved": 2,
        },
    },
    "durations": {
        # Acknowledged after 0s, 20m and 5m: nearest rank puts the median at 5m, p90 at 20m.
        "all": {
            "acknowledge": spread(3, 300, 1200),
            "mitigate": spread(1, 1800, 1800),
            "resolve": spread(2, 3600, 10800),
        },
        "sev1": {
            "acknowledge": spread(1, 0, 0),
            "mitigate": spread(1, 1800, 1800),
            "resolve": spread(1, 3600, 3600),
        },
        "sev2": {
            "acknowledge": spread(1, 1200, 1200),
            "mitigate": NONE,
            "resolve": spread(1, 10800, 10800),
        },
        "sev3": {"acknowledge": spread(1, 300, 300), "mitigate": NONE, "resolve": NONE},
        "sev4": {"acknowledge": NONE, "mitigate": NONE, "resolve": NONE},
    },
    "weekly": [
        {"week_start": "2024-02-26", "declared": 0, "resolved": 0, "resolve_median_seconds": None},
        {"week_start": "2024-03-04", "declared": 2, "resolved": 2, "resolve_median_seconds": 3600},
        {"week_start": "2024-03-11", "declared": 2, "resolved": 0, "resolve_median_seconds": None},
    ],
    # INC-2: 60m at 30m, updates at 10m and 40m: 2 due, none missed. INC-3: 180m at 60m, no
    # update: 3 due, 3 missed. INC-6: open 4h to the window's end at 120m, update at 30m: 2 due,
    # the one at 2h30m missed. INC-7: sev4 has no cadence. So 3 of 7 met.
    "comms": {
        "updates": 3,
        "due": 7,
        "missed": 4,
        "on_time_ratio": 0.4286,
        "incidents_without_update": 2,
        "first_update_median_seconds": 600,
        "first_update_p90_seconds": 1800,
    },
    # INC-2's a day after (48h allowed), INC-3's four days after (72h allowed).
    "postmortems": {"required": 2, "done": 2, "done_on_time": 1},
    # The declined INC-4's follow-up is left out.
    "followups": {"opened": 3, "completed": 1, "dropped": 1, "open": 1},
    # g1 declared INC-2 and the private INC-3: named after the one that is not private.
    "noisiest_alert_groups": [
        {"alertname": "HighErrorRate", "incidents": 2},
        {"alertname": "DiskFull", "incidents": 1},
    ],
    "slowest": [
        {"ref": "INC-3", "title": None, "severity": "sev2", "resolve_seconds": 10800},
        {"ref": "INC-2", "title": "Checkout down", "severity": "sev1", "resolve_seconds": 3600},
    ],
}


@pytest.fixture
async def seeded(make_warroom: WarroomFactory, database_url: str) -> Warroom:
    # Long after the window: open incidents are measured to the window's end.
    clock = Clock(now=datetime(2024, 3, 20, 12, 0, tzinfo=UTC))
    room = await make_warroom(
        database_url=database_url, clock=clock, env={"warroom_export_token": TOKEN}
    )
    seed_incidents(room.services.db)
    return room


async def get(room: Warroom, path: str, token: str | None = TOKEN) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with room.http.get(room.server.make_url(path), headers=headers) as response:
        return response.status, await response.text(), response.headers


def assert_no_private_text(text: str) -> None:
    assert PRIVATE_TITLE not in text
    assert PRIVATE_ALERT not in text


# -- CLI -----------------------------------------------------------------------------------------


async def report(room: Warroom, tmp_path: Path, *args: str) -> str:
    run = await warroom_cli(
        "report", "--since", SINCE, "--until", UNTIL, *args,
        database_url=room.services.db.url, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


async def test_report_json_gives_the_figures_worked_out_by_hand(
    seeded: Warroom, tmp_path: Path
) -> None:
    text = await report(seeded, tmp_path, "--format", "json")
    assert json.loads(text) == EXPECTED
    assert_no_private_text(text)


async def test_report_markdown_csv_and_html(seeded: Warroom, tmp_path: Path) -> None:
    markdown = await report(seeded, tmp_path)  # Markdown by default
    assert "| Excluded | 1 declined, 1 merged |" in markdown
    assert "| SEV1 | 1 | 0s / 0s | 30m / 30m | 1h / 1h |" in markdown
    assert "| All | 4 | 5m / 20m | 30m / 30m | 1h / 3h |" in markdown
    assert "- On time: 43% (3 of 7 due; 3 sent)" in markdown
    assert "- Post-mortems: 2 of 2 done, 1 on time" in markdown
    assert "- Follow-ups: 1 of 3 completed, 1 dropped, 1 open" in markdown
    assert "- INC-3 SEV2 (private): 3h" in markdown
    assert "- HighErrorRate: 2" in markdown
    assert_no_private_text(markdown)

    rows = dict(csv.reader(io.StringIO(await report(seeded, tmp_path, "--format", "csv"))))
    assert rows["figure"] == "value"
    assert rows["incidents.counted"] == "4"
    assert rows["durations.all.resolve.p90_seconds"] == "10800"
    assert rows["comms.on_time_ratio"] == "0.4286"
    assert rows["slowest.0.title"] == ""  # private: no title
    assert rows["slowest.1.title"] == "Checkout down"

    await report(seeded, tmp_path, "--format", "html", "-o", "insights.html")
    page = (tmp_path / "insights.html").read_text(encoding="utf-8")
    assert page.count("<svg ") == 3
    assert "<script" not in page
    assert_no_private_text(page)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("--since", "3x"), "'3x' is not a duration"),
        (("--since", "yesterday"), "since 'yesterday' is not a date"),
        (("--until", "2024-13-01"), "until '2024-13-01' is not a date"),
        (("--until", "2024-03-01T09:00"), "needs a time zone"),
        (("--since", "2024-03-10", "--until", "2024-03-01"), "since must come before until"),
    ],
)
async def test_report_refuses_bad_flags_by_name(
    seeded: Warroom, tmp_path: Path, args: tuple[str, ...], problem: str
) -> None:
    run = await warroom_cli("report", *args, database_url=seeded.services.db.url, cwd=tmp_path)
    assert run.returncode == 2
    assert problem in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


# -- HTTP ----------------------------------------------------------------------------------------


async def test_insights_route_gives_the_same_figures(seeded: Warroom) -> None:
    status, text, headers = await get(seeded, f"/insights.json?{urlencode(WINDOW)}")
    assert status == 200, text
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(text) == EXPECTED


async def test_insights_page_has_its_charts_and_a_strict_policy(seeded: Warroom) -> None:
    status, text, headers = await get(seeded, f"/insights?{urlencode(WINDOW)}")
    assert status == 200, text
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    page = parse_html(text)
    charts = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert [c["aria-label"] for c in charts] == [
        "Incidents by severity",
        "Median time to resolve (minutes) by severity",
        "Incidents per week",
    ]
    assert not [tag for tag, _ in page.tags if tag in ("script", "link", "img")]
    words = " ".join(t.strip() for t in page.text if t.strip())
    assert "Excluded 1 declined, 1 merged" in words
    assert_no_private_text(text)


async def test_insights_defaults_to_the_last_30_days(seeded: Warroom) -> None:
    status, text, _ = await get(seeded, "/insights.json")
    assert status == 200, text
    document = json.loads(text)
    assert document["window"] == {
        "since": "2024-02-19T12:00:00Z",
        "until": "2024-03-20T12:00:00Z",
    }
    assert document["incidents"]["declared"] == 7  # INC-1 (20 February) too


async def test_insights_needs_the_export_token(seeded: Warroom) -> None:
    for path in ("/insights", "/insights.json", "/insights.xml"):
        status, text, _ = await get(seeded, path, token=None)
        assert status == 401, (path, text)
        assert "Bearer" in text
        status, _, _ = await get(seeded, path, token="wrong")
        assert status == 401


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("since=3x", "'3x' is not a duration"),
        ("since=2024-03-10&until=2024-03-01", "since must come before until"),
        ("until=%3Cscript%3E", "is not a date"),
        ("since=99999d", "more than five years"),
    ],
)
async def test_insights_answers_400_with_the_reason(
    seeded: Warroom, query: str, problem: str
) -> None:
    status, text, headers = await get(seeded, f"/insights?{query}")
    assert status == 400
    assert problem in text
    # The reason quotes what was sent, as plain text that no browser renders as HTML.
    assert headers["Content-Type"].startswith("text/plain")


async def test_insights_unknown_format_is_404(seeded: Warroom) -> None:
    status, text, _ = await get(seeded, "/insights.xml")
    assert status == 404
    assert "use md, csv or json" in text
