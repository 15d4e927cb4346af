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

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.billing import ledger
from kboss.billing.lines import cost
from kboss.billing.money import to_fen
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


async def charge_to(
    session: AsyncSession, order: Order, minutes: int, actor: str = "metering", purse: Purse | None = None
) -> bool:
    """Move the order to `minutes` and charge what they add (the caller commits); False when another process got
    there first (nothing changed) or there is nothing new."""
    until = order.starts_at + dt.timedelta(minutes=minutes)
    if order.metered_until is None or until <= order.metered_until:
        return False
    purse = purse or Purse(session)
    owed = to_fen(cost(order.lines, minutes * MINUTE)) - order.charged_fen - order.unpaid_fen
    paid = min(owed, await purse.available(order.orgid)) if owed > 0 else 0
    values = {"metered_until": until, "charged_fen": order.charged_fen + paid}
    values["unpaid_fen"] = order.unpaid_fen + max(owed - paid, 0)
    moved = update(Order).where(
        Order.id == order.id, Order.metered_until == order.metered_until, Order.closed_at.is_(None)
    )
    moved = moved.values(values)
    if not await compare_and_set(session, moved.execution_options(synchronize_session=False)):
        return False
    if paid > 0:
        purse.spend(order.orgid, paid)
        key = f"order:{order.id}:meter:{minutes}"
        ref = ledger.Ref(f"按量计费 {minutes} 分钟", order.instance_id, order.id, key, actor)
        ledger.add_entry(session, order.orgid, ledger.CHARGE, -paid, ref)
    return True


async def meter_once(sessions: async_sessionmaker[AsyncSession], now: dt.datetime | None = None) -> int:
    """One round over the open metered orders with a whole minute due, a transaction per batch; how many orders
    were charged."""
    now = now or dt.datetime.now(dt.UTC)
    due = now - dt.timedelta(minutes=1)
    query = select(Order).where(Order.mode == MODE, Order.closed_at.is_(None), Order.metered_until <= due)
    charged, after = 0, ""
    while True:
        async with sessions() as session:
            # The batch's orders are locked first, by id, and only then their accounts: every path that changes an
            # order and its account (deletion, renewal, this) takes the order before the account, so no two
            # transactions wait on each other in a cycle.
            page = query.where(Order.id > after).order_by(Order.id).limit(BATCH).with_for_update()
            batch = (await session.scalars(page)).all()
            if not batch:
                return charged
            purse = Purse(session)
            for order in batch:
                charged += await charge_to(session, order, minutes_due(order, now), purse=purse)
            await session.commit()
            after = batch[-1].id


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
