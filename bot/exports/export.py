"""Exports of an incident's timeline: JSON (DESIGN.md's schema, exactly), CSV, Markdown and
HTML. Every format streams: events are read and written a chunk at a time."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment
from sqlmodel import Session

from bot.comms.ledger import CommsLedger, comms_ledger
from bot.config import WarroomConfig
from bot.durations import format_duration
from bot.errors import NotFoundError, UsageError
from bot.exports.redact import Redactor
from bot.followups.rules import FollowUpView, followup_view
from bot.incidents.enums import CLOSED_WITHOUT_RESOLUTION, Status
from bot.incidents.readmodels import IncidentView, incident_view
from bot.incidents.refs import incident_number
from bot.slack.text import printable, to_plain
from storage import followups as followup_store
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage import users as user_store
from storage.models import TimelineEvent

FORMATS = ("md", "html", "json", "csv")
MEDIA_TYPES = {
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "json": "application/json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
# Events a reviewer looks for first; messages and joins are the background.
KEY_KINDS = frozenset(
    {
        "declared",
        "status_changed",
        "severity_changed",
        "customer_update",
        "resolved",
        "escalation",
        "key_event",
        "alert",
        "postmortem",
    }
)
# Events whose text warroom wrote as plain text (a title, "ana is commander"), not Slack markup:
# reading them as markup would drop a title's `<API>` or decode its `&amp;` a second time.
PLAIN_TEXT_KINDS = frozenset(
    {
        "declared",
        "role_assigned",
        "status_changed",
        "severity_changed",
        "followup_added",
        "followup_updated",
    }
)
CSV_COLUMNS = (
    "at",
    "local_time",
    "kind",
    "actor_id",
    "actor_name",
    "text",
    "slack_ts",
    "thread_ts",
    "data",
)
# Characters per chunk handed on (to a file, or to the HTTP response): big enough that a
# 100,000-event export is a few hundred writes, small enough that memory stays flat.
CHUNK_SIZE = 64 * 1024
# A spreadsheet runs a cell that starts with one of these as a formula.
# What a spreadsheet runs as a formula: = + - @ (or their fullwidth forms, which some
# spreadsheets fold to ASCII) first, even after spaces; or a leading tab or carriage return.
_FORMULA_START = re.compile(r"[\t\r]|\s*[=+\-@\uff1d\uff0b\uff0d\uff20]")


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with a `Z`."""
    if at is None:
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _person(person_id: str | None, name: str | None) -> dict[str, Any] | None:
    if person_id is None and name is None:
        return None
    return {"id": person_id, "name": name}


def incident_document(incident: IncidentView, redactor: Redactor | None = None) -> dict[str, Any]:
    """The incident as the JSON export's `incident` object, names and title redacted if asked."""
    redactor = redactor or Redactor.off()
    return {
        "id": incident.ref,
        "number": incident.number,
        "title": redactor.text(incident.title),
        "severity": incident.severity,
        "status": incident.status,
        "channel": {"id": incident.channel_id, "name": incident.channel_name},
        "declared_by": _person(incident.declared_by.id, incident.declared_by.name),
        "declared_at": iso(incident.declared_at),
        "acknowledged_at": iso(incident.acknowledged_at),
        "mitigated_at": iso(incident.mitigated_at),
        "resolved_at": iso(incident.resolved_at),
        "archived_at": iso(incident.archived_at),
        "roles": [
            {
                "role": r.role,
                "user": _person(r.user.id, r.user.name),
                "assigned_at": iso(r.assigned_at),
                "relieved_at": iso(r.relieved_at),
            }
            for r in incident.roles
        ],
        # Seen outside its war room only by the room's members and the admins.
        "private": incident.private,
        "merged_into": incident.merged_into,
    }


def event_document(event: TimelineEvent, redactor: Redactor | None = None) -> dict[str, Any]:
    """One event as the JSON export writes it, its actor, text and data redacted if asked."""
    redactor = redactor or Redactor.off()
    return {
        "at": iso(event.at),
        "kind": event.kind,
        "actor": _person(event.actor_id, redactor.text(event.actor_name)),
        "text": redactor.text(event.text),
        "slack_ts": event.slack_ts,
        "thread_ts": event.thread_ts,
        "data": redactor.data(event.data or {}),
    }


