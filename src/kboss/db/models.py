"""Tables of the platform. Every tenant-owned row carries `orgid`; services filter on it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kboss.ids import new_id


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class Base(DeclarativeBase):
    pass


def id_column() -> Mapped[str]:
    return mapped_column(String(21), primary_key=True, default=new_id)


# SQLite only aliases INTEGER PRIMARY KEY to the rowid (autoincrement); PostgreSQL gets a bigint.
AutoIncrement = BigInteger().with_variant(Integer(), "sqlite")


ORG_PROVIDER = "provider"
ORG_CUSTOMER = "customer"


class Org(Base):
    """A provider owns centers, devices, clusters and prices; a customer (made by its provider) buys instances on
    the clusters its provider publishes to it."""

    __tablename__ = "orgs"
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    kind: Mapped[str] = mapped_column(String(16), default=ORG_PROVIDER, server_default=ORG_PROVIDER)
    provider_id: Mapped[str | None] = mapped_column(ForeignKey("orgs.id", name="fk_orgs_provider_id_orgs"), index=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # Tokens carry the version they were issued under: bumping it (password, role, disable, "sign out
    # everywhere") revokes every token of the user at once (kboss.accounts.sessions).
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Center(Base):
    __tablename__ = "centers"
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    pcapi_url: Mapped[str] = mapped_column(String(512))
    api_user: Mapped[str] = mapped_column(String(128))
    api_pwd: Mapped[str] = mapped_column(Text)
    enable_date: Mapped[dt.date | None] = mapped_column(Date)
    expire_date: Mapped[dt.date | None] = mapped_column(Date)
    contactname: Mapped[str] = mapped_column(String(64))
    contactphone: Mapped[str] = mapped_column(String(32))
    # A simulated center is played in memory by kboss itself; it is never chosen silently for a real one.
    simulated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    # The agent's TLS certificate as pinned (trust on first use, or given by the operator): its SHA-256
    # fingerprint ("AB:CD:..") and PEM. Public values, not secrets. Empty: nothing pinned yet.
    agent_cert_sha256: Mapped[str] = mapped_column(String(95), default="", server_default="")
    agent_cert_pem: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Plain HTTP to an agent off loopback sends credentials in clear: refused unless the center says so.
    allow_plain_http: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Offered to every customer of the provider; else to those in `center_customers` only (none by default).
    published_all: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CenterCustomer(Base):
    """A center published to one chosen customer org."""

    __tablename__ = "center_customers"
    center_id: Mapped[str] = mapped_column(ForeignKey("centers.id", ondelete="CASCADE"), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True, index=True)


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("cpcid", "ip", "sshport", name="uq_device_address"),)
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    cpcid: Mapped[str] = mapped_column(ForeignKey("centers.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    clusterid: Mapped[str | None] = mapped_column(String(21), index=True)
    node_status: Mapped[int] = mapped_column(Integer, default=0)
    ip: Mapped[str] = mapped_column(String(64))
    devicetype: Mapped[int] = mapped_column(Integer, default=0)
    sshport: Mapped[int] = mapped_column(Integer, default=22)
    adminuser: Mapped[str] = mapped_column(String(64))
    adminpwd: Mapped[str] = mapped_column(Text, default="")
    ssh_key: Mapped[str] = mapped_column(Text, default="")
    enable_date: Mapped[dt.date | None] = mapped_column(Date)
    export_date: Mapped[dt.date | None] = mapped_column(Date)
    external_ip: Mapped[str] = mapped_column(String(64), default="")
    cpu_model: Mapped[str] = mapped_column(String(128), default="STANDARD")
    cpu_stock: Mapped[int] = mapped_column(Integer, default=0)
    memory_model: Mapped[str] = mapped_column(String(128), default="STANDARD")
    memory_stock: Mapped[int] = mapped_column(Integer, default=0)
    sysdisk_stock: Mapped[int] = mapped_column(Integer, default=0)
    datadisk_stock: Mapped[int] = mapped_column(Integer, default=0)
    gpu_model: Mapped[str] = mapped_column(String(128), default="STANDARD")
    gpu_stock: Mapped[int] = mapped_column(Integer, default=0)
    role: Mapped[str] = mapped_column(String(16), default="worker")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceHistory(Base):
    """Append-only: every change of a device's `node_status` (`kboss.catalog.device_states`), with who and why.
    No foreign key on purpose: the history of a device outlives its row."""

    __tablename__ = "device_history"
    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(String(21), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    from_state: Mapped[int] = mapped_column(Integer)
    to_state: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(128))


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("orgid", "labeltype", "label_key", "label_value", name="uq_label"),)
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    labeltype: Mapped[int] = mapped_column(Integer)
    label_key: Mapped[str] = mapped_column(String(317))
    label_value: Mapped[str] = mapped_column(String(63))
    update_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Cluster(Base):
    __tablename__ = "clusters"
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    cpcid: Mapped[str] = mapped_column(ForeignKey("centers.id"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    clustertype: Mapped[int] = mapped_column(Integer, default=0)
    controllerid: Mapped[str | None] = mapped_column(String(21))
    enable_date: Mapped[dt.date | None] = mapped_column(Date)
    export_date: Mapped[dt.date | None] = mapped_column(Date)
    clusterjoin: Mapped[str] = mapped_column(Text, default="")
    kubeconfig: Mapped[str] = mapped_column(Text, default="")
    ready: Mapped[int] = mapped_column(Integer, default=0)
    # Build state (kboss.catalog.cluster_states): installing / ready / failed, and why it failed.
    state: Mapped[str | None] = mapped_column(String(16))
    state_reason: Mapped[str | None] = mapped_column(Text)
    # How the record came to be: "built" by kboss, or "imported" from an existing cluster.
    origin: Mapped[str] = mapped_column(String(16), default="built")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Component(Base):
    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("cpcid", "type", "model", name="uq_component_model"),)
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    cpcid: Mapped[str] = mapped_column(ForeignKey("centers.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(24, 10))
    resource_unit: Mapped[str] = mapped_column(String(16))
    charge_unit: Mapped[str] = mapped_column(String(16))
    account_unit: Mapped[str] = mapped_column(String(8))
    update_time: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ComponentStock(Base):
    """Stock and consumption of one component in one cluster (the spec's `import_export`)."""

    __tablename__ = "component_stock"
    __table_args__ = (UniqueConstraint("component_id", "clusterid", name="uq_component_cluster"),)
    id: Mapped[str] = id_column()
    component_id: Mapped[str] = mapped_column(ForeignKey("components.id", ondelete="CASCADE"), index=True)
    clusterid: Mapped[str] = mapped_column(ForeignKey("clusters.id"), index=True)
    stock: Mapped[int] = mapped_column(BigInteger, default=0)
    consumed: Mapped[int] = mapped_column(BigInteger, default=0)
