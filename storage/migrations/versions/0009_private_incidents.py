"""private incidents: incident.is_private, and who is in each war room (incident_member)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_private", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "incident_member",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("incident_id", "user_id"),
    )
    with op.batch_alter_table("incident_member", schema=None) as batch_op:
        batch_op.create_index("ix_incident_member_user", ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incident_member", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_member_user")
    op.drop_table("incident_member")
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("is_private")
