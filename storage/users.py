"""Slack display names, cached."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, or_, select

from storage.models import SlackUser
from storage.sql import insert_for


def user_name(session: Session, *, user_id: str) -> str | None:
    """The user's stored display name, or None if not known yet."""
    user = session.get(SlackUser, user_id)
    return user.name if user else None


def user_by_handle(session: Session, *, handle: str) -> SlackUser | None:
    """The user with this handle (any case) or exactly this display name, or None."""
    lowered = handle.lower()
    return session.exec(
        select(SlackUser).where(
            or_(col(SlackUser.handle) == lowered, col(SlackUser.name) == handle)
        )
    ).first()


def save_user(
    session: Session,
    *,
    user_id: str,
    name: str,
    handle: str | None,
    at: datetime,
    is_bot: bool = False,
) -> None:
    """Store the user's name, handle and bot flag, replacing what was kept before."""
    values = {
        "id": user_id,
        "name": name,
        "handle": handle.lower() if handle else None,
        "is_bot": is_bot,
    }
    statement = insert_for(session, SlackUser).values(**values, updated_at=at)
    session.execute(
        statement.on_conflict_do_update(index_elements=["id"], set_={**values, "updated_at": at})
    )


def get_user(session: Session, *, user_id: str) -> SlackUser | None:
    """The stored user with this Slack id, or None."""
    return session.get(SlackUser, user_id)


def all_user_names(session: Session) -> dict[str, str]:
    """Every cached display name by user id (for rendering `<@U1>` in exports)."""
    return {user.id: user.name for user in session.exec(select(SlackUser))}
