"""instances: a NodePort is held by one instance per cluster

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:05:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("uq_instance_nodeport", "instances", ["clusterid", "source_outsideport"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_instance_nodeport", table_name="instances")
