"""timeline_event.thread_at, so exports stream thread replies under their parent

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 19:55:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thread_at", UTCDateTime(), nullable=True))
    # Existing replies sort by their own time; new ones get their thread's start.
    op.execute("UPDATE timeline_event SET thread_at = at")
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.alter_column("thread_at", existing_type=UTCDateTime(), nullable=False)
        batch_op.create_index(
            "ix_timeline_event_incident_thread",
            ["incident_id", "thread_at", "at", "id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_event_incident_thread")
        batch_op.drop_column("thread_at")
