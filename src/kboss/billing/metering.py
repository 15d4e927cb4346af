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
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.billing import ledger
from kboss.billing.lines import cost
from kboss.billing.money import from_fen, to_fen
from kboss.db.cas import compare_and_set
from kboss.db.models_billing import Order

log = logging.getLogger("kboss.billing")
MINUTE = 60
BATCH = 500
MODE = "metered"


def minutes_due(order: Order, now: dt.datetime, *, started: bool = False) -> int:
    """Whole minutes since the order began (with `started`, a begun minute counts)."""
    seconds = (now - order.starts_at).total_seconds()
    return max(0, math.ceil(seconds / MINUTE) if started else math.floor(seconds / MINUTE))


async def charge_to(session: AsyncSession, order: Order, minutes: int, actor: str = "metering") -> bool:
    """Move the order to `minutes` and charge what they add (the caller commits); False when another process got
    there first (nothing changed) or there is nothing new."""
    until = order.starts_at + dt.timedelta(minutes=minutes)
    if order.metered_until is None or until <= order.metered_until:
        return False
    moved = update(Order).where(Order.id == order.id, Order.metered_until == order.metered_until)
    if not await compare_and_set(session, moved.values(metered_until=until)):
        return False
    owed = to_fen(cost(order.lines, minutes * MINUTE)) - order.charged_fen - order.unpaid_fen
    paid = min(owed, to_fen(await _available(session, order.orgid))) if owed > 0 else 0
    if paid > 0:
        ref = ledger.Ref(
            f"按量计费 {minutes} 分钟", order.instance_id, order.id, f"order:{order.id}:meter:{minutes}", actor
        )
        await ledger.charge(session, order.orgid, from_fen(paid), ref)
    values = {"charged_fen": order.charged_fen + paid, "unpaid_fen": order.unpaid_fen + max(owed - paid, 0)}
    await session.execute(update(Order).where(Order.id == order.id).values(values))
    return True


async def _available(session: AsyncSession, orgid: str) -> Decimal:
    await ledger.lock_account(session, orgid)  # the balance read below cannot change before this charge commits
    return await ledger.balance(session, orgid)


async def meter_once(sessions: async_sessionmaker[AsyncSession], now: dt.datetime | None = None) -> int:
    """One round over the open metered orders with a whole minute due; how many orders were charged."""
    now = now or dt.datetime.now(dt.UTC)
    due = now - dt.timedelta(minutes=1)
    async with sessions() as session:
        query = select(Order.id).where(Order.mode == MODE, Order.closed_at.is_(None), Order.metered_until <= due)
        ids = list((await session.scalars(query.order_by(Order.metered_until).limit(BATCH))).all())
    charged = 0
    for order_id in ids:
        charged += await _meter_order(sessions, order_id, now)
    return charged


async def _meter_order(sessions: async_sessionmaker[AsyncSession], order_id: str, now: dt.datetime) -> int:
    async with sessions() as session:
        order = await session.get(Order, order_id)
        if order is None or order.closed_at is not None:
            return 0
        if not await charge_to(session, order, minutes_due(order, now)):
            await session.rollback()
            return 0
        await session.commit()
        return 1


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
