"""Tables of the durable operations: operations, their per-step per-node rows, history and cluster locks.

Defined on the catalog's `Base`, so one metadata (and one Alembic history) covers everything.
`operations.cluster_id` and `cluster_locks.cluster_id` carry no foreign key on purpose: removing a cluster
deletes its record while its operation (and the history of that operation) must survive it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import AutoIncrement, Base, id_column


def now() -> dt.datetime:
    """UTC with microseconds: heartbeats and timeouts of tests run at sub-second scale."""
    return dt.datetime.now(dt.UTC)


class UtcDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on both databases: SQLite stores naive text, so normalise on the way in and out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        # SQLite compares these as text: one zone and one format keep the comparison chronological.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Operation(Base):
    __tablename__ = "operations"
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Which step implementations run it: "agent" (the center's site agent) or "simulated"; chosen explicitly.
    backend: Mapped[str] = mapped_column(String(16), default="agent")
    cluster_id: Mapped[str | None] = mapped_column(String(21), index=True)
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Non-secret parameters only: secrets stay encrypted in the catalog rows and are read when a step runs.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    requested_by: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    current_step: Mapped[str] = mapped_column(String(64), default="")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    deadline_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class OperationStep(Base):
    """One step of an operation on one node ("" for cluster-level steps): what retry resumes from."""

    __tablename__ = "operation_steps"
    __table_args__ = (UniqueConstraint("operation_id", "ordinal", "node", name="uq_operation_step_node"),)
    id: Mapped[str] = id_column()
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"), index=True)
    ordinal: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    node: Mapped[str] = mapped_column(String(21), default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    timeout_seconds: Mapped[int] = mapped_column(Integer)
    error: Mapped[str] = mapped_column(Text, default="")
    # The redacted tail of the step's output, and how many characters were ever written (for live followers).
    output: Mapped[str] = mapped_column(Text, default="")
    output_size: Mapped[int] = mapped_column(BigInteger, default=0)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class OperationHistory(Base):
    """Append-only: every state change and every claim change of an operation, with who and why."""

    __tablename__ = "operation_history"
    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128))


class ClusterLock(Base):
    """One operation at a time per cluster: the primary key makes a second holder impossible."""

    __tablename__ = "cluster_locks"
    cluster_id: Mapped[str] = mapped_column(String(21), primary_key=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.id", ondelete="CASCADE"), index=True)
    acquired_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)
