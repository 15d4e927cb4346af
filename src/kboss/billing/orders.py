"""Orders: how a customer's instance is paid for (docs/billing.md).

- **prepaid**: `duration` + `duration_unit` (the quote's units) bought at creation, at the price book's prices of
  the components the instance takes; charged in the transaction of the stock and the instance row, refused when
  the balance does not cover it. Renewal extends the end at the prices of the day. Deleting early refunds the
  whole hours left, pro rata; a creation that failed refunds everything.
- **metered** (no `duration`): the order records the prices; the metering job charges each minute of existence.
  Placing one needs a balance above zero.

Only customers pay: a provider's own instances run on its own machines and have no order.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.billing import ledger, metering
from kboss.billing.lines import cost, price_lines, repriced
from kboss.billing.money import from_fen, text, to_fen
from kboss.common.context import Principal
from kboss.db.models_billing import Order
from kboss.errors import InvalidParameter
from kboss.ids import new_id
from kboss.pricing import units

PREPAID = "prepaid"
METERED = "metered"
HOUR = 3600
MAX_DURATION = 10_000


@dataclass(frozen=True)
class Terms:
    mode: str
    duration: int = 0
    duration_unit: str = ""

    @property
    def seconds(self) -> int:
        return self.duration * units.PERIOD_SECONDS[self.duration_unit] if self.mode == PREPAID else 0


def terms_of(params: Mapping[str, Any]) -> Terms:
    """`duration` (a whole number of `duration_unit`, default 小时) makes the order prepaid; none makes it metered."""
    raw, unit = params.get("duration"), str(params.get("duration_unit") or "").strip()
    if raw in (None, ""):
        if unit:
            raise InvalidParameter("duration", "给出 duration_unit 时须同时给出购买时长 duration")
        return Terms(METERED)
    try:
        duration = int(str(raw).strip())
    except ValueError:
        raise InvalidParameter("duration", "应为正整数") from None
    if not 0 < duration <= MAX_DURATION:
        raise InvalidParameter("duration", f"应在 1 到 {MAX_DURATION} 之间")
    unit = unit or "小时"
    if unit not in units.DURATION_UNITS:
        raise InvalidParameter("duration_unit", f"应为 {', '.join(units.DURATION_UNITS)} 之一")
    return Terms(PREPAID, duration, unit)


async def place(
    session: AsyncSession, buyer: Principal, instance_id: str, needs: Sequence[Any], terms: Terms
) -> Order | None:
    """The order of a new instance, in the caller's transaction (not committed); None for a provider's own."""
    if not buyer.is_customer:
        return None
    now = dt.datetime.now(dt.UTC)
    lines = await price_lines(session, needs)
    order = Order(id=new_id(), orgid=buyer.orgid, instance_id=instance_id, mode=terms.mode, lines=lines, starts_at=now)
    order.metered_until = now if terms.mode == METERED else None
    if terms.mode == PREPAID:
        amount = cost(lines, terms.seconds)
        note = f"预付 {terms.duration} {terms.duration_unit}"
        await ledger.charge(session, buyer.orgid, amount, _ref(order, instance_id, note, buyer.username, "buy"))
        order.charged_fen, order.ends_at = to_fen(amount), now + dt.timedelta(seconds=terms.seconds)
    else:
        await ledger.lock_account(session, buyer.orgid)
        if await ledger.balance(session, buyer.orgid) <= 0:
            raise ledger.InsufficientBalance("账户余额不足: 按量计费需要账户有余额,请先充值")
    session.add(order)
    return order


async def renew(session: AsyncSession, buyer: Principal, instance_id: str, terms: Terms) -> Order:
    """A prepaid order extended by `terms` at today's prices (charged now; not committed)."""
    order = await open_order(session, instance_id)
    if order is None or order.mode != PREPAID or order.ends_at is None:
        raise InvalidParameter("duration", "只有预付费实例可以续费")
    if terms.mode != PREPAID:
        raise InvalidParameter("duration", "续费需要购买时长 duration")
    lines = await repriced(session, order.lines)
    amount = cost(lines, terms.seconds)
    note = f"续费 {terms.duration} {terms.duration_unit}"
    await ledger.charge(session, order.orgid, amount, _ref(order, instance_id, note, buyer.username, new_id()))
    order.lines, order.charged_fen = lines, order.charged_fen + to_fen(amount)
    order.ends_at = max(order.ends_at, dt.datetime.now(dt.UTC)) + dt.timedelta(seconds=terms.seconds)
    return order


async def close(session: AsyncSession, instance_id: str, actor: str, *, refund_all: bool = False) -> None:
    """The instance is gone: a prepaid order refunds its whole unused hours, a metered one is charged every minute
    it began (all of either refunded when the instance never came to be), in the caller's transaction (that of the
    stock's release and the row's removal)."""
    order = await open_order(session, instance_id)
    if order is None:
        return
    if order.mode == METERED and not refund_all:
        await metering.settle_final(session, order, actor)
    now = dt.datetime.now(dt.UTC)
    fen = order.charged_fen if refund_all else unused_fen(order, now)
    if fen > 0:
        note = "创建失败,全额退款" if refund_all else "提前删除,按剩余整小时退款"
        ref = _ref(order, instance_id, note, actor, "refund")
        await ledger.credit(session, order.orgid, from_fen(fen), ref, kind=ledger.REFUND)
    order.refunded_fen, order.closed_at = fen, now


def unused_fen(order: Order, now: dt.datetime) -> int:
    """paid × ⌊whole hours left⌋ / hours bought, rounded down to the 分 (never more than was paid)."""
    if order.mode != PREPAID or order.ends_at is None or order.ends_at <= now:
        return 0
    bought = math.ceil((order.ends_at - order.starts_at).total_seconds() / HOUR)
    left = math.floor((order.ends_at - now).total_seconds() / HOUR)
    return min(order.charged_fen, order.charged_fen * left // max(bought, 1))


async def open_order(session: AsyncSession, instance_id: str) -> Order | None:
    query = select(Order).where(Order.instance_id == instance_id, Order.closed_at.is_(None))
    return await session.scalar(query.with_for_update())


def _ref(order: Order, instance_id: str, note: str, actor: str, what: str) -> ledger.Ref:
    return ledger.Ref(
        note=note, instance_id=instance_id, order_id=order.id, key=f"order:{order.id}:{what}", actor=actor
    )


def order_row(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "mode": order.mode, "lines": order.lines, "charged": text(from_fen(order.charged_fen)),
        "refunded": text(from_fen(order.refunded_fen)), "starts_at": order.starts_at.isoformat(),
        "ends_at": order.ends_at.isoformat() if order.ends_at else None,
    }  # fmt: skip
