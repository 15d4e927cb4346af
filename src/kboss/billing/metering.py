"""Metering: a metered order is charged for every minute of its instance's existence, exactly once.

Each order carries `metered_until`, a whole number of minutes after `starts_at`. A round moves it forward to the
last whole minute before now with a compare-and-set (`WHERE metered_until = <as read>`), and in the same
transaction charges what the minutes up to there cost at the order's prices, less what was charged before: the
total is priced afresh each time (Σ amount × unit price × minutes, rounded half-up to the 分 once), so rounding never
drifts and no minute is charged twice. Two processes metering the same order: one compare-and-set matches, the
other changes nothing. A process killed mid-round: its transaction never committed, the next round charges those
minutes. Downtime: the next round catches up all the minutes since. Each charge also carries the unique key
`order:<id>:meter:<minute>`.

A balance never goes below zero: what it cannot cover is added to the order's `unpaid_fen` (the account is in
arrears; suspension follows, docs/billing.md). When the instance goes, `settle_final` charges every minute started.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, false, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.billing import ledger
from kboss.billing.lines import cost
from kboss.billing.money import to_fen
from kboss.db.cas import compare_and_set
from kboss.db.models_billing import LedgerEntry, Order

log = logging.getLogger("kboss.billing")
MINUTE = 60
BATCH = 2000
MODE = "metered"
# Core tables for the executemany writes (the ORM's bulk paths would reload what this module already knows).
ORDERS = Order.metadata.tables["orders"]
LEDGER = LedgerEntry.metadata.tables["ledger_entries"]


def minutes_due(order: Order, now: dt.datetime, *, started: bool = False) -> int:
    """Whole minutes since the order began (with `started`, a begun minute counts)."""
    seconds = (now - order.starts_at).total_seconds()
    return max(0, math.ceil(seconds / MINUTE) if started else math.floor(seconds / MINUTE))


class Purse:
    """What each account of a transaction can still pay: locked once per account, then spent in memory (the lock
    holds until the commit, so no other charge of the account can interleave)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.left: dict[str, int] = {}

    async def available(self, orgid: str) -> int:
        if orgid not in self.left:
            await ledger.lock_account(self.session, orgid)
            self.left[orgid] = to_fen(await ledger.balance(self.session, orgid))
        return self.left[orgid]

    def spend(self, orgid: str, fen: int) -> None:
        self.left[orgid] -= fen


@dataclass(frozen=True)
class Due:
    """What metering an order to `minutes` writes: its new totals, and the charge (0: the balance is spent)."""

    order_id: str
    until: dt.datetime
    charged_fen: int
    unpaid_fen: int
    paid: int
    minutes: int


async def _due(order: Any, minutes: int, purse: Purse) -> Due | None:
    """None when there is no new whole minute; else the minutes' price less what was charged and owed."""
    until = order.starts_at + dt.timedelta(minutes=minutes)
    if order.metered_until is None or until <= order.metered_until:
        return None
    owed = to_fen(cost(order.lines, minutes * MINUTE)) - order.charged_fen - order.unpaid_fen
    paid = min(owed, await purse.available(order.orgid)) if owed > 0 else 0
    purse.spend(order.orgid, paid)
    unpaid = order.unpaid_fen + max(owed - paid, 0)
    return Due(order.id, until, order.charged_fen + paid, unpaid, paid, minutes)


def _entry(order: Any, due: Due, actor: str) -> dict[str, Any]:
    return {
        "orgid": order.orgid, "kind": ledger.CHARGE, "amount_fen": -due.paid, "instance_id": order.instance_id,
        "order_id": order.id, "idempotency_key": f"order:{order.id}:meter:{due.minutes}", "actor": actor,
        "note": f"按量计费 {due.minutes} 分钟", "at": dt.datetime.now(dt.UTC),
    }  # fmt: skip


async def charge_to(session: AsyncSession, order: Order, minutes: int, actor: str = "metering") -> bool:
    """One order moved to `minutes` by compare-and-set, and charged what they add (the caller commits); False when
    another process got there first (nothing changed) or there is nothing new."""
    due = await _due(order, minutes, Purse(session))
    if due is None:
        return False
    values = {"metered_until": due.until, "charged_fen": due.charged_fen, "unpaid_fen": due.unpaid_fen}
    guard = (Order.id == order.id, Order.metered_until == order.metered_until, Order.closed_at.is_(None))
    moved = update(Order).where(*guard).values(values).execution_options(synchronize_session=False)
    if not await compare_and_set(session, moved):
        return False
    if due.paid:
        await session.execute(insert(LEDGER), [_entry(order, due, actor)])
    return True


async def meter_once(sessions: async_sessionmaker[AsyncSession], now: dt.datetime | None = None) -> int:
    """One round over the open metered orders with a whole minute due, a transaction per batch of orders held
    under lock, written with one statement per table; how many orders were charged."""
    now = now or dt.datetime.now(dt.UTC)
    charged, after = 0, ""
    while True:
        async with sessions() as session:
            batch = await _locked_batch(session, now, after)
            if not batch:
                return charged
            purse = Purse(session)
            dues = [(order, await _due(order, minutes_due(order, now), purse)) for order in batch]
            await _write(session, [(order, due) for order, due in dues if due is not None])
            await session.commit()
            charged += sum(due is not None for _, due in dues)
            after = batch[-1].id


async def _locked_batch(session: AsyncSession, now: dt.datetime, after: str) -> Sequence[Any]:
    """The next batch of due orders, by id, held for this transaction before anything else is: on PostgreSQL by
    FOR UPDATE (the accounts are locked only after their orders, as deletion and renewal do, so no two transactions
    wait on each other in a cycle); on SQLite by taking the database's write lock before reading."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(update(Order).where(false()).values(mode=Order.mode))
    columns = (Order.id, Order.orgid, Order.instance_id, Order.lines, Order.starts_at, Order.metered_until)
    query = select(*columns, Order.charged_fen, Order.unpaid_fen).where(
        Order.mode == MODE, Order.closed_at.is_(None), Order.metered_until <= now - dt.timedelta(minutes=1)
    )
    page = query.where(Order.id > after).order_by(Order.id).limit(BATCH).with_for_update()
    return (await session.execute(page)).all()


async def _write(session: AsyncSession, dues: Sequence[tuple[Any, Due]]) -> None:
    if not dues:
        return
    table = ORDERS
    moved = update(table).where(table.c.id == bindparam("due_id"))
    moved = moved.values(metered_until=bindparam("due_until"), charged_fen=bindparam("due_charged"))
    moved = moved.values(unpaid_fen=bindparam("due_unpaid"))
    rows = [
        {"due_id": d.order_id, "due_until": d.until, "due_charged": d.charged_fen, "due_unpaid": d.unpaid_fen}
        for _, d in dues
    ]
    await session.execute(moved, rows)
    entries = [_entry(order, due, "metering") for order, due in dues if due.paid]
    if entries:
        await session.execute(insert(LEDGER), entries)


async def settle_final(session: AsyncSession, order: Order, actor: str) -> None:
    """The instance is gone: every minute it began is charged (in the caller's transaction)."""
    await charge_to(session, order, minutes_due(order, dt.datetime.now(dt.UTC), started=True), actor)


async def keep_metering(sessions: async_sessionmaker[AsyncSession], every: float) -> None:
    """Meter every `every` seconds until cancelled; a failed round is logged and the next one catches up."""
    while True:
        try:
            await meter_once(sessions)
        except Exception:
            log.exception("metering round failed; the next round catches up")
        await asyncio.sleep(every)
