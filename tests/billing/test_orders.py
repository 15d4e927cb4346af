"""A customer's instance is an order: prepaid for a duration (charged with the stock and the row, refused when the
balance does not cover it, refunded by whole hours left when deleted early, renewable at today's prices) or
metered; a provider's own instances are not charged."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from kboss.pricing.units import RESOURCE_UNITS
from tests.api.test_instances import DELETE, NEW, WIDGETS, instance_params
from tests.api.test_simulated_site import _simulated_cluster
from tests.customers.test_buying import _publish
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User

PRICE = "/dev/cpcc/cpcwidget/accrual_price.dspy"
UPDATE_PRICE = "/dev/cpcc/cpcwidget/update_cpcwidget.dspy"


async def _shop(api: Api, balance: str) -> tuple[User, User, dict[str, str]]:
    provider = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, provider)
    customer = await _customer(api, provider, "甲客户", "buyer1")
    await _publish(api, provider, cpcid, "all")
    if balance:
        credit = {"amount": balance}
        await api.http.post(f"/api/v1/accounts/{customer['id']}/credit", json=credit, headers=provider.headers)
    return provider, await _login(api, "buyer1"), {"cpcid": cpcid, "cid": cid, "orgid": customer["id"]}


async def _balance(api: Api, who: User, orgid: str) -> Decimal:
    return Decimal((await api.http.get(f"/api/v1/accounts/{orgid}", headers=who.headers)).json()["balance"])


async def _order(api: Api, who: User, instance_id: str) -> Any:
    return await api.http.get(f"/api/v1/instances/{instance_id}/order", headers=who.headers)


async def _quote(who: User, cpcid: str, lines: list[dict[str, Any]], duration: str, unit: str) -> Decimal:
    """The same resources priced by the quote endpoint: an independent reckoning of what the order must cost."""
    resources = [
        # A quote's amounts are requests (memory in MiB); an order's lines, whole units of the component.
        {
            "type": line["type"],
            "model": line["model"],
            "amount": str(line["amount"] * RESOURCE_UNITS[line["type"]][line["unit"]]),
        }
        for line in lines
    ]
    params = {"cpcid": cpcid, "resources": json.dumps(resources), "duration": duration, "duration_unit": unit}
    return Decimal(str((await who.ok(PRICE, "GET", **params))["total_price"]))


async def _consumed(provider: User, cpcid: str) -> dict[str, int]:
    rows = (await provider.ok(WIDGETS, "GET", cpcid=cpcid))["rows"]
    return {f"{row['type']} {row['model']}": row["consumed"] for row in rows}


async def test_a_prepaid_order_is_charged_as_quoted_and_refunded_by_whole_hours(api: Api) -> None:
    _, buyer, ids = await _shop(api, "500.00")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]), duration="3", duration_unit="小时")
    order = (await _order(api, buyer, created["id"])).json()
    assert order["mode"] == "prepaid" and order["ends_at"] and order["lines"]
    charged = Decimal(order["charged"])
    assert charged == await _quote(buyer, ids["cpcid"], order["lines"], "3", "小时") and charged > 0
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("500.00") - charged

    await buyer.ok(DELETE, id=created["id"])  # at once: two whole hours of three are left
    refund = (charged * 100 * 2 // 3) / 100
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("500.00") - charged + refund
    rows = (await api.http.get(f"/api/v1/accounts/{ids['orgid']}/ledger", headers=buyer.headers)).json()["rows"]
    assert [(row["kind"], row["instance_id"]) for row in rows[:2]] == [
        ("refund", created["id"]),
        ("charge", created["id"]),
    ]


async def test_an_order_the_balance_does_not_cover_writes_nothing(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "0.01")
    before = await _consumed(provider, ids["cpcid"])
    refused = await buyer.refused(NEW, **instance_params(ids["cid"]), duration="30", duration_unit="天")
    assert "账户余额不足" in refused and "余额 0.01 元" in refused
    assert await _consumed(provider, ids["cpcid"]) == before
    listed = await buyer.ok("/dev/cpcc/cpcpodyaml/get_cpcpodyaml.dspy", "GET", cpcid=ids["cpcid"], clusterid=ids["cid"])
    assert listed["total"] == 0
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("0.01")
    for duration, unit in (("0", "小时"), ("x", "小时"), ("1", "fortnight")):
        bad = await buyer.refused(NEW, **instance_params(ids["cid"]), duration=duration, duration_unit=unit)
        assert "duration" in bad, (duration, unit, bad)


async def test_a_renewal_charges_todays_prices(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "2000.00")
    created = await buyer.ok(NEW, **instance_params(ids["cid"]), duration="1", duration_unit="天")
    first = (await _order(api, buyer, created["id"])).json()
    cpu = next(row for row in (await provider.ok(WIDGETS, "GET", cpcid=ids["cpcid"]))["rows"] if row["type"] == "cpu")
    await provider.ok(UPDATE_PRICE, id=cpu["id"], cpcid=ids["cpcid"], unit_price="5")
    renewed = await api.http.post(
        f"/api/v1/instances/{created['id']}/renew", json={"duration": 2, "duration_unit": "天"}, headers=buyer.headers
    )
    assert renewed.status_code == 200, renewed.text
    again = renewed.json()
    delta = Decimal(again["charged"]) - Decimal(first["charged"])
    assert delta == await _quote(buyer, ids["cpcid"], again["lines"], "2", "天")  # at the new cpu price
    assert delta > 2 * Decimal(first["charged"])  # dearer than two more days at the old price
    assert again["ends_at"] > first["ends_at"]
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("2000.00") - Decimal(again["charged"])
    bad = await api.http.post(f"/api/v1/instances/{created['id']}/renew", json={}, headers=buyer.headers)
    assert bad.status_code == 422 and "duration" in bad.text


async def test_metered_orders_need_a_balance_and_providers_pay_nothing(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "")
    refused = await buyer.refused(NEW, **instance_params(ids["cid"]))
    assert "按量计费需要账户有余额" in refused
    await api.http.post(f"/api/v1/accounts/{ids['orgid']}/credit", json={"amount": "1"}, headers=provider.headers)
    created = await buyer.ok(NEW, **instance_params(ids["cid"]))
    order = (await _order(api, buyer, created["id"])).json()
    assert (order["mode"], order["charged"], order["ends_at"]) == ("metered", "0.00", None)
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("1.00")

    own = await provider.ok(NEW, **instance_params(ids["cid"], source_name="provider-own", source_outsideport="30064"))
    assert (await _order(api, provider, own["id"])).status_code == 404
    assert (await _order(api, provider, created["id"])).json()["mode"] == "metered"  # the provider sees it