def followup_document(followup: FollowUpView, redactor: Redactor | None = None) -> dict[str, Any]:
    """A follow-up as the JSON export writes it (the issue's schema, exactly), redacted if asked."""
    redactor = redactor or Redactor.off()
    owner = followup.owner
    return {
        "id": followup.ref,
        "text": redactor.text(printable(followup.text)),
        "owner": _person(owner.id, redactor.text(owner.name)) if owner else None,
        "due": followup.due.isoformat() if followup.due else None,
        "status": followup.status.value,
        "reason": redactor.text(followup.reason),
        "created_at": iso(followup.created_at),
        "created_by": {
            "id": followup.created_by.id,
            "name": redactor.text(followup.created_by.name),
        },
        "closed_at": iso(followup.closed_at),
        "source_ts": followup.source_ts,
    }


def comms_document(ledger: CommsLedger) -> dict[str, Any]:
    """The comms ledger as the JSON export's `incident.comms` object."""
    return {
        "first_update_at": iso(ledger.first_update_at),
        "first_update_after_seconds": ledger.first_update_after_seconds,
        "updates": ledger.updates,
        "due": ledger.due,
        "missed": ledger.missed,
        "longest_gap_seconds": ledger.longest_gap_seconds,
        "on_time_ratio": ledger.on_time_ratio,
    }


@dataclass(frozen=True)
class CommsLine:
    """The comms ledger as the Markdown and HTML exports show it."""

    cadence: str
    first_update: str
    updates: int
    due: int
    missed: int
    longest_gap: str
    on_time: str


@dataclass(frozen=True)
class FollowUpLine:
    """One follow-up as the Markdown and HTML exports show it: plain, redacted text."""

    ref: str
    incident_ref: str
    text: str
    owner: str
    due: str
    status: str
    reason: str


def followup_line(followup: FollowUpView, redactor: Redactor) -> FollowUpLine:
    """A follow-up for the Markdown and HTML exports."""
    owner = followup.owner
    return FollowUpLine(
        ref=followup.ref,
        incident_ref=followup.incident_ref,
        text=printable(redactor.text(followup.text) or ""),
        owner=printable(redactor.text(owner.label) or "") if owner else "",
        due=followup.due.isoformat() if followup.due else "",
        status=followup.status.value,
        reason=printable(redactor.text(followup.reason) or ""),
    )


def parse_incident_ref(ref: str) -> int:
    """The number in `INC-7` or `7`; UsageError for anything else."""
    number = incident_number(ref)
    if number is None:
        raise UsageError(f"{ref!r} is not an incident id; write it like INC-7")
    return number


def load_incident(session: Session, number: int) -> IncidentView:
    """The read model of incident `number`; NotFoundError when there is none."""
    incident = incident_store.incident_by_number(session, number=number)
    if incident is None:
        raise NotFoundError(f"INC-{number} does not exist")
    return incident_view(session, incident)


@dataclass(frozen=True)
class EventLine:
    """One event as the Markdown and HTML templates show it: plain, redacted, local time."""

    at_utc: str
    at_utc_label: str
    at_local: str
    clock: str
    kind: str
    key: bool
    actor_id: str
    actor: str
    text: str
    previous_text: str | None
    reply: bool
    thread_ts: str | None
    files: list[str]
    detail: str


@dataclass(frozen=True)
class Phase:
    """One status phase on the export's bar: when it began and its share of the incident's time."""

    status: str
    start: str
    percent: float
    duration: str


@dataclass(frozen=True)
class Page:
    """The header of an export: the incident, its durations, phases and roles over time."""

    incident: IncidentView
    title: str
    declared_local: str
    durations: dict[str, str]
    phases: list[Phase]
    roles: list[dict[str, str]]
    redacted: bool
    generated: str
    zone: str
    followups: list[FollowUpLine]
    comms: CommsLine


