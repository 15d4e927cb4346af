"""providers and customers: orgs.kind and orgs.provider_id, centers.published_all, center_customers

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        # Every org so far owns its machines: a provider. Customers are made by a provider (`provider_id`).
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="provider", nullable=False))
        batch_op.add_column(sa.Column("provider_id", sa.String(length=21), nullable=True))
        batch_op.create_index(batch_op.f("ix_orgs_provider_id"), ["provider_id"], unique=False)
        batch_op.create_foreign_key("fk_orgs_provider_id_orgs", "orgs", ["provider_id"], ["id"])
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_all", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "center_customers",
        sa.Column("center_id", sa.String(length=21), nullable=False),
        sa.Column("customer_id", sa.String(length=21), nullable=False),
        sa.ForeignKeyConstraint(["center_id"], ["centers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("center_id", "customer_id"),
    )
    with op.batch_alter_table("center_customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_center_customers_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("center_customers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_center_customers_customer_id"))
    op.drop_table("center_customers")
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_column("published_all")
    with op.batch_alter_table("orgs", schema=None) as batch_op:
        batch_op.drop_constraint("fk_orgs_provider_id_orgs", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_orgs_provider_id"))
        batch_op.drop_column("provider_id")
        batch_op.drop_column("kind")
