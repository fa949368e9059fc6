"""Slack display names, cached."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, or_, select

from storage.models import SlackUser
from storage.sql import insert_for


def user_name(session: Session, *, user_id: str) -> str | None:
    user = session.get(SlackUser, user_id)
    return user.name if user else None


def user_by_handle(session: Session, *, handle: str) -> SlackUser | None:
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
    return session.get(SlackUser, user_id)


def all_user_names(session: Session) -> dict[str, str]:
    """Every cached display name by user id (for rendering `<@U1>` in exports)."""
    return {user.id: user.name for user in session.exec(select(SlackUser))}
