"""Metering across a `kill -9`: a real `kboss serve` meters thousands of orders and is killed in the middle of a
round; a second process started on the same database picks up, and every order ends charged exactly the price of
its minutes, once (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import func, select

from kboss.billing import ledger
from kboss.billing.lines import cost
from kboss.billing.metering import minutes_due
from kboss.billing.money import from_fen, to_fen
from kboss.db.engine import make_engine, make_sessionmaker, upgrade
from kboss.db.models import ORG_CUSTOMER, ORG_PROVIDER, Org
from kboss.db.models_billing import LedgerEntry, Order
from kboss.ids import new_id
from tests.support.platform import PlatformProcesses, platform_env, wait_until

ORDERS = 8000  # four batches of 2,000: a round lasts seconds, the kill lands inside it
LINES = [{"component_id": "cpu", "type": "cpu", "model": "STANDARD", "amount": 3, "unit": "核", "unit_price": "0.7",
          "charge_unit": "小时"}]  # fmt: skip


async def _seed(db_url: str) -> dt.datetime:
    await upgrade(db_url)
    engine = make_engine(db_url)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5, seconds=17)
    async with make_sessionmaker(engine)() as session:
        provider = Org(name="provider", kind=ORG_PROVIDER)
        session.add(provider)
        await session.flush()
        customers = [Org(name=f"c{i}", kind=ORG_CUSTOMER, provider_id=provider.id) for i in range(20)]
        session.add_all(customers)
        await session.flush()
        for org in customers:
            await ledger.credit(session, org.id, from_fen(10**10), ledger.Ref(note="seed"))
        session.add_all(
            Order(id=new_id(), orgid=customers[i % 20].id, instance_id=new_id(), mode="metered", lines=LINES,
                  starts_at=start, metered_until=start)
            for i in range(ORDERS)
        )  # fmt: skip
        await session.commit()
    await engine.dispose()
    return start


async def _charges(db_url: str) -> int:
    engine = make_engine(db_url)
    query = select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "charge")
    try:
        async with make_sessionmaker(engine)() as session:
            return int(await session.scalar(query) or 0)
    finally:
        await engine.dispose()


async def _mismatches(db_url: str, now: dt.datetime) -> list[str]:
    """Orders not metered to `now`'s last whole minute, or whose charges are not exactly the price of the minutes
    they are metered to (the ledger's and the order's own count alike)."""
    engine = make_engine(db_url)
    by_order = select(LedgerEntry.order_id, func.sum(LedgerEntry.amount_fen)).group_by(LedgerEntry.order_id)
    wrong = []
    try:
        async with make_sessionmaker(engine)() as session:
            paid = dict((await session.execute(by_order)).all())
            for order in (await session.scalars(select(Order))).all():
                assert order.metered_until is not None
                minutes = round((order.metered_until - order.starts_at).total_seconds() / 60)
                expected = to_fen(cost(order.lines, minutes * 60))
                if minutes < minutes_due(order, now):
                    wrong.append(f"{order.id}: metered to minute {minutes} only")
                elif -paid.get(order.id, 0) != expected or order.charged_fen != expected:
                    wrong.append(
                        f"{order.id}: charged {order.charged_fen}, ledger {-paid.get(order.id, 0)}, {expected}"
                    )
    finally:
        await engine.dispose()
    return wrong


async def test_a_killed_metering_process_charges_no_minute_twice_and_loses_none(db_url: str, tmp_path: Path) -> None:
    await _seed(db_url)
    env = platform_env(db_url, tmp_path / "var", worker_id="meter", KBOSS_METERING_SECONDS="0.2")
    async with PlatformProcesses(tmp_path) as processes:
        first = await processes.start("first", env)
        await wait_until(lambda: _charges(db_url), 60, "the first batch of charges")
        await first.kill()  # SIGKILL, mid-round: the round's later batches never committed
        killed_at = await _charges(db_url)
        second = await processes.start("second", env)
        await wait_until(lambda: _settled(db_url), 90, "every order metered to the current minute")
        await second.kill()
    assert 0 < killed_at < ORDERS  # killed inside the first round: some batches committed, the others not
    # Exact to the 分 for every order, whatever minute the second process last reached.
    assert await _mismatches(db_url, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)) == []


async def _settled(db_url: str) -> bool:
    return not await _mismatches(db_url, dt.datetime.now(dt.UTC))
