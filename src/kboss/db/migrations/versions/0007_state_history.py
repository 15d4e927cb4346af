"""history of instance states and device node_status: instance_history, device_history

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite only aliases INTEGER PRIMARY KEY to the rowid (autoincrement); PostgreSQL gets a bigint.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "instance_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=21), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("instance_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_history_instance_id"), ["instance_id"], unique=False)

    op.create_table(
        "device_history",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=21), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_state", sa.Integer(), nullable=False),
        sa.Column("to_state", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("device_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_history_device_id"), ["device_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_history_device_id"))
    op.drop_table("device_history")
    with op.batch_alter_table("instance_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_history_instance_id"))
    op.drop_table("instance_history")
