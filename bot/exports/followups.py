"""Follow-ups across incidents, for `warroom followups` and the `/followups` routes: Markdown,
CSV, JSON and an HTML page, filtered by status, owner and overdue."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlmodel import Session

from bot.errors import UsageError
from bot.exports.export import followup_document, inert_cell, iso
from bot.exports.templating import markdown_escape
from bot.followups.rules import FollowUpStatus, FollowUpView
from bot.followups.service import load_views
from bot.slack.text import printable
from storage import followups as followup_store
from storage.models import Incident

LIST_FORMATS = ("md", "csv", "json", "html")
STATUS_CHOICES = ("open", "done", "dropped", "all")
CSV_COLUMNS = (
    "id",
    "incident",
    "text",
    "owner_id",
    "owner_name",
    "due",
    "overdue",
    "status",
    "reason",
    "created_at",
    "created_by_id",
    "created_by_name",
    "closed_at",
    "source_ts",
)


@dataclass(frozen=True)
class FollowUpFilter:
    """Which follow-ups a listing shows: a status (None: any), an owner, only overdue ones."""

    status: FollowUpStatus | None = FollowUpStatus.OPEN
    owner_id: str | None = None
    overdue: bool = False

    def describe(self) -> str:
        """The filter in words, for the top of a listing."""
        parts = [f"{self.status} follow-ups" if self.status else "all follow-ups"]
        if self.owner_id:
            parts.append(f"owned by {self.owner_id}")
        if self.overdue:
            parts.append("overdue")
        return ", ".join(parts)


def parse_filter(*, status: str | None, owner: str | None, overdue: bool) -> FollowUpFilter:
    """The filter `--status`/`?status=`, `--owner`/`?owner=` and overdue ask for; UsageError
    for a status that is none of open, done, dropped, all, or an owner that is no Slack id."""
    chosen = (status or "open").strip().lower()
    if chosen not in STATUS_CHOICES:
        raise UsageError(f"status must be one of {', '.join(STATUS_CHOICES)}, not {chosen[:20]!r}")
    owner = (owner or "").strip() or None
    if owner is not None and not (owner[:1] in "UW" and owner.isalnum() and len(owner) <= 32):
        raise UsageError(f"owner must be a Slack user id like U0123ABC, not {owner[:20]!r}")
    return FollowUpFilter(
        status=None if chosen == "all" else FollowUpStatus(chosen),
        owner_id=owner,
        overdue=overdue,
    )


@dataclass(frozen=True)
class Listed:
    """A follow-up in a listing, with its incident's title."""

    followup: FollowUpView
    incident_title: str
    overdue: bool


def listed_followups(session: Session, wanted: FollowUpFilter, today: date) -> list[Listed]:
    """The follow-ups `wanted`, oldest first; overdue ones are open with a due day before today."""
    rows = followup_store.find_followups(
        session,
        status=FollowUpStatus.OPEN if wanted.overdue else wanted.status,
        owner_id=wanted.owner_id,
        due_before=today if wanted.overdue else None,
    )
    if wanted.overdue and wanted.status not in (None, FollowUpStatus.OPEN):
        rows = []  # only open follow-ups are overdue
    titles: dict[int, str] = {}
    listed = []
    for view in load_views(session, rows):
        if view.incident_id not in titles:
            titles[view.incident_id] = session.get_one(Incident, view.incident_id).title
        listed.append(Listed(view, titles[view.incident_id], view.overdue(today)))
    return listed


def list_document(item: Listed) -> dict[str, Any]:
    """A follow-up in the JSON listing: the export's object, with its incident and overdue."""
    return {
        **followup_document(item.followup),
        "incident": {"id": item.followup.incident_ref, "title": printable(item.incident_title)},
        "overdue": item.overdue,
    }


def render_listing(
    items: list[Listed],
    fmt: str,
    *,
    wanted: FollowUpFilter,
    templates: Environment,
    zone: ZoneInfo,
    now: datetime,
    nonce: str = "",
    link: Any = None,
) -> Iterator[str]:
    """The listing in `fmt` (md, csv, json or html) as text chunks."""
    if fmt == "json":
        body = {"filter": _filter_document(wanted), "followups": [list_document(i) for i in items]}
        yield json.dumps(body, ensure_ascii=False, indent=2) + "\n"
    elif fmt == "csv":
        yield _csv(items)
    elif fmt == "md":
        yield _markdown(items, wanted, zone, now)
    elif fmt == "html":
        template = templates.get_template("exports/followups.html.j2")
        yield template.render(
            items=items,
            heading=wanted.describe(),
            generated=now.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z"),
            nonce=nonce,
            link=link,
        )
    else:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(LIST_FORMATS)}")


def _filter_document(wanted: FollowUpFilter) -> dict[str, Any]:
    return {
        "status": wanted.status.value if wanted.status else "all",
        "owner": wanted.owner_id,
        "overdue": wanted.overdue,
    }


def _csv(items: list[Listed]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for item in items:
        f = item.followup
        writer.writerow(
            [
                f.ref,
                f.incident_ref,
                inert_cell(f.text),
                f.owner.id or "" if f.owner else "",
                inert_cell(f.owner.name or "") if f.owner else "",
                f.due.isoformat() if f.due else "",
                "yes" if item.overdue else "no",
                f.status.value,
                inert_cell(f.reason or ""),
                iso(f.created_at),
                f.created_by.id or "",
                inert_cell(f.created_by.name or ""),
                iso(f.closed_at) or "",
                f.source_ts or "",
            ]
        )
    return buffer.getvalue()


def _markdown(items: list[Listed], wanted: FollowUpFilter, zone: ZoneInfo, now: datetime) -> str:
    lines = [
        "# Follow-ups",
        "",
        f"{markdown_escape(wanted.describe().capitalize())}: {len(items)}.",
        "",
        "| Id | Incident | Follow-up | Owner | Due | Status |",
        "|---|---|---|---|---|---|",
    ]
    for item in items:
        f = item.followup
        owner = markdown_escape(printable(f.owner.label)) if f.owner else "—"
        due = (f.due.isoformat() if f.due else "—") + (" **overdue**" if item.overdue else "")
        status = f.status.value + (f": {markdown_escape(printable(f.reason))}" if f.reason else "")
        lines.append(
            f"| {f.ref} | {f.incident_ref} | {markdown_escape(printable(f.text))} | {owner} "
            f"| {due} | {status} |"
        )
    generated = now.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    lines += ["", f"_Listed {generated} by warroom._", ""]
    return "\n".join(lines)
