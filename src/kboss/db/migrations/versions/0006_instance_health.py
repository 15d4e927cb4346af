"""instances: a health mark (degraded by a forced worker removal) and its reason

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("health", sa.String(16), nullable=False, server_default=""))
        batch.add_column(sa.Column("health_reason", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("health_reason")
        batch.drop_column("health")
