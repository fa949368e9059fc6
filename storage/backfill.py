"""What the back-fill needs to know of the timeline: which war rooms to read, from when, and
what each message's recorded text is."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from storage.models import Incident, TimelineEvent

# Timestamps per IN (...) list: well under every backend's limit on bound parameters.
_TS_PER_QUERY = 500
_MESSAGE_KINDS = ("message", "message_edited")
_SLACK = timedelta(seconds=1)


@dataclass(frozen=True)
class RecordedText:
    """A message's text as the timeline last recorded it, and when it was edited to that text
    (None: the text it was posted with)."""

    text: str | None
    edited_at: datetime | None


def incidents_to_backfill(session: Session, *, resolved_since: datetime) -> Sequence[Incident]:
    """Incidents with a war room that are open, or were resolved at or after `resolved_since`,
    in number order."""
    return session.exec(
        select(Incident)
        .where(col(Incident.channel_id).is_not(None))
        .where(
            or_(
                col(Incident.status) != "resolved",
                col(Incident.resolved_at).is_(None),
                col(Incident.resolved_at) >= resolved_since,
            )
        )
        .order_by(col(Incident.number))
    ).all()


def newest_message_at(session: Session, *, incident_id: int, before: datetime) -> datetime | None:
    """When the newest message in the incident's war room posted before `before` was posted
    (its Slack ts), of those recorded."""
    return session.exec(
        select(func.max(TimelineEvent.at))
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.kind == "message")
        .where(col(TimelineEvent.at) < before)
    ).one()


def threads_active_since(session: Session, *, incident_id: int, since: datetime) -> list[str]:
    """The thread parents' ts of the replies recorded at or after `since`."""
    rows = session.exec(
        select(TimelineEvent.thread_ts)
        .where(TimelineEvent.incident_id == incident_id)
        .where(TimelineEvent.kind == "message")
        .where(col(TimelineEvent.thread_ts).is_not(None))
        .where(col(TimelineEvent.at) >= since)
        .distinct()
    ).all()
    return sorted(ts for ts in rows if ts)


def recorded_texts(
    session: Session, *, incident_id: int, slack_ts: Iterable[str], posted_since: datetime
) -> dict[str, RecordedText]:
    """For each of these message ts (none posted before `posted_since`) that the timeline
    holds, its last recorded text (the post, or its latest edit); a ts missing from the answer
    was never recorded. `posted_since` keeps the read to the incident's recent entries."""
    wanted = sorted(set(slack_ts))
    found: dict[str, RecordedText] = {}
    for start in range(0, len(wanted), _TS_PER_QUERY):
        chunk = wanted[start : start + _TS_PER_QUERY]
        rows = session.exec(
            select(TimelineEvent.slack_ts, TimelineEvent.kind, TimelineEvent.text, TimelineEvent.at)
            .where(TimelineEvent.incident_id == incident_id)
            .where(col(TimelineEvent.kind).in_(_MESSAGE_KINDS))
            .where(col(TimelineEvent.slack_ts).in_(chunk))
            # A message's entries are at its ts or later (an edit's at its edit); a second's
            # slack for a ts that went through a float.
            .where(col(TimelineEvent.at) >= posted_since - _SLACK)
            .order_by(col(TimelineEvent.id))
        ).all()
        for ts, kind, text, at in rows:
            if ts is None:
                continue
            known = found.get(ts)
            if kind == "message_edited":
                # The latest edit wins, in whatever order the rows were written.
                if known is None or known.edited_at is None or at >= known.edited_at:
                    found[ts] = RecordedText(text, at)
            elif known is None:
                found[ts] = RecordedText(text, None)
    return found
