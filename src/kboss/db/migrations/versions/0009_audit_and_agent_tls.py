"""audit trail and TLS to site agents: audit_events (append-only), centers.agent_cert_sha256/_pem, allow_plain_http

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 21:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

AutoIncrement = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# Rows are never changed once written: a trigger refuses UPDATE on both databases (retention deletes whole rows).
_SQLITE_TRIGGER = """
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
"""
_PG_FUNCTION = """
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$
"""
_PG_TRIGGER = """
CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""


def upgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        # Existing centers have no pin yet: the first contact over HTTPS captures it (trust on first use).
        batch_op.add_column(sa.Column("agent_cert_sha256", sa.String(length=95), server_default="", nullable=False))
        batch_op.add_column(sa.Column("agent_cert_pem", sa.Text(), server_default="", nullable=False))
        # Plain HTTP to an agent that is not on loopback is refused unless the center says so (docs/security.md).
        batch_op.add_column(sa.Column("allow_plain_http", sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table(
        "audit_events",
        sa.Column("id", AutoIncrement, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(length=21), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("orgid", sa.String(length=21), nullable=False),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_orgid"), ["orgid"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS audit_events_append_only"
        + (" ON audit_events" if op.get_bind().dialect.name == "postgresql" else "")
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))
        batch_op.drop_index(batch_op.f("ix_audit_events_orgid"))
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
    op.drop_table("audit_events")
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_column("allow_plain_http")
        batch_op.drop_column("agent_cert_pem")
        batch_op.drop_column("agent_cert_sha256")
