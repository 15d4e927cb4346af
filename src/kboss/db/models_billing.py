"""Tables of money: `billing_accounts` (one per customer org: the row every charge locks, no balance in it),
`ledger_entries` (every credit, charge and refund, in 分, signed; the balance is their sum, never stored) and
`orders` (what a customer's instance is bought on, with the price lines it was sold at) and `customer_quotas`.

Amounts are whole 分 (0.01 元) in a BIGINT: exact on both databases (SQLite has no decimal type; a NUMERIC there is
a float). Services speak `Decimal` 元 and convert at this boundary only (`kboss.billing.money`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import AutoIncrement, Base, id_column
from kboss.db.models_ops import UtcDateTime, now


class BillingAccount(Base):
    __tablename__ = "billing_accounts"
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    # Bumped by every charge: the UPDATE that bumps it is what serialises two charges of one account.
    version: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(AutoIncrement, primary_key=True, autoincrement=True)
    orgid: Mapped[str] = mapped_column(ForeignKey("billing_accounts.orgid", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)
    kind: Mapped[str] = mapped_column(String(16))  # credit, charge, refund
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # credits and refunds positive, charges negative
    instance_id: Mapped[str | None] = mapped_column(String(21), index=True)
    order_id: Mapped[str | None] = mapped_column(String(21))
    # What makes an entry happen at most once (e.g. one metered minute range of an order); NULL: no such key.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    actor: Mapped[str] = mapped_column(String(128), default="")
    note: Mapped[str] = mapped_column(Text, default="")


class Order(Base):
    """One per customer instance: `prepaid` (paid for until `ends_at`, renewable) or `metered` (charged per minute
    at `lines`' prices). `lines`: what the instance holds and at which price, as sold (a later price change applies
    to new orders and renewals only). Closed (`closed_at`) when the instance goes, with what was refunded."""

    __tablename__ = "orders"
    id: Mapped[str] = id_column()
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id"), index=True)
    instance_id: Mapped[str] = mapped_column(String(21), unique=True)
    mode: Mapped[str] = mapped_column(String(16))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    charged_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    starts_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now)
    # Metered: charged up to here (a whole number of minutes after `starts_at`); moved by compare-and-set only.
    metered_until: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # What the balance could not cover (an account in arrears): owed, never charged below zero.
    unpaid_fen: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Since when the instance is suspended for expiry or arrears (None: running); the grace period counts from it.
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class CustomerQuota(Base):
    """A provider's limit on what one customer may hold, per resource: `cpu` (cores), `memory` (GiB), `instances`
    (count) and `gpu:<model>` (cards of that model). No row: no limit."""

    __tablename__ = "customer_quotas"
    orgid: Mapped[str] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    resource: Mapped[str] = mapped_column(String(160), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=now, onupdate=now)
