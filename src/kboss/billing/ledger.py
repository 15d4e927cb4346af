"""The ledger of a customer org: credits (a provider's top-up), charges (an order, a metered period) and refunds.

The balance is the sum of the entries, never a stored number. A charge must not take it below zero however many
orders race, on SQLite and PostgreSQL alike, so every charge first bumps its account's row (`version + 1`): on
PostgreSQL the row lock makes a second charge of the same account wait until the first commits, and on SQLite the
bump is the statement that takes the database's write lock (reads before it run outside the transaction). Only then
is the sum read, within the same transaction, and the charge written. The caller commits: a charge belongs to the
transaction of what it pays for (the stock and the instance row of an order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.billing.money import from_fen, text, to_fen
from kboss.db.cas import compare_and_set
from kboss.db.models_billing import BillingAccount, LedgerEntry
from kboss.db.models_ops import now
from kboss.errors import Conflict

CREDIT = "credit"
CHARGE = "charge"
REFUND = "refund"
KINDS = (CREDIT, CHARGE, REFUND)


class InsufficientBalance(Conflict):
    code = "insufficient_balance"
    default_message = "账户余额不足"


async def ensure_account(session: AsyncSession, orgid: str) -> None:
    """The org's account row, made once: two first charges racing both insert, and the database keeps one."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(
        insert(BillingAccount).values(orgid=orgid, version=0, created_at=now()).on_conflict_do_nothing()
    )


async def balance(session: AsyncSession, orgid: str) -> Decimal:
    total = await session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(LedgerEntry.orgid == orgid)
    )
    return from_fen(int(total or 0))


async def lock_account(session: AsyncSession, orgid: str) -> None:
    """Serialise this transaction's money of `orgid` with every other's (see the module's docstring)."""
    await ensure_account(session, orgid)
    bump = update(BillingAccount).where(BillingAccount.orgid == orgid).values(version=BillingAccount.version + 1)
    await compare_and_set(session, bump)


@dataclass(frozen=True)
class Ref:
    """What an entry is for and who made it: the instance and order it pays for, a key that makes it happen at
    most once (e.g. one metered minute range of an order), the actor."""

    note: str = ""
    instance_id: str | None = None
    order_id: str | None = None
    key: str | None = None
    actor: str = ""


async def charge(session: AsyncSession, orgid: str, amount: Decimal, ref: Ref) -> LedgerEntry:
    """A charge of `amount` 元 (> 0), refused when the balance does not cover it; not committed."""
    await lock_account(session, orgid)
    available = await balance(session, orgid)
    if available < amount:
        raise InsufficientBalance(f"账户余额不足: 需要 {text(amount)} 元,余额 {text(available)} 元")
    return add_entry(session, orgid, CHARGE, -to_fen(amount), ref)


async def credit(session: AsyncSession, orgid: str, amount: Decimal, ref: Ref, kind: str = CREDIT) -> LedgerEntry:
    """A credit (top-up) or refund of `amount` 元 (> 0); not committed."""
    await lock_account(session, orgid)
    return add_entry(session, orgid, kind, to_fen(amount), ref)


def add_entry(session: AsyncSession, orgid: str, kind: str, fen: int, ref: Ref) -> LedgerEntry:
    """An entry of `fen` (signed) as it is: the caller has locked the account and checked the balance."""
    entry = LedgerEntry(
        orgid=orgid, kind=kind, amount_fen=fen, note=ref.note, instance_id=ref.instance_id, order_id=ref.order_id,
        idempotency_key=ref.key, actor=ref.actor,
    )  # fmt: skip
    session.add(entry)
    return entry


async def entries(session: AsyncSession, orgid: str, offset: int, limit: int) -> tuple[int, Sequence[LedgerEntry]]:
    """Newest first."""
    total = await session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.orgid == orgid))
    query = select(LedgerEntry).where(LedgerEntry.orgid == orgid).order_by(LedgerEntry.id.desc())
    return int(total or 0), (await session.scalars(query.offset(offset).limit(limit))).all()
