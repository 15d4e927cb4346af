"""customer quotas and suspension: customer_quotas (a provider's limits per customer and resource), orders.suspended_at

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_quotas",
        sa.Column("orgid", sa.String(length=21), nullable=False),
        sa.Column("resource", sa.String(length=160), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["orgid"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("orgid", "resource"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("suspended_at")
    op.drop_table("customer_quotas")
