"""the incident's whole life: where its announcement was posted, what it was merged into, when
its room was archived; an alert group stays open only while its incident is neither resolved,
declined nor merged

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from storage.models import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_OPEN = sa.text("status != 'resolved'")
OPEN = sa.text("status NOT IN ('resolved', 'declined', 'merged')")


def upgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("announce_channel_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("announce_ts", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("archived_at", UTCDateTime(), nullable=True))
    op.drop_index("uq_incident_open_alert_group", table_name="incident")
    op.create_index(
        "uq_incident_open_alert_group",
        "incident",
        ["alert_group_key"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("uq_incident_open_alert_group", table_name="incident")
    op.create_index(
        "uq_incident_open_alert_group",
        "incident",
        ["alert_group_key"],
        unique=True,
        sqlite_where=OLD_OPEN,
        postgresql_where=OLD_OPEN,
    )
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("archived_at")
        batch_op.drop_column("merged_into_id")
        batch_op.drop_column("announce_ts")
        batch_op.drop_column("announce_channel_id")
