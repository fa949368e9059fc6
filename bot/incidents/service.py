"""Incident lifecycle and roles: the rules, free of Slack's request types."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from jinja2 import Environment
from sqlmodel import Session

from bot.archive.rules import UNARCHIVE_REFUSALS
from bot.clock import utc_now
from bot.commands.parse import Declaration, UserRef
from bot.config import WarroomConfig
from bot.errors import (
    DeclareLimitError,
    DuplicateCommandError,
    NotAllowedError,
    NotFoundError,
    SlackCallError,
    UsageError,
)
from bot.incidents.enums import Role, Status
from bot.incidents.naming import channel_name, name_candidates
from bot.incidents.people import People
from bot.incidents.readmodels import IncidentView, Person, incident_view
from bot.metrics import Metrics
from bot.reminders.rules import ReminderKind
from bot.reminders.scheduler import ClockChange, Clocks, start_clocks
from bot.slack.blocks.common import (
    announcement_text,
    ended_announcement_text,
    header_blocks,
    header_text,
    topic_text,
)
from bot.slack.gateway import SlackGateway
from bot.slack.text import channel_link, escape, mention, slack_date
from bot.tasks import BackgroundTasks, cancel_and_wait
from storage import incidents as incident_store
from storage import members as member_store
from storage import reminders as reminder_store
from storage import timeline as timeline_store
from storage.db import Database
from storage.models import Incident, RoleAssignment

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The answer to a request made again (a replay of the same signed request): nothing is redone.
ALREADY_HANDLED = "That request was handled already; it is not run twice."


# How long one process may take to open a war room before another may try (a new leader after
# a crash, or the next round of retries after Slack failed): far above a normal opening.
OPENING_CLAIM = timedelta(seconds=60)


@dataclass(frozen=True)
class Invocation:
    """Who asked for what, from where: the Slack-neutral part of a slash command."""

    user_id: str
    user_name: str | None
    channel_id: str
    text: str
    trigger_id: str | None = None
    response_url: str | None = None
    # A further step of a command already on record (the declare form's roles and summary):
    # it needs no record of its own, and is no replay of the command it belongs to.
    follow_up: bool = False
    # Where it came from, for the record of a refusal: a slash command, a button, a form.
    surface: str = "command"

    @property
    def dedupe_key(self) -> str | None:
        """The key that keeps a command on the timeline once: from its trigger id, if it has one."""
        return f"cmd:{self.trigger_id}" if self.trigger_id else None


def command_event(
    session: Session,
    *,
    incident_id: int,
    invocation: Invocation,
    at: datetime,
    kind: str = "command",
    data: Mapping[str, object] | None = None,
) -> bool:
    """Put a slash command on the timeline, once: the same request again (its trigger id) is a
    replay, and DuplicateCommandError rolls back the unit of work it came to change."""
    if invocation.follow_up:
        return False
    # The record and the effect commit together, so this insert is what gates the effect: a
    # replay racing its original waits on the unique key and finds it taken.
    if not timeline_store.add_event(
        session,
        incident_id=incident_id,
        kind=kind,
        at=at,
        actor_id=invocation.user_id,
        actor_name=invocation.user_name,
        text=f"/incident {invocation.text}".strip(),
        data=dict(data or {}),
        dedupe_key=invocation.dedupe_key,
    ):
        raise DuplicateCommandError(ALREADY_HANDLED)
    return True


def refused_event(
    session: Session, *, incident_id: int, invocation: Invocation, at: datetime
) -> None:
    """Put an attempt on a private incident from outside its room on its timeline: who, and
    what they asked (`access_refused`); the same request again is recorded once."""
    timeline_store.add_event(
        session,
        incident_id=incident_id,
        kind="access_refused",
        at=at,
        actor_id=invocation.user_id,
        actor_name=invocation.user_name,
        text=f"/incident {invocation.text}".strip() if invocation.text else None,
        data={"surface": invocation.surface},
        dedupe_key=f"refused:{invocation.trigger_id}" if invocation.trigger_id else None,
    )


def declared_event(session: Session, incident: Incident) -> None:
    """The `declared` entry that opens every timeline."""
    assert incident.id is not None
    timeline_store.add_event(
        session,
        incident_id=incident.id,
        kind="declared",
        at=incident.declared_at,
        actor_id=incident.declared_by_id,
        actor_name=incident.declared_by_name,
        text=incident.title,
        data={"severity": incident.severity, "source": incident.source},
    )


class IncidentService:
    """Declaring incidents, opening their war rooms, roles and notes."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        config: WarroomConfig,
        templates: Environment,
        tasks: BackgroundTasks,
        people: People,
        clocks: Clocks,
        clock: Clock = utc_now,
        metrics: Metrics | None = None,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self.gateway = gateway
        self.config = config
        self.templates = templates
        self.tasks = tasks
        self.people = people
        self.clocks = clocks
        self.clock = clock
        self._refreshing: dict[int, asyncio.Lock] = {}
        # How often an opening under way renews its claim (well inside OPENING_CLAIM).
        self.claim_renewal_every = OPENING_CLAIM.total_seconds() / 3

    # -- finding incidents ---------------------------------------------------------------

    async def find(
        self, *, number: int | None, channel_id: str, asked_by: Invocation | None = None
    ) -> IncidentView | None:
        """The incident a command is aimed at: by number, else the channel it was typed in.
        A private incident named by someone outside its room (`asked_by`) is answered as one
        that does not exist, and the attempt goes on its timeline as `access_refused`."""

        def _find(session: Session) -> tuple[IncidentView | None, bool]:
            if number is not None:
                incident = incident_store.incident_by_number(session, number=number)
                if incident is None:
                    raise NotFoundError(f"There is no INC-{number}.")
                if asked_by is not None and not self.may_see(session, incident, asked_by.user_id):
                    assert incident.id is not None
                    refused_event(session, incident_id=incident.id, invocation=asked_by, at=now)
                    return None, True  # committed: the refusal stays on record
            else:
                incident = incident_store.incident_by_channel(session, channel_id=channel_id)
            return (incident_view(session, incident) if incident else None), False

        now = self.clock()
        view, hidden = await self.db.run(_find)
        if hidden:
            # What a missing incident would say, word for word.
            raise NotFoundError(f"There is no INC-{number}.")
        return view

    def may_see(self, session: Session, incident: Incident, user_id: str) -> bool:
        """Whether `user_id` may see `incident` outside its war room: a private one only its
        room's members and the admins."""
        return member_store.may_see(
            session, incident=incident, user_id=user_id, admins=self.config.admins
        )

    async def refuse(self, incident_id: int, invocation: Invocation) -> None:
        """Put an attempt from outside a private incident's room on its timeline."""
        now = self.clock()
        await self.db.run(
            lambda s: refused_event(s, incident_id=incident_id, invocation=invocation, at=now)
        )

    async def open_incidents(self, *, viewer: str | None = None) -> list[IncidentView]:
        """The unresolved incidents, by number; with a `viewer`, only those they may see."""

        def _open(session: Session) -> list[IncidentView]:
            hidden = (
                member_store.hidden_from(session, user_id=viewer, admins=self.config.admins)
                if viewer is not None
                else set()
            )
            return [
                incident_view(session, i)
                for i in incident_store.open_incidents(session)
                if i.id not in hidden
            ]

        return await self.db.run(_open)

    # -- declaring -------------------------------------------------------------------------

    async def declare(
        self, invocation: Invocation, declaration: Declaration, *, source: str = "slack"
    ) -> IncidentView:
        """Number and store a new incident. A person declaring is its commander and has
        acknowledged it; an alert's incident waits for `/incident ack`. Slack comes later."""
        now = self.clock()
        severity = declaration.severity or self.config.default_severity

        def _declare(session: Session) -> tuple[IncidentView, list[ClockChange]]:
            # In this unit of work: a lookup of its own would cost the ack a second trip to
            # the database threads.
            known = self.people.known_name(session, invocation.user_id)
            declarer_name = known or invocation.user_name
            incident = self.new_incident(
                session,
                title=declaration.title,
                severity=severity,
                at=now,
                declarer=Person(invocation.user_id, declarer_name),
                origin_channel_id=invocation.channel_id or None,  # a form opened from App Home
                source=source,
                private=declaration.private,
                triage=declaration.triage,
            )
            assert incident.id is not None
            if not command_event(session, incident_id=incident.id, invocation=invocation, at=now):
                raise DuplicateCommandError("That command was already handled.")
            if source == "slack":
                # Counted after the new incident took its number: that locks the counter row,
                # so declarations racing on other replicas are counted one after the other.
                self._within_declare_limit(session, invocation.user_id, now)
            declared_event(session, incident)
            roles: list[RoleAssignment] = []
            if source == "slack":
                self.take_role(
                    session,
                    incident,
                    Role.COMMANDER,
                    Person(invocation.user_id, declarer_name),
                    by=invocation.user_id,
                    at=now,
                    by_name=declarer_name,
                    held=roles,
                )
            # Its roles are the ones given just now: no read before the ack.
            view = incident_view(session, incident, roles=roles)
            return view, start_clocks(session, view, self.config)

        view, clocks = await self.db.run(_declare)
        # Off the ack path: the reminder rows are committed, and they are what counts.
        self.tasks.spawn(self.clocks.follow(clocks))
        return view

    def _within_declare_limit(self, session: Session, user_id: str, now: datetime) -> None:
        """Raise DeclareLimitError when `user_id` has declared more than `declare_limit`
        allows, the incident being declared included (admins have no limit)."""
        limit = self.config.declare_limit
        if limit is None or user_id in self.config.admins:
            return
        times = incident_store.declared_by_since(session, user_id=user_id, since=now - limit.window)
        if len(times) <= limit.count:
            return
        earlier = times[:-1]  # the one being declared is the newest
        free_at = earlier[len(earlier) - limit.count] + limit.window
        if self.metrics is not None:
            self.metrics.commands_refused.labels(reason="declare_limit").inc()
        log.warning(
            "command_refused: declare by %s: %d declarations already (declare_limit %s)",
            user_id,
            len(earlier),
            limit,
        )
        raise DeclareLimitError(
            f"You have declared {len(earlier)} incidents in the last {spoken(limit.window)}; "
            f"that is the limit. Try again {_in(free_at - now)}, or ask an admin to declare it."
        )

    def new_incident(
        self,
        session: Session,
        *,
        title: str,
        severity: str,
        at: datetime,
        declarer: Person,
        origin_channel_id: str | None,
        source: str,
        alert_group_key: str | None = None,
        private: bool = False,
        triage: bool = False,
    ) -> Incident:
        """Number and store an incident inside the caller's unit of work (the number is taken
        in the same transaction, so a rollback reuses nothing); `declared_event` records it.
        The declarer of a private one sees it from the start, before its room exists."""
        incident = incident_store.create_incident(
            session,
            number=incident_store.next_incident_number(session),
            title=title,
            severity=severity,
            declared_at=at,
            declared_by_id=declarer.id,
            declared_by_name=declarer.name,
            origin_channel_id=origin_channel_id,
            source=source,
            alert_group_key=alert_group_key,
            # The declaring process opens the war room itself, right after the ack.
            opening_until=at + OPENING_CLAIM,
            is_private=private,
            status=Status.TRIAGE if triage else Status.INVESTIGATING,
        )
        if private and declarer.id and incident.id is not None:
            member_store.add_members(
                session, incident_id=incident.id, user_ids=[declarer.id], at=at
            )
        return incident

    async def resume_unopened_war_rooms(
        self, *, within: timedelta = timedelta(hours=24), after_restart: bool = False
    ) -> int:
        """Open the war rooms that a crash or a Slack outage left unopened (recent ones only:
        an old incident without a channel is history, not an emergency). Each is claimed
        first, so a war room another replica is opening right now is left to it;
        `after_restart` (a lone process just started) knows nobody else can be opening one."""
        now = self.clock()
        cutoff = now - within

        def _claim_unopened(session: Session) -> list[tuple[int, bool]]:
            return [
                (i.id, i.channel_id is not None)
                for i in incident_store.open_incidents(session)
                if i.id is not None
                and (i.channel_id is None or i.header_ts is None)
                and i.declared_at >= cutoff
                and incident_store.claim_war_room_opening(
                    session,
                    incident_id=i.id,
                    now=now,
                    until=now + OPENING_CLAIM,
                    force=after_restart,
                )
            ]

        unopened = await self.db.run(_claim_unopened)
        for incident_id, has_channel in unopened:
            if has_channel:
                # The channel was made but its header never posted (Slack failed, or the
                # process died): post it now, and put the topic right.
                log.info("posting the header of incident %s, left without one", incident_id)
                self.tasks.spawn(self._finish_war_room(incident_id))
            else:
                log.info("opening the war room of incident %s, left unopened", incident_id)
                self.tasks.spawn(self.open_war_room(incident_id, response_url=None))
        return len(unopened)

    async def _finish_war_room(self, incident_id: int) -> None:
        async with self._holding_opening_claim(incident_id):
            incident = await self._view(incident_id)
            assert incident.channel_id is not None
            invitees = await self._invitees(incident)
            # Inviting again is harmless (already_in_channel is skipped); the opening that
            # failed may not have got that far.
            await asyncio.gather(
                self.invite(incident, invitees),
                self.gateway.set_topic(incident.channel_id, topic_text(incident)),
                self._post_header(incident),
            )

    @contextlib.asynccontextmanager
    async def _holding_opening_claim(self, incident_id: int) -> AsyncIterator[None]:
        """Keep this process's claim on opening the war room alive while it works: Slack's
        retries can outlast one claim, and a lapsed claim invites a second opening."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(self.claim_renewal_every)
                # Forced: the claim is this process's own, whatever its time says.
                until = self.clock() + OPENING_CLAIM
                await self.db.run(
                    partial(
                        incident_store.claim_war_room_opening,
                        incident_id=incident_id,
                        now=until,
                        until=until,
                        force=True,
                    )
                )

        renewing = asyncio.get_running_loop().create_task(renew())
        try:
            yield
        finally:
            await cancel_and_wait(renewing)

    async def open_war_room(self, incident_id: int, *, response_url: str | None) -> None:
        """Create the channel, pull people in, set the topic, post and pin the header, announce."""
        async with self._holding_opening_claim(incident_id):
            await self._open_war_room(incident_id, response_url=response_url)

    async def _open_war_room(self, incident_id: int, *, response_url: str | None) -> None:
        incident = await self._view(incident_id)
        name = channel_name(
            self.config.private_channel_pattern
            if incident.private
            else self.config.channel_pattern,
            number=incident.number,
            title=incident.title,
            severity=incident.severity,
            at=incident.declared_at,
        )
        # Who to invite does not depend on the channel: user groups are looked up meanwhile.
        # A channel Slack created is recorded even when the look-up failed.
        creating, inviting = await asyncio.gather(
            self.gateway.create_channel(name_candidates(name), private=incident.private),
            self._invitees(incident),
            return_exceptions=True,
        )
        if isinstance(creating, BaseException):
            raise creating
        created = creating

        def _set_channel(session: Session) -> tuple[IncidentView, bool]:
            ours = incident_store.set_incident_channel(
                session,
                incident_id=incident_id,
                channel_id=created.channel_id,
                channel_name=created.name,
            )
            return incident_view(session, session.get_one(Incident, incident_id)), ours

        incident, ours = await self.db.run(_set_channel)
        if not ours:
            # Another process opened this war room meanwhile (its claim outlived ours): the
            # incident keeps that channel and its record; this one is left unused.
            log.error(
                "%s already has its war room; channel %s was made for nothing",
                incident.ref,
                created.name,
            )
            return
        if isinstance(inviting, BaseException):
            raise inviting
        invitees = inviting
        # Slack lets these go side by side; only the briefing needs the invitation first, and
        # the pin the header's post. All are waited for before a failure is passed on.
        outcomes = await asyncio.gather(
            self._invite_and_brief(incident, invitees),
            self.gateway.set_topic(created.channel_id, topic_text(incident)),
            self._post_header(incident),
            self._announce(incident),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        for extra in failures[1:]:
            log.error("opening the war room of %s also failed", incident.ref, exc_info=extra)
        if failures:
            raise failures[0]
        if response_url:
            await self.gateway.respond(
                response_url,
                f"{incident.ref} is open in {channel_link(created.channel_id)}.",
            )

    async def _invitees(self, incident: IncidentView) -> list[str]:
        users = [p.id for r in incident.roles if r.relieved_at is None for p in [r.user] if p.id]
        if incident.declared_by.id:
            users.insert(0, incident.declared_by.id)
        invite = self.config.policy(incident.severity).invite
        if incident.private and not self.config.private_invites:
            # A private room holds the declarer, the people named and role holders only.
            invite = []
        group_ids = [member for member in invite if member.startswith("S")]
        found = await asyncio.gather(*(self.gateway.usergroup_members(g) for g in group_ids))
        groups = dict(zip(group_ids, found, strict=True))
        for member in invite:
            users.extend(groups.get(member, [member]))
        return list(dict.fromkeys(users))

    async def _invite_and_brief(self, incident: IncidentView, invitees: list[str]) -> None:
        assert incident.channel_id is not None
        await self.invite(incident, invitees)
        commander = incident.commander
        if commander and commander.id:
            await self.brief(incident, Role.COMMANDER, commander.id)

    async def _post_header(self, incident: IncidentView) -> None:
        assert incident.channel_id is not None
        ts = await self.gateway.post_message(
            incident.channel_id,
            header_text(incident),
            header_blocks(incident, now=self.clock(), config=self.config),
            incident_id=incident.id,
        )
        await self.db.run(
            lambda s: incident_store.set_header_ts(s, incident_id=incident.id, header_ts=ts)
        )
        await self.gateway.pin(incident.channel_id, ts)

    async def invite(self, incident: IncidentView, user_ids: list[str]) -> None:
        """Invite people to the war room, and note who is in it now: what decides who sees a
        private incident outside its room."""
        assert incident.channel_id is not None
        present = await self.gateway.invite(incident.channel_id, user_ids)
        if present:
            now = self.clock()
            await self.db.run(
                lambda s: member_store.add_members(
                    s, incident_id=incident.id, user_ids=present, at=now
                )
            )

    async def _announce(self, incident: IncidentView) -> None:
        if not self.config.announce_channel:
            return
        if incident.private and not self.config.announce_private:
            return
        text = private_announcement_text(incident) if incident.private else None
        channel = self.config.announce_channel
        ts = await self.gateway.post_message(
            channel, text or announcement_text(incident), incident_id=incident.id
        )
        if ts:
            # Kept so that a decline or merge can amend what was announced.
            await self.db.run(
                lambda s: incident_store.set_announcement(
                    s, incident_id=incident.id, channel_id=channel, ts=ts
                )
            )

    async def amend_announcement(self, incident: IncidentView) -> None:
        """Amend the announcement of a declined or merged incident to say how it ended."""
        if not incident.announce_channel_id or not incident.announce_ts:
            return
        if incident.private:
            text = f"{incident.ref}, a private incident, was {incident.status}."
        else:
            reason = await self.db.run(
                lambda s: timeline_store.events_of_kinds(
                    s, incident_id=incident.id, kinds=("declined",)
                )
            )
            text = ended_announcement_text(incident, reason[-1].text if reason else None)
        await self.gateway.update_message(incident.announce_channel_id, incident.announce_ts, text)

    async def refresh_war_room(self, incident_id: int) -> None:
        """Bring the topic and the pinned header in line with the stored state."""
        # One refresh at a time per incident, each reading the state inside the lock: two
        # changes in quick succession cannot leave the older state showing.
        async with self._refreshing.setdefault(incident_id, asyncio.Lock()):
            incident = await self._view(incident_id)
            if incident.channel_id is None:
                return
            updates = [self.gateway.set_topic(incident.channel_id, topic_text(incident))]
            if incident.header_ts:
                updates.append(
                    self.gateway.update_message(
                        incident.channel_id,
                        incident.header_ts,
                        header_text(incident),
                        header_blocks(incident, now=self.clock(), config=self.config),
                    )
                )
            await asyncio.gather(*updates)

    async def bring_back_war_room(self, incident_id: int) -> None:
        """A reopened incident's archived room: unarchive it or, when Slack will not let the
        bot, open a new room (named like the old one, with a suffix) and point to the old."""
        incident = await self._view(incident_id)
        old = incident.channel_id
        if incident.archived_at is None or old is None:
            return
        try:
            await self.gateway.unarchive_channel(old)
        except SlackCallError as exc:
            if exc.code not in UNARCHIVE_REFUSALS:
                raise
            log.info("%s: Slack refused to unarchive %s (%s)", incident.ref, old, exc.code)
        else:

            def _unarchived(session: Session) -> None:
                incident_store.clear_archived(session, incident_id=incident_id)
                timeline_store.add_to_latest(
                    session, incident_id=incident_id, kind="reopened", data={"room": "unarchived"}
                )

            await self.db.run(_unarchived)
            await self.gateway.post_message(
                old,
                f":arrows_counterclockwise: *{incident.ref}* is reopened; this room is back.",
                incident_id=incident.id,
            )
            return
        await self._open_new_room(incident, old)

    async def _open_new_room(self, incident: IncidentView, old: str) -> None:
        name = incident.channel_name or f"inc-{incident.number}"
        # The archived room keeps its name: the first free suffix is taken.
        created = await self.gateway.create_channel(name_candidates(name), private=incident.private)

        def _move(session: Session) -> IncidentView | None:
            moved = incident_store.move_war_room(
                session,
                incident_id=incident.id,
                from_channel=old,
                channel_id=created.channel_id,
                channel_name=created.name,
            )
            if not moved:
                return None
            timeline_store.add_to_latest(
                session,
                incident_id=incident.id,
                kind="reopened",
                data={"room": "new", "previous_channel": old, "channel": created.channel_id},
            )
            return incident_view(session, session.get_one(Incident, incident.id))

        moved = await self.db.run(_move)
        if moved is None:
            log.error("%s's war room moved meanwhile; %s is unused", incident.ref, created.name)
            return
        await asyncio.gather(
            self._invite_and_brief(moved, await self._invitees(moved)),
            self.gateway.set_topic(created.channel_id, topic_text(moved)),
            self._post_header(moved),
        )
        # The old room is archived and takes no posts: the link goes here instead.
        await self.gateway.post_message(
            created.channel_id,
            f":arrows_counterclockwise: *{moved.ref}* is reopened. Its earlier war room, "
            f"{channel_link(old)}, is archived and Slack would not let warroom bring it back.",
            incident_id=moved.id,
        )

    # -- roles -------------------------------------------------------------------------------

    def may_manage(self, incident: IncidentView, user_id: str) -> bool:
        """The current commander and the configured admins may assign, hand over and resolve."""
        commander = incident.commander
        return user_id in self.config.admins or (commander is not None and commander.id == user_id)

    def _require_manager(self, incident: IncidentView, user_id: str) -> None:
        if not self.may_manage(incident, user_id):
            holder = incident.commander
            raise NotAllowedError(
                f"Only the commander ({escape(holder.label) if holder else 'nobody'}) or an admin "
                f"can assign roles in {incident.ref}."
            )

    async def assign_role(
        self, incident: IncidentView, role: Role, user: UserRef, invocation: Invocation
    ) -> tuple[IncidentView, bool]:
        """Give `role` to `user`; False when they already hold it. NotAllowedError if refused."""
        # Asked first so that a refused caller costs no Slack lookup, and again on the locked
        # row below, where it counts: a hand-over may have been committed in between.
        self._require_manager(incident, invocation.user_id)
        profile = await self.people.resolve(user)
        if profile is None:
            raise UsageError(f"Slack has no user {escape(user.handle or user.user_id or '')}.")
        if profile.is_bot:
            raise UsageError("Roles go to people, not apps.")
        now = self.clock()

        def _assign(session: Session) -> tuple[IncidentView, bool]:
            row = incident_store.lock_incident(session, incident_id=incident.id)
            self._require_manager(incident_view(session, row), invocation.user_id)
            command_event(session, incident_id=incident.id, invocation=invocation, at=now)
            changed = self.take_role(
                session,
                row,
                role,
                Person(profile.user_id, profile.name),
                by=invocation.user_id,
                at=now,
                by_name=invocation.user_name,
            )
            return incident_view(session, row), changed

        view, changed = await self.db.run(_assign)
        if changed:
            self.tasks.spawn(self.welcome(view, role, profile.user_id))
        return view, changed

    def take_role(
        self,
        session: Session,
        incident: Incident,
        role: Role,
        person: Person,
        *,
        by: str,
        at: datetime,
        by_name: str | None = None,
        held: list[RoleAssignment] | None = None,
    ) -> bool:
        """Give `person` `role` in the caller's unit of work; False when they hold it already.
        `held`: the roles held now when the caller knows them (a new incident's: none), read
        from the database otherwise; the new assignment is added to it."""
        assert incident.id is not None and person.id is not None
        if held is None:
            held = list(incident_store.current_roles(session, incident_id=incident.id))
        current = [r for r in held if r.role == role]
        if any(r.user_id == person.id for r in current):
            return False
        previous = None
        if role != Role.RESOLVER:
            # Commander and comms are held by one person: the new holder relieves the old.
            for assignment in current:
                incident_store.relieve_role(session, assignment=assignment, at=at)
                previous = assignment.user_id
        held.append(
            incident_store.add_role(
                session,
                incident_id=incident.id,
                role=role,
                user_id=person.id,
                user_name=person.name,
                assigned_by_id=by,
                at=at,
            )
        )
        if role == Role.COMMANDER and incident.acknowledged_at is None:
            # Someone taking command acknowledges an alert; its escalation clock stops (a job
            # already scheduled finds the reminder inactive and does nothing).
            incident.acknowledged_at = at
            session.add(incident)
            reminder_store.stop_reminder(session, incident_id=incident.id, kind=ReminderKind.ACK)
        text = f"{person.label} is {role}"
        timeline_store.add_event(
            session,
            incident_id=incident.id,
            kind="role_assigned",
            at=at,
            actor_id=by,
            actor_name=by_name,
            text=text,
            data={
                "role": role,
                "user": {"id": person.id, "name": person.name},
                "previous": previous,
            },
        )
        return True

    async def welcome(self, incident: IncidentView, role: Role, user_id: str) -> None:
        """A new role holder is invited, briefed, and shown in the topic and header."""
        if incident.channel_id:
            await self.invite(incident, [user_id])
            await self.brief(incident, role, user_id)
        await self.refresh_war_room(incident.id)

    async def brief(self, incident: IncidentView, role: Role, user_id: str) -> None:
        """The role's briefing, shown to `user_id` in the war room."""
        assert incident.channel_id is not None
        text = self.templates.get_template(f"briefings/{role}.md.j2").render(incident=incident)
        await self.gateway.post_ephemeral(incident.channel_id, user_id, text)

    # -- notes ---------------------------------------------------------------------------------

    async def add_note(self, incident: IncidentView, text: str, invocation: Invocation) -> None:
        """Put a note, and the command that made it, on the incident's timeline."""
        now = self.clock()

        def _note(session: Session) -> None:
            command_event(session, incident_id=incident.id, invocation=invocation, at=now)
            timeline_store.add_event(
                session,
                incident_id=incident.id,
                kind="note",
                at=now,
                actor_id=invocation.user_id,
                actor_name=invocation.user_name,
                text=text,
            )

        await self.db.run(_note)

    async def record_command(
        self,
        incident_id: int,
        invocation: Invocation,
        *,
        refused: bool = False,
        reason: str | None = None,
    ) -> None:
        """A command that changed nothing still goes on the record, with why."""
        now = self.clock()
        kind = "command_refused" if refused else "command"
        data = {"reason": reason} if reason else {}
        await self.db.run(
            lambda s: command_event(
                s, incident_id=incident_id, invocation=invocation, at=now, kind=kind, data=data
            )
        )

    async def find_by_id(self, incident_id: int) -> IncidentView:
        """The incident with database id `incident_id`, which must exist."""
        return await self._view(incident_id)

    async def _view(self, incident_id: int) -> IncidentView:
        def _load(session: Session) -> IncidentView:
            return incident_view(session, session.get_one(Incident, incident_id))

        return await self.db.run(_load)


def private_announcement_text(incident: IncidentView) -> str:
    """All the announcement channel hears of a private incident (with `announce_private`):
    no title, severity or people."""
    return f"{incident.ref}, a private incident, was declared."


def spoken(delta: timedelta) -> str:
    """A duration as a person says it: `10 minutes`, `2 hours`, `45 seconds`."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _in(delta: timedelta) -> str:
    minutes = -(-int(delta.total_seconds()) // 60)  # rounded up: never too early
    return "in a minute" if minutes <= 1 else f"in {minutes} minutes"


def roles_summary(incident: IncidentView) -> str:
    """Who holds what, since when (in each reader's time zone): the reply to `/incident roles`."""
    lines = [f"*{incident.ref}: {escape(incident.title)}*"]
    for role in Role:
        current = [r for r in incident.roles if r.role == role and r.relieved_at is None]
        if not current:
            lines.append(f"• {role}: nobody")
        for r in current:
            who = mention(r.user.id) if r.user.id else escape(r.user.label)
            lines.append(f"• {role}: {who} since {slack_date(r.assigned_at)}")
    return "\n".join(lines)
