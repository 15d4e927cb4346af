"""The `instances` table: container instances sold to customers (the spec's cpcpodyaml) and the stock they hold;
`instance_history`: their state changes.

Defined on the catalog's `Base`, so one metadata (and one Alembic history) covers everything. `userid` carries no
foreign key on purpose: in development mode the caller may be the spec's `orgid` debugging principal, which is
not a user row. `stock` records exactly what was taken from which `component_stock` row, so that releasing gives
back what was consumed even after the catalog's units or the instance's parameters changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import AutoIncrement, Base, id_column, utcnow


class Instance(Base):
    __tablename__ = "instances"
    # Names derive from the id; two ids that differ only in case would share names (astronomically unlikely),
    # and this makes that a refused insert instead of two rows owning the same objects.
    __table_args__ = (
        UniqueConstraint("clusterid", "namespace_name", "service_name", name="uq_instance_names"),
        Index("uq_instance_nodeport", "clusterid", "source_outsideport", unique=True),  # instances/nodeports.py
    )
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    userid: Mapped[str] = mapped_column(String(21), index=True)
    cpcid: Mapped[str] = mapped_column(ForeignKey("centers.id"), index=True)
    clusterid: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    namespace_name: Mapped[str] = mapped_column(String(63))
    serviceaccount_name: Mapped[str] = mapped_column(String(253))
    podcd_name: Mapped[str] = mapped_column(String(63))
    service_name: Mapped[str] = mapped_column(String(63))
    source_name: Mapped[str] = mapped_column(String(253), default="")
    instance_type: Mapped[str] = mapped_column(String(16))
    source_podengine: Mapped[str] = mapped_column(String(16))
    source_replicasetnum: Mapped[int] = mapped_column(Integer, default=1)
    pod_imagepath: Mapped[str] = mapped_column(String(512))
    source_authuser: Mapped[str] = mapped_column(String(64))
    source_authpasswd: Mapped[str] = mapped_column(Text)  # sealed with the deployment's SecretBox
    source_cpurate: Mapped[str] = mapped_column(String(32))
    source_memrate: Mapped[str] = mapped_column(String(32))
    source_gpu: Mapped[int] = mapped_column(Integer, default=0)
    cpu_model: Mapped[str] = mapped_column(String(128))
    gpu_model: Mapped[str] = mapped_column(String(128), default="")
    disk_sys_limit: Mapped[str] = mapped_column(String(32), default="0")
    source_storagelimits: Mapped[str] = mapped_column(String(32), default="0")
    source_mountpath: Mapped[str] = mapped_column(String(253))
    source_selflabel: Mapped[str] = mapped_column(String(400), default="")
    source_nodeselector: Mapped[str] = mapped_column(Text, default="")
    source_portmode: Mapped[str] = mapped_column(String(16))
    source_restartpolicy: Mapped[str] = mapped_column(String(16))
    source_apiport: Mapped[int] = mapped_column(Integer)
    source_insideport: Mapped[int] = mapped_column(Integer)
    source_outsideport: Mapped[int | None] = mapped_column(Integer)
    source_schedule: Mapped[str] = mapped_column(String(64), default="")
    source_ingresshost: Mapped[str] = mapped_column(String(253), default="")
    state: Mapped[str] = mapped_column(String(16), index=True)  # the table: kboss.instances.states
    last_error: Mapped[str] = mapped_column(Text, default="")
    # "degraded" once a forced worker removal took the node its pods needed (`instances.health`), else "".
    health: Mapped[str] = mapped_column(String(16), default="", server_default="")
    health_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    # [{"role", "type", "model", "unit", "component_id", "stock_id", "amount"}]: amounts in the component's unit.
    stock: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class InstanceHistory(Base):
    """Append-only: every state change of an instance (`kboss.instances.states`), with who and why. No foreign key
    on purpose: the history of a deleted instance, its deletion included, outlives its row."""

    __tablename__ = "instance_history"
    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    instance_id: Mapped[str] = mapped_column(String(21), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128))
