"""followup: the work an incident leaves behind, FU-1, FU-2, ... across the deployment

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "followup",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=True),
        sa.Column("owner_name", sa.String(length=200), nullable=True),
        sa.Column("due", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.String(length=32), nullable=True),
        sa.Column("created_by_name", sa.String(length=200), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("source_ts", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incident.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.create_index("ix_followup_incident", ["incident_id", "id"], unique=False)
        batch_op.create_index("ix_followup_owner_status", ["owner_id", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("followup", schema=None) as batch_op:
        batch_op.drop_index("ix_followup_owner_status")
        batch_op.drop_index("ix_followup_incident")
    op.drop_table("followup")
