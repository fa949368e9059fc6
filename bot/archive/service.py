"""Archiving war rooms: the sweep that archives ended incidents' rooms when their time comes
(final timeline first), and a room archived by hand put on the record."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session

from bot.archive.rules import (
    CLOSING_KINDS,
    SETTLING_KINDS,
    STALE_CLAIM,
    ArchiveFacts,
    is_due,
)
from bot.config import WarroomConfig
from bot.errors import SlackCallError
from bot.exports.review import ReviewService
from bot.incidents.readmodels import IncidentView, incident_view
from bot.slack.gateway import SlackGateway
from storage import incidents as incident_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import Incident

log = logging.getLogger(__name__)

# The final timeline posted to the room before it is archived.
FINAL_EXPORTS = ("html", "json")
# Slack's answers that no retry will change: the claim stays, and a person must look.
PERMANENT_FAILURES = frozenset(
    {"not_in_channel", "cant_archive_general", "channel_not_found", "restricted_action"}
)


def archive_facts(session: Session, incident: Incident) -> ArchiveFacts:
    """What the archive rule needs of a stored incident (its closing time from the timeline)."""
    assert incident.id is not None
    closing = timeline_store.events_of_kinds(session, incident_id=incident.id, kinds=CLOSING_KINDS)
    return ArchiveFacts(
        status=incident.status,
        severity=incident.severity,
        resolved_at=incident.resolved_at,
        postmortem_done_at=incident.postmortem_done_at,
        closed_at=closing[-1].at if closing else None,
    )


def due_for_archive(
    session: Session, config: WarroomConfig, now: datetime
) -> list[tuple[int, datetime | None]]:
    """The incidents whose war rooms are due to be archived now, each with its `archived_at`
    as read (None, or the stale claim of a process that stopped half-way)."""
    due: list[tuple[int, datetime | None]] = [
        (row.id, None)
        for row in incident_store.archive_candidates(session)
        if row.id is not None and is_due(archive_facts(session, row), config, now)
    ]
    stale = incident_store.stale_archive_claims(
        session, claimed_before=now - STALE_CLAIM, settled_by=SETTLING_KINDS
    )
    due += [(row.id, row.archived_at) for row in stale if row.id is not None]
    return due


class ArchiveService:
    """Archives ended incidents' war rooms, and records rooms archived by hand."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        review: ReviewService,
        config: WarroomConfig,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.review = review
        self.config = config
        self.clock = clock

    async def sweep(self) -> list[int]:
        """Archive every war room that is due; the ids of the incidents this process archived
        (another replica sweeping at the same moment archives the rest, never the same)."""
        now = self.clock()
        due = await self.db.run(lambda s: due_for_archive(s, self.config, now))
        archived = []
        for incident_id, seen in due:
            if await self.archive(incident_id, now, seen=seen):
                archived.append(incident_id)
        return archived

    async def archive(self, incident_id: int, now: datetime, *, seen: datetime | None) -> bool:
        """Claim the room, post the final timeline to it, archive it and record that. False
        when another process has the claim or Slack failed (a transient failure gives the
        claim back for the next sweep; a refusal for good is noted on the timeline)."""

        def _claim(session: Session) -> IncidentView | None:
            if not incident_store.claim_archive(
                session, incident_id=incident_id, now=now, seen=seen
            ):
                return None
            return incident_view(session, session.get_one(Incident, incident_id))

        incident = await self.db.run(_claim)
        if incident is None or incident.channel_id is None:
            return False
        try:
            for fmt in FINAL_EXPORTS:
                await self.review.upload(incident, fmt, incident.channel_id)
            await self.gateway.archive_channel(incident.channel_id)
        except SlackCallError as exc:
            if exc.code in PERMANENT_FAILURES:
                # Kept claimed: trying every minute would post the timeline every minute.
                log.error("%s's war room was not archived: Slack said %s", incident.ref, exc.code)
                await self._note_refusal(incident_id, exc.code)
                return False
            log.warning("%s's war room not archived yet: Slack said %s", incident.ref, exc.code)
            await self._release(incident_id, now)
            return False
        except Exception:
            log.exception("%s's war room not archived yet", incident.ref)
            await self._release(incident_id, now)
            return False

        def _record(session: Session) -> None:
            timeline_store.add_event(
                session,
                incident_id=incident_id,
                kind="archived",
                at=self.clock(),
                text=f"War room archived; its final timeline ({', '.join(FINAL_EXPORTS)}) "
                "was posted to it first.",
                data={"channel": incident.channel_id, "exports": list(FINAL_EXPORTS)},
            )

        await self.db.run(_record)
        log.info("%s's war room is archived", incident.ref)
        return True

    async def _note_refusal(self, incident_id: int, code: str) -> None:
        await self.db.run(
            lambda s: timeline_store.add_event(
                s,
                incident_id=incident_id,
                kind="note",
                at=self.clock(),
                text=f"warroom could not archive this war room: Slack said `{code}`. "
                "Archive it by hand.",
                data={"archive_error": code},
            )
        )

    async def _release(self, incident_id: int, claimed_at: datetime) -> None:
        await self.db.run(
            lambda s: incident_store.release_archive_claim(
                s, incident_id=incident_id, claimed_at=claimed_at
            )
        )

    async def record_archived_by_hand(
        self, channel_id: str, user_id: str | None, event_id: str | None
    ) -> bool:
        """A war room someone archived in Slack: note when, and who, unless warroom archived
        it itself (its claim is set first). False for a channel that is no war room."""
        now = self.clock()

        def _record(session: Session) -> bool:
            row = incident_store.incident_by_channel(session, channel_id=channel_id)
            if row is None or row.id is None:
                return False
            if not incident_store.claim_archive(session, incident_id=row.id, now=now):
                return False
            timeline_store.add_event(
                session,
                incident_id=row.id,
                kind="channel_archive",
                at=now,
                actor_id=user_id,
                text="War room archived in Slack.",
                data={"channel": channel_id},
                dedupe_key=f"event:{event_id}" if event_id else None,
            )
            return True

        return await self.db.run(_record)
