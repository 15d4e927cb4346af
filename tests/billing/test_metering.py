"""Metered orders: every minute of an instance's existence charged once at the order's prices, whatever the
rounds, however many processes meter at once; a balance that runs out leaves the rest unpaid, never below zero."""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal

from sqlalchemy import func, select

from kboss.billing.metering import meter_once
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models_billing import LedgerEntry, Order
from tests.api.test_instances import DELETE, NEW, instance_params
from tests.billing.test_orders import _balance, _quote, _shop
from tests.support.api import Api


async def _order(api: Api, instance_id: str) -> Order:
    async with api.app.state.kboss.sessions() as session:
        return (await session.scalars(select(Order).where(Order.instance_id == instance_id))).one()


async def _meter_charges(api: Api) -> list[tuple[str, Decimal]]:
    async with api.app.state.kboss.sessions() as session:
        query = select(LedgerEntry).where(LedgerEntry.kind == "charge").order_by(LedgerEntry.id)
        return [(entry.note, Decimal(-entry.amount_fen) / 100) for entry in (await session.scalars(query)).all()]


def _at(order: Order, minutes: int, seconds: int = 30) -> dt.datetime:
    return order.starts_at + dt.timedelta(minutes=minutes, seconds=seconds)


async def test_each_minute_is_charged_once_at_the_orders_prices(api: Api) -> None:
    _, buyer, ids = await _shop(api, "500.00")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]))
    order = await _order(api, created["id"])
    sessions = api.app.state.kboss.sessions
    assert await meter_once(sessions, _at(order, 0)) == 0  # no whole minute yet
    assert await meter_once(sessions, _at(order, 10)) == 1
    assert await meter_once(sessions, _at(order, 10)) == 0  # the same round again charges nothing
    ten = await _quote(buyer, ids["cpcid"], order.lines, "10", "分钟")
    assert await _meter_charges(api) == [("按量计费 10 分钟", ten)]
    assert await meter_once(sessions, _at(order, 25)) == 1
    assert sum(amount for _, amount in await _meter_charges(api)) == await _quote(
        buyer, ids["cpcid"], order.lines, "25", "分钟"
    )
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("500.00") - await _quote(
        buyer, ids["cpcid"], order.lines, "25", "分钟"
    )


async def test_two_processes_metering_at_once_charge_each_minute_once(api: Api, db_url: str) -> None:
    _, buyer, ids = await _shop(api, "500.00")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]))
    order = await _order(api, created["id"])
    engines = [make_engine(db_url), make_engine(db_url)]  # two processes' own pools on one database
    try:
        for minutes in (5, 6, 30):
            rounds = [meter_once(make_sessionmaker(engine), _at(order, minutes)) for engine in engines]
            assert sorted(await asyncio.gather(*rounds)) == [0, 1]
    finally:
        for engine in engines:
            await engine.dispose()
    charges = await _meter_charges(api)
    assert [note for note, _ in charges] == ["按量计费 5 分钟", "按量计费 6 分钟", "按量计费 30 分钟"]
    assert sum(amount for _, amount in charges) == await _quote(buyer, ids["cpcid"], order.lines, "30", "分钟")


async def test_an_account_that_runs_out_goes_to_zero_and_owes_the_rest(api: Api) -> None:
    _, buyer, ids = await _shop(api, "0.05")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]))
    order = await _order(api, created["id"])
    await meter_once(api.app.state.kboss.sessions, _at(order, 600))
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("0.00")
    owed = await _quote(buyer, ids["cpcid"], order.lines, "600", "分钟")
    after = await _order(api, created["id"])
    assert Decimal(after.charged_fen + after.unpaid_fen) / 100 == owed and after.unpaid_fen > 0


async def test_deleting_a_metered_instance_charges_every_minute_it_began(api: Api) -> None:
    _, buyer, ids = await _shop(api, "500.00")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]))
    order = await _order(api, created["id"])
    await buyer.ok(DELETE, id=created["id"])
    one = await _quote(buyer, ids["cpcid"], order.lines, "1", "分钟")
    assert await _meter_charges(api) == [("按量计费 1 分钟", one)]
    closed = await _order(api, created["id"])
    assert closed.closed_at is not None
    assert await meter_once(api.app.state.kboss.sessions, _at(order, 60)) == 0  # a closed order is not metered
    async with api.app.state.kboss.sessions() as session:
        assert await session.scalar(select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "charge")) == 1
