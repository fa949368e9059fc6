"""The insights report's pure parts: nearest-rank percentiles, weeks, the window a person
types, and charts whose text is escaped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import UsageError
from bot.insights.figures import nearest_rank, spread, week_start
from bot.insights.service import parse_window
from bot.insights.svg import bar_chart, line_chart

NOW = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 0.5, None),
        ([7.0], 0.9, 7.0),
        ([1.0, 2.0, 3.0, 4.0], 0.5, 2.0),  # rank ceil(2) = 2
        ([4.0, 1.0, 3.0], 0.5, 3.0),  # sorted 1, 3, 4: rank ceil(1.5) = 2
        ([float(n) for n in range(1, 11)], 0.9, 9.0),  # rank 9 of 10
        ([float(n) for n in range(1, 12)], 0.9, 10.0),  # rank ceil(9.9) = 10 of 11
    ],
)
def test_nearest_rank(values: list[float], p: float, expected: float | None) -> None:
    assert nearest_rank(values, p) == expected


def test_spread_counts_and_rounds_to_whole_seconds() -> None:
    assert spread([90.7, 10.2]) == {"count": 2, "median_seconds": 10, "p90_seconds": 90}
    assert spread([]) == {"count": 0, "median_seconds": None, "p90_seconds": None}


def test_weeks_start_on_monday_utc() -> None:
    sunday_night = datetime(2024, 3, 10, 23, 59, tzinfo=UTC)
    assert week_start(sunday_night) == datetime(2024, 3, 4, tzinfo=UTC)
    assert week_start(datetime(2024, 3, 11, 0, 0, tzinfo=UTC)) == datetime(2024, 3, 11, tzinfo=UTC)


def test_window_from_a_duration_or_dates() -> None:
    default = parse_window(None, None, now=NOW)
    assert (default.since, default.until) == (NOW - timedelta(days=30), NOW)
    dated = parse_window("2024-03-01", "2024-03-15", now=NOW)
    assert dated.since == datetime(2024, 3, 1, tzinfo=UTC)
    assert dated.until == datetime(2024, 3, 15, tzinfo=UTC)
    back = parse_window("2d", "2024-03-15T12:00:00+01:00", now=NOW)
    assert back.until == datetime(2024, 3, 15, 11, 0, tzinfo=UTC)
    assert back.since == back.until - timedelta(days=2)


@pytest.mark.parametrize(
    ("since", "until", "problem"),
    [
        ("0d", None, "not a positive duration"),
        ("30y", None, "'30y' is not a duration"),
        ("soon", None, "since 'soon' is not a date"),
        (None, "2024-03-01T09:00", "needs a time zone"),
        ("2024-03-02", "2024-03-01", "since must come before until"),
        ("2000-01-01", None, "more than five years"),
    ],
)
def test_window_refuses_what_it_cannot_read(
    since: str | None, until: str | None, problem: str
) -> None:
    with pytest.raises(UsageError) as refused:
        parse_window(since, until, now=NOW)
    assert problem in refused.value.message


def test_charts_escape_their_text_and_carry_no_script() -> None:
    hostile = '<script>alert(1)</script>"&'
    bars = str(bar_chart(hostile, [hostile, "b"], [3, 0]))
    line = str(line_chart(hostile, [hostile], {hostile: [1.0]}))
    for svg in (bars, line):
        assert "<script" not in svg
        assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;" in svg
        assert svg.startswith("<svg ") and svg.endswith("</svg>")
    assert bars.count('<rect class="bar"') == 2