class Exporter:
    """Renders one incident in one format, as an iterator of text chunks."""

    def __init__(
        self,
        session: Session,
        incident: IncidentView,
        *,
        templates: Environment,
        zone: ZoneInfo,
        redactor: Redactor,
        now: datetime,
        nonce: str = "",
        update_every: timedelta | None = None,
    ) -> None:
        self.session = session
        self.update_every = update_every
        self.nonce = nonce
        self.incident = incident
        self.templates = templates
        self.zone = zone
        self.redactor = redactor
        self.now = now
        self.names = user_store.all_user_names(session)
        self.followups = [
            followup_view(f, incident.number)
            for f in followup_store.followups_for_incident(session, incident_id=incident.id)
        ]
        self._declared_day = incident.declared_at.astimezone(zone).date()

    def chunks(self, fmt: str) -> Iterator[str]:
        """The export in `fmt` as text chunks; UsageError for a format not in FORMATS."""
        if fmt == "json":
            return self.json()
        if fmt == "csv":
            return self.csv()
        if fmt in ("md", "html"):
            return self.templated(fmt)
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")

    # -- JSON and CSV ---------------------------------------------------------------------------

    def json(self) -> Iterator[str]:
        """The JSON export (the incident, then its events) as text chunks."""
        return _batched(self._json())

    def _json(self) -> Iterator[str]:
        document = incident_document(self.incident, self.redactor)
        document["comms"] = comms_document(self.comms_ledger())
        head = json.dumps({"incident": document}, ensure_ascii=False, indent=2)
        yield head[:-2] + ',\n  "events": ['
        first = True
        for event in self._events():
            line = json.dumps(event_document(event, self.redactor), ensure_ascii=False)
            yield ("\n    " if first else ",\n    ") + line
            first = False
        yield "]" if first else "\n  ]"
        yield ',\n  "followups": ['
        lines = [
            json.dumps(followup_document(f, self.redactor), ensure_ascii=False)
            for f in self.followups
        ]
        yield ("\n    " + ",\n    ".join(lines) + "\n  ]\n}\n") if lines else "]\n}\n"

    def _events(self, *, threaded: bool = False) -> Iterator[TimelineEvent]:
        """The incident's events, with those of incidents merged into it in time order."""
        merged = incident_store.merged_into(self.session, incident_id=self.incident.id)
        return timeline_store.events_with_merged(
            self.session, incident_id=self.incident.id, merged=merged, threaded=threaded
        )

    def csv(self) -> Iterator[str]:
        """The CSV export in chunks, a row per event; cells a spreadsheet would run get a `'`."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180
        writer.writerow(CSV_COLUMNS)
        for event in self._events():
            writer.writerow(
                [
                    iso(event.at),
                    self._local(event.at, "%Y-%m-%d %H:%M:%S %Z"),
                    event.kind,
                    event.actor_id or "",
                    inert_cell(self.redactor.text(event.actor_name) or ""),
                    inert_cell(self._text(event)),
                    event.slack_ts or "",
                    event.thread_ts or "",
                    inert_cell(
                        json.dumps(self.redactor.data(event.data or {}), ensure_ascii=False)
                        if event.data
                        else ""
                    ),
                ]
            )
            if buffer.tell() > CHUNK_SIZE:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    # -- Markdown and HTML ---------------------------------------------------------------------

    def templated(self, fmt: str) -> Iterator[str]:
        """The Markdown or HTML export from its template, in chunks, ending with a newline."""
        template = self.templates.get_template(f"exports/timeline.{fmt}.j2")
        lines = (self._line(e) for e in self._events(threaded=True))
        yield from _batched(template.generate(page=self.page(), events=lines, nonce=self.nonce))
        yield "\n"  # the environment drops a template's last newline; a text file ends with one

    def page(self) -> Page:
        """The export's header: title, durations, status phases and who held each role when."""
        incident = self.incident
        end = incident.resolved_at or self.now
        return Page(
            incident=incident,
            title=printable(self.redactor.text(incident.title) or ""),
            declared_local=self._local(incident.declared_at, "%Y-%m-%d %H:%M %Z"),
            durations={
                "acknowledge": _span(incident.declared_at, incident.acknowledged_at),
                "mitigate": _span(incident.declared_at, incident.mitigated_at),
                "resolve": _span(incident.declared_at, incident.resolved_at),
            },
            phases=self._phases(end),
            roles=[
                {
                    "role": r.role,
                    "who": self.redactor.text(r.user.label) or "",
                    "from": self._local(r.assigned_at, "%Y-%m-%d %H:%M %Z"),
                    "until": self._local(r.relieved_at, "%Y-%m-%d %H:%M %Z")
                    if r.relieved_at
                    else ("the end" if incident.resolved_at else "now"),
                }
                for r in incident.roles
            ],
            redacted=self.redactor.enabled,
            generated=self._local(self.now, "%Y-%m-%d %H:%M %Z"),
            zone=str(self.zone),
            followups=[followup_line(f, self.redactor) for f in self.followups],
            comms=self._comms_line(),
        )

    def comms_ledger(self) -> CommsLedger:
        """The incident's customer updates against its current severity's cadence."""
        updates = timeline_store.events_of_kinds(
            self.session, incident_id=self.incident.id, kinds=("customer_update",)
        )
        return comms_ledger(
            declared_at=self.incident.declared_at,
            ended_at=self.incident.resolved_at or self._closed_at() or self.now,
            every=self.update_every,
            update_times=[u.at for u in updates],
        )

    def _closed_at(self) -> datetime | None:
        """When a declined or merged incident was closed: its last decline or merge."""
        if self.incident.status not in CLOSED_WITHOUT_RESOLUTION:
            return None
        closings = timeline_store.events_of_kinds(
            self.session, incident_id=self.incident.id, kinds=("declined", "merged")
        )
        return closings[-1].at if closings else None

    def _comms_line(self) -> CommsLine:
        ledger = self.comms_ledger()
        first = "none sent"
        if ledger.first_update_at is not None:
            after = format_duration(ledger.first_update_at - self.incident.declared_at)
            first = f"{self._local(ledger.first_update_at, '%H:%M')}, {after} after declaration"
        ratio = ledger.on_time_ratio
        return CommsLine(
            cadence=f"every {format_duration(self.update_every)}" if self.update_every else "none",
            first_update=first,
            updates=ledger.updates,
            due=ledger.due,
            missed=ledger.missed,
            longest_gap=format_duration(timedelta(seconds=ledger.longest_gap_seconds)),
            on_time="—" if ratio is None else f"{round(100 * ratio)}%",
        )

    def _phases(self, end: datetime) -> list[Phase]:
        """Status phases from declaration to resolution (or now), drawn to scale."""
        changes = timeline_store.events_of_kinds(
            self.session, incident_id=self.incident.id, kinds=("status_changed",)
        )
        marks: list[tuple[datetime, str]] = [(self.incident.declared_at, Status.INVESTIGATING)]
        for change in changes:
            status = str((change.data or {}).get("to", ""))
            if status and status != marks[-1][1]:
                marks.append((change.at, status))
        total = max((end - self.incident.declared_at).total_seconds(), 1.0)
        phases = []
        for (start, status), following in zip(marks, [*marks[1:], (end, "")], strict=True):
            if status == Status.RESOLVED:
                break
            seconds = max((following[0] - start).total_seconds(), 0.0)
            phases.append(
                Phase(
                    status=status,
                    start=self._local(start, "%H:%M"),
                    percent=round(100 * seconds / total, 2),
                    duration=format_duration(timedelta(seconds=seconds)),
                )
            )
        return phases

    def _line(self, event: TimelineEvent) -> EventLine:
        data = event.data or {}
        previous = data.get("previous_text")
        text = self._text(event)
        # The clock alone on the day of declaration; the date too once the incident runs past it.
        same_day = event.at.astimezone(self.zone).date() == self._declared_day
        return EventLine(
            at_utc=iso(event.at) or "",
            at_utc_label=event.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            at_local=self._local(event.at, "%Y-%m-%d %H:%M:%S %Z"),
            clock=self._local(event.at, "%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S"),
            kind=event.kind,
            key=event.kind in KEY_KINDS,
            actor_id=event.actor_id or "",
            actor=printable(self.redactor.text(event.actor_name or event.actor_id) or "warroom"),
            # Printable: text stored before warroom cleaned it at the edge may still reorder.
            text=printable(text),
            previous_text=printable(self._plain(previous)) if isinstance(previous, str) else None,
            reply=bool(event.thread_ts and event.thread_ts != event.slack_ts),
            thread_ts=event.thread_ts,
            files=[
                self.redactor.text(str(f.get("name") or f.get("title") or "file")) or "file"
                for f in data.get("files", [])
                if isinstance(f, dict)
            ],
            detail=self._detail(event.kind, data, text),
        )

    def _detail(self, kind: str, data: dict[str, Any], text: str) -> str:
        if kind in ("command", "command_refused") and data.get("reason"):
            return self.redactor.text(str(data["reason"])) or ""
        if kind in ("status_changed", "severity_changed"):
            change = f"{data.get('from', '?')} → {data.get('to', '?')}"
            # warroom's own text ("Status identified → monitoring") says it already.
            return "" if change.lower() in text.lower() else change
        if kind == "key_event" and data.get("via"):
            # Marked by the actor; the words are someone else's message, so say whose.
            author = data.get("author_name") or self.names.get(str(data.get("author_id")), "")
            source = f"{author}'s message" if author else "a message"
            return f"marked key from {source} ({data['via']})"
        if kind == "role_assigned" and data.get("previous"):
            previous = str(data["previous"])
            return f"took over from {self.names.get(previous, previous)}"
        return ""

    def _text(self, event: TimelineEvent) -> str:
        """An event's text as a person reads it, redacted."""
        if event.kind in PLAIN_TEXT_KINDS:
            return self.redactor.text(event.text or "") or ""
        return self._plain(event.text)

    def _plain(self, text: str | None) -> str:
        return self.redactor.text(to_plain(text or "", self.names, zone=self.zone)) or ""

    def _local(self, at: datetime | None, pattern: str) -> str:
        return at.astimezone(self.zone).strftime(pattern) if at else ""


