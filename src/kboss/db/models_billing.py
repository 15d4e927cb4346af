"""Tables of money: `billing_accounts` (one per customer org: the row every charge locks, no balance in it) and
`ledger_entries` (every credit, charge and refund, in 分, signed). The balance is the entries' sum, never stored.

Amounts are whole 分 (0.01 元) in a BIGINT: exact on both databases (SQLite has no decimal type; a NUMERIC there is
a float). Services speak `Decimal` 元 and convert at this boundary only (`kboss.billing.money`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kboss.db.models import AutoIncrement, Base
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
