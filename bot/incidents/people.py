"""Who is who: display names resolved through users.info, cached in memory and in the database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from bot.clock import utc_now
from bot.commands.parse import UserRef
from bot.errors import WarroomError
from bot.slack.gateway import SlackGateway, SlackProfile
from storage import timeline as timeline_store
from storage import users as user_store
from storage.db import Database

LOOKUP_TIMEOUT = 2.0
# How long "Slack has no such user" is believed before users.info is asked again. Without it,
# every message of such an author costs a database lookup and a Slack call.
UNKNOWN_FOR = timedelta(minutes=10)


class People:
    """Display names of Slack users, from memory, then the database, then Slack's users.info."""

    def __init__(
        self,
        *,
        db: Database,
        gateway: SlackGateway,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.db = db
        self.gateway = gateway
        self.clock = clock
        self._names: dict[str, str] = {}
        self._resolving: set[str] = set()
        self._unknown_until: dict[str, datetime] = {}

    def remembered(self, user_id: str) -> str | None:
        """A name already in memory; no database, no Slack."""
        return self._names.get(user_id)

    def name_in_memory(self, user_id: str) -> tuple[bool, str | None]:
        """(True, the name) when memory settles it: a name known, or none to look up now (Slack
        knows no such user, or is being asked); (False, None) when the database must be read."""
        name = self._names.get(user_id)
        if name is not None or self._not_to_look_up(user_id):
            return True, name
        return False, None

    def _not_to_look_up(self, user_id: str) -> bool:
        # Being asked of Slack now (the first miss already read the database; the entries
        # recorded meanwhile are named when the answer comes), or known to be unknown.
        if user_id in self._resolving:
            return True
        until = self._unknown_until.get(user_id)
        if until is None:
            return False
        if self.clock() < until:
            return True
        del self._unknown_until[user_id]
        return False

    def known_name(self, session: Session, user_id: str) -> str | None:
        """A name from memory or the database, inside the caller's unit of work; no Slack call."""
        name = self._names.get(user_id)
        if name is None and not self._not_to_look_up(user_id):
            name = user_store.user_name(session, user_id=user_id)
            if name is not None:
                self._names[user_id] = name
        return name

    async def cached_name(self, user_id: str) -> str | None:
        """The user's name from memory or the database, None if unknown; never asks Slack."""
        if user_id in self._names:
            return self._names[user_id]
        if self._not_to_look_up(user_id):
            return None
        return await self.db.run(lambda s: self.known_name(s, user_id))

    async def resolve(self, ref: UserRef) -> SlackProfile | None:
        """The profile a command names, or None when Slack has no such user. Known people are
        answered from the cache; Slack is asked within a deadline that keeps the ack in time."""
        cached = await self.db.run(lambda s: self._cached_profile(s, ref))
        if cached is not None:
            return cached
        try:
            async with asyncio.timeout(LOOKUP_TIMEOUT):
                if ref.user_id:
                    profile = await self.gateway.user_profile(ref.user_id)
                else:
                    assert ref.handle is not None
                    profile = await self.gateway.find_user(ref.handle)
        except TimeoutError:
            raise WarroomError(
                "Slack is slow to answer just now; nothing changed. Try again."
            ) from None
        if profile is not None:
            await self._save(profile)
        return profile

    def _cached_profile(self, session: Session, ref: UserRef) -> SlackProfile | None:
        if ref.user_id:
            user = user_store.get_user(session, user_id=ref.user_id)
        else:
            assert ref.handle is not None
            user = user_store.user_by_handle(session, handle=ref.handle)
        return SlackProfile(user.id, user.name, user.handle, user.is_bot) if user else None

    async def learn(self, user_id: str) -> None:
        """Resolve a name Slack has not told us yet and name the events already recorded."""
        if user_id in self._names or self._not_to_look_up(user_id):
            return
        self._resolving.add(user_id)
        try:
            profile = await self.gateway.user_profile(user_id)
            if profile is not None:
                await self._save(profile)
            else:
                self._unknown_until[user_id] = self.clock() + UNKNOWN_FOR
        finally:
            self._resolving.discard(user_id)

    async def _save(self, profile: SlackProfile) -> None:
        now = self.clock()

        def _store(session: Session) -> None:
            user_store.save_user(
                session,
                user_id=profile.user_id,
                name=profile.name,
                handle=profile.handle,
                at=now,
                is_bot=profile.is_bot,
            )
            timeline_store.fill_actor_name(session, actor_id=profile.user_id, name=profile.name)

        await self.db.run(_store)
        self._names[profile.user_id] = profile.name
