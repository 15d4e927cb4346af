"""The issue's acceptance race: 100 prepaid orders at once from 10 customers against stock for 10, one customer's
balance covering 6 of its orders: exactly 10 accepted, that customer's at most 6, no balance below zero, and every
ledger's sum equal to its credits less what the accepted orders cost."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import func, select

from kboss.billing.lines import cost, price_lines
from kboss.db.models_billing import LedgerEntry, Order
from kboss.db.models_instances import Instance
from kboss.pricing.stock import Need
from tests.api.test_instances import COMPONENTS, DELETE, NEW, instance_params
from tests.api.test_simulated_site import _simulated_cluster
from tests.billing.test_orders import _balance
from tests.customers.test_buying import _publish
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User

CUSTOMERS, ORDERS_EACH, STOCK = 10, 10, 10
# Ten cores in all, one an order: the stock, not the money, limits the other nine customers.
TEN_CORES = [{**row, "stock": STOCK} if row["type"] == "cpu" else row for row in COMPONENTS]


async def _price_of_one(api: Api, provider: User, cid: str) -> Decimal:
    """What one order costs for an hour: a provider's probe instance (not charged) shows what it takes."""
    probe = await provider.ok(NEW, **instance_params(cid, source_name="probe", source_outsideport="30099"))
    async with api.app.state.kboss.sessions() as session:
        needs = [Need.from_json(need) for need in (await session.get_one(Instance, probe["id"])).stock]
        price = cost(await price_lines(session, needs), 3600)
    await provider.ok(DELETE, id=probe["id"])
    return price


async def _customers(api: Api, provider: User, price: Decimal) -> list[tuple[str, User, Decimal]]:
    made = []
    for index in range(CUSTOMERS):
        org = await _customer(api, provider, f"客户{index}", f"buyer{index}")
        credit = price * (6 if index == 0 else ORDERS_EACH)  # the first customer can pay for 6 of its 10 orders
        await api.http.post(
            f"/api/v1/accounts/{org['id']}/credit", json={"amount": str(credit)}, headers=provider.headers
        )
        made.append((org["id"], await _login(api, f"buyer{index}"), credit))
    return made


async def test_a_hundred_orders_at_once_never_oversell_nor_overdraw(api: Api) -> None:
    provider = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, provider, TEN_CORES)
    await _publish(api, provider, cpcid, "all")
    buyers = await _customers(api, provider, await _price_of_one(api, provider, cid))

    async def order(index: int, buyer: User) -> bool:
        params = instance_params(cid, source_name=f"box-{index}", source_outsideport=str(30100 + index))
        return bool((await buyer.call(NEW, **params, duration="1", duration_unit="小时"))["status"])

    orders = [order(c * ORDERS_EACH + i, buyer) for c, (_, buyer, _) in enumerate(buyers) for i in range(ORDERS_EACH)]
    accepted = await asyncio.gather(*orders)
    assert sum(accepted) == STOCK
    assert sum(accepted[:ORDERS_EACH]) <= 6
    async with api.app.state.kboss.sessions() as session:
        assert await session.scalar(select(func.count(Instance.id))) == STOCK
        assert await session.scalar(select(func.count(Order.id))) == STOCK
        for orgid, _, credit in buyers:
            ledger = await session.scalar(select(func.sum(LedgerEntry.amount_fen)).where(LedgerEntry.orgid == orgid))
            charged = await session.scalar(select(func.sum(Order.charged_fen)).where(Order.orgid == orgid)) or 0
            assert ledger == int(credit * 100) - charged and ledger >= 0
    assert [await _balance(api, buyer, orgid) >= 0 for orgid, buyer, _ in buyers] == [True] * CUSTOMERS
