"""timeline, incidents, roles, users

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:12:40.389043
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "counter",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("channel_name", sa.String(length=80), nullable=True),
        sa.Column("origin_channel_id", sa.String(length=32), nullable=True),
        sa.Column("declared_by_id", sa.String(length=32), nullable=True),
        sa.Column("declared_by_name", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.Column("acknowledged_at", UTCDateTime(), nullable=True),
        sa.Column("mitigated_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("header_ts", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id"),
        sa.UniqueConstraint("number"),
    )
    op.create_table(
        "slack_user",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("slack_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_user_handle"), ["handle"], unique=False)

    op.create_table(
        "role_assignment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=200), nullable=True),
        sa.Column("assigned_by_id", sa.String(length=32), nullable=True),
        sa.Column("assigned_at", UTCDateTime(), nullable=False),
        sa.Column("relieved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("role_assignment", schema=None) as batch_op:
        batch_op.create_index(
            "ix_role_assignment_incident_role", ["incident_id", "role"], unique=False
        )

    op.create_table(
        "timeline_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.String(length=32), nullable=True),
        sa.Column("actor_name", sa.String(length=200), nullable=True),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incident.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_timeline_event_dedupe_key"),
    )
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_timeline_event_actor_id"), ["actor_id"], unique=False)
        batch_op.create_index(
            "ix_timeline_event_incident_at", ["incident_id", "at", "id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.drop_index("ix_timeline_event_incident_at")
        batch_op.drop_index(batch_op.f("ix_timeline_event_actor_id"))

    op.drop_table("timeline_event")
    with op.batch_alter_table("role_assignment", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignment_incident_role")

    op.drop_table("role_assignment")
    with op.batch_alter_table("slack_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_user_handle"))

    op.drop_table("slack_user")
    op.drop_table("incident")
    op.drop_table("counter")
