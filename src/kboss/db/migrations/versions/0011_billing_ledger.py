"""billing: billing_accounts (one per customer org, the row a charge locks) and ledger_entries (credits, charges,
refunds in 分; the balance is their sum)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 22:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

AutoIncrement = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("orgid", sa.String(length=21), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["orgid"], ["orgs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("orgid"),
    )
    op.create_table(
        "ledger_entries",
        sa.Column("id", AutoIncrement, autoincrement=True, nullable=False),
        sa.Column("orgid", sa.String(length=21), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("instance_id", sa.String(length=21), nullable=True),
        sa.Column("order_id", sa.String(length=21), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["orgid"], ["billing_accounts.orgid"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name="uq_ledger_entries_idempotency_key"),
    )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ledger_entries_orgid"), ["orgid"], unique=False)
        batch_op.create_index(batch_op.f("ix_ledger_entries_instance_id"), ["instance_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_entries_instance_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_entries_orgid"))
    op.drop_table("ledger_entries")
    op.drop_table("billing_accounts")
