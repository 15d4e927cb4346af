"""metering: orders.metered_until (how far a metered order is charged) and orders.unpaid_fen (what the balance
could not cover)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("metered_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("unpaid_fen", sa.BigInteger(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("unpaid_fen")
        batch_op.drop_column("metered_until")
