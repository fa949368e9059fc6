"""incident.alert_group_key: one open incident per Alertmanager group

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("status != 'resolved'")


def upgrade() -> None:
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.add_column(sa.Column("alert_group_key", sa.String(length=64), nullable=True))
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
    with op.batch_alter_table("incident", schema=None) as batch_op:
        batch_op.drop_column("alert_group_key")