def _batched(pieces: Iterator[str], size: int = CHUNK_SIZE) -> Iterator[str]:
    """Many small pieces (a template yields a few per event) as fewer chunks of about `size`
    characters, each a plain str: an autoescaped template yields Markup, and Markup + str
    escapes the str, so a caller joining chunks with `+` would escape the page twice."""
    buffer: list[str] = []
    held = 0
    for piece in pieces:
        buffer.append(str(piece))
        held += len(piece)
        if held >= size:
            yield "".join(buffer)
            buffer.clear()
            held = 0
    if buffer:
        yield "".join(buffer)


def _span(start: datetime, end: datetime | None) -> str:
    return format_duration(end - start) if end else "—"


def inert_cell(value: str) -> str:
    """A cell a spreadsheet shows as text, never runs: formula prefixes get a leading quote.
    Text stored before warroom cleaned it at the edge is made printable here too."""
    value = printable(value)
    return "'" + value if _FORMULA_START.match(value) else value


def export_chunks(
    session: Session,
    number: int,
    fmt: str,
    *,
    config: WarroomConfig,
    templates: Environment,
    redact: bool,
    now: datetime,
    nonce: str = "",
) -> Iterator[str]:
    """The export of incident `number` in `fmt`; NotFoundError before the first chunk."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    incident = load_incident(session, number)
    redactor = Redactor(config.redact_patterns) if redact else Redactor.off()
    exporter = Exporter(
        session,
        incident,
        templates=templates,
        zone=config.zone,
        redactor=redactor,
        now=now,
        nonce=nonce,
        update_every=config.policy(incident.severity).update_every,
    )
    return exporter.chunks(fmt)
