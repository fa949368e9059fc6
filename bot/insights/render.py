"""The insights report in Markdown, HTML (with inline SVG charts), JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

from jinja2 import Environment

from bot.durations import format_duration
from bot.errors import UsageError
from bot.exports.export import inert_cell
from bot.incidents.enums import Severity
from bot.insights import svg

REPORT_FORMATS = ("md", "html", "json", "csv")


def render_report(
    report: dict[str, Any], fmt: str, *, templates: Environment, nonce: str = ""
) -> str:
    """The report in `fmt`, ending with a newline; UsageError for another format."""
    if fmt == "json":
        return json.dumps(report, ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return report_csv(report)
    if fmt in ("md", "html"):
        template = templates.get_template(f"insights/report.{fmt}.j2")
        charts = charts_of(report) if fmt == "html" else {}
        body = template.render(
            r=report, charts=charts, nonce=nonce, duration=seconds_text, ratio=ratio_text
        )
        return body + "\n"
    raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(REPORT_FORMATS)}")


def seconds_text(seconds: int | None) -> str:
    """`1h 5m` for a number of seconds; an em dash for none."""
    return "—" if seconds is None else format_duration(timedelta(seconds=seconds))


def ratio_text(ratio: float | None) -> str:
    """`75%`, or an em dash when nothing was due."""
    return "—" if ratio is None else f"{round(100 * ratio)}%"


def charts_of(report: dict[str, Any]) -> dict[str, Any]:
    """The HTML page's charts: incidents by severity, median resolve by severity, weekly."""
    severities = [s.value for s in Severity]
    resolve = [report["durations"][s]["resolve"]["median_seconds"] or 0 for s in severities]
    weeks = report["weekly"]
    return {
        "by_severity": svg.bar_chart(
            "Incidents by severity",
            [s.upper() for s in severities],
            [report["incidents"]["by_severity"][s] for s in severities],
        ),
        "resolve": svg.bar_chart(
            "Median time to resolve (minutes) by severity",
            [s.upper() for s in severities],
            [round(s / 60, 1) for s in resolve],
            unit="m",
        ),
        "weekly": svg.line_chart(
            "Incidents per week",
            [w["week_start"][5:] for w in weeks],
            {
                "declared": [w["declared"] for w in weeks],
                "resolved": [w["resolved"] for w in weeks],
            },
        ),
    }


def report_csv(report: dict[str, Any]) -> str:
    """Every figure as a row `figure,value`, the figure named by its path in the JSON."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("figure", "value"))
    for path, value in _flatten(report, ""):
        shown = "" if value is None else str(value)
        writer.writerow((path, inert_cell(shown) if isinstance(value, str) else shown))
    return buffer.getvalue()


def _flatten(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _flatten(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _flatten(v, f"{path}.{i}")]
    return [(path, value)]
