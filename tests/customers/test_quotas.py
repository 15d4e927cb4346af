"""Quotas per customer (docs/customers.md): a provider admin sets a customer's limits on cores, memory, GPUs per
model and instances; an order or an update beyond one is refused naming the quota, and writes nothing; concurrent
orders never pass a quota together that fits only some of them."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from kboss.db.models_instances import Instance
from tests.api.test_instances import DELETE, NEW, UPDATE, add_components, instance_params
from tests.billing.test_orders import _balance, _consumed, _shop
from tests.customers.test_customers import _customer
from tests.support.api import Api, User


def _path(orgid: str) -> str:
    return f"/api/v1/customers/{orgid}/quota"


async def _set(api: Api, who: User, orgid: str, limits: Any) -> Any:
    return await api.http.put(_path(orgid), json={"limits": limits}, headers=who.headers)


async def _quota(api: Api, who: User, orgid: str) -> dict[str, Any]:
    answer = await api.http.get(_path(orgid), headers=who.headers)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _box(cid: str, index: int, **extra: Any) -> dict[str, Any]:
    """The spec's example order (1 core, 512Mi: a whole GiB), one name and node port per index, prepaid an hour."""
    return instance_params(
        cid, source_name=f"box-{index}", source_outsideport=str(30100 + index), duration="1", **extra
    )


async def _instances(api: Api) -> int:
    async with api.app.state.kboss.sessions() as session:
        return int(await session.scalar(select(func.count(Instance.id))) or 0)


async def _footprint(api: Api, provider: User, buyer: User, ids: dict[str, str]) -> tuple[Any, ...]:
    """What an order writes: stock consumed, the balance, instance rows."""
    return (await _consumed(provider, ids["cpcid"]), await _balance(api, buyer, ids["orgid"]), await _instances(api))


async def test_a_provider_admin_sets_and_reads_limits_and_a_customer_reads_its_own(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "100.00")
    limits = {"cpu": 8, "memory": 16, "gpu:A100-80G": 2, "instances": 3}
    answer = await _set(api, provider, ids["orgid"], limits)
    assert answer.status_code == 200, answer.text
    zero = {"cpu": 0, "memory": 0, "instances": 0, "gpu:A100-80G": 0}
    assert answer.json() == {"orgid": ids["orgid"], "limits": limits, "used": zero}
    assert await _quota(api, buyer, ids["orgid"]) == answer.json()

    await buyer.ok(NEW, **_box(ids["cid"], 1))
    assert (await _quota(api, provider, ids["orgid"]))["used"] == {**zero, "cpu": 1, "memory": 1, "instances": 1}
    replaced = (await _set(api, provider, ids["orgid"], {"cpu": 4, "memory": None})).json()
    assert replaced["limits"] == {"cpu": 4}  # the set is replaced; null is no limit


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        ({"disk": 1}, "limits.disk"),
        ({"gpu": 1}, "limits.gpu"),
        ({"gpu:": 1}, "limits.gpu:"),
        ({"gpu: A100": 1}, "limits.gpu: A100"),
        ({"gpu:" + "X" * 129: 1}, "limits.gpu:"),
        ({"cpu": -1}, "limits.cpu"),
        ({"cpu": 1.5}, "limits.cpu"),
        ({"memory": True}, "limits.memory"),
        ({"instances": "3"}, "limits.instances"),
        ({"cpu": 10**13}, "limits.cpu"),
        ([1], "参数 limits 无效"),
        (None, "参数 limits 无效"),
    ],
)
async def test_bad_limits_are_refused_naming_the_field_and_change_nothing(api: Api, limits: Any, named: str) -> None:
    provider, _, ids = await _shop(api, "")
    assert (await _set(api, provider, ids["orgid"], {"cpu": 8})).status_code == 200
    answer = await _set(api, provider, ids["orgid"], limits)
    assert answer.status_code == 422 and named in answer.json()["detail"], answer.text
    assert (await _quota(api, provider, ids["orgid"]))["limits"] == {"cpu": 8}


async def test_only_the_customers_provider_admin_sets_quotas(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "")
    member = await api.user("bob", "acme", admin=False)
    stranger = await api.user("carol", "other-provider")
    other_customer = await _customer(api, stranger, "丙客户", "buyer3")
    assert (await _set(api, member, ids["orgid"], {"cpu": 1})).status_code == 403
    assert (await api.http.get(_path(ids["orgid"]), headers=member.headers)).status_code == 403
    for who in (stranger, buyer):
        assert (await _set(api, who, ids["orgid"], {"cpu": 100})).status_code == 404
    assert (await api.http.get(_path(ids["orgid"]), headers=stranger.headers)).status_code == 404
    assert (await api.http.get(_path(other_customer["id"]), headers=buyer.headers)).status_code == 404
    assert (await api.http.get(_path(other_customer["id"]), headers=provider.headers)).status_code == 404
    assert (await _quota(api, provider, ids["orgid"]))["limits"] == {}


async def test_an_order_beyond_the_cpu_quota_is_refused_naming_it_and_writes_nothing(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "500.00")
    await _set(api, provider, ids["orgid"], {"cpu": 2})
    await buyer.ok(NEW, **_box(ids["cid"], 1))
    before = await _footprint(api, provider, buyer, ids)

    refused = await buyer.refused(NEW, **_box(ids["cid"], 2, source_cpurate="2000m"))
    assert refused == "超出客户配额 cpu: 上限 2 核,已用 1 核,本次 2 核"
    native = await api.http.post(
        f"/api/v1/clusters/{ids['cid']}/instances", json=_box(ids["cid"], 3, source_cpurate="2"), headers=buyer.headers
    )
    assert (native.status_code, native.json()["code"]) == (409, "quota_exceeded")
    assert await _footprint(api, provider, buyer, ids) == before

    await buyer.ok(NEW, **_box(ids["cid"], 4))  # one more core fits exactly
    own = await provider.ok(NEW, **_box(ids["cid"], 5, source_cpurate="8"))  # the provider's own: no quota
    assert (await _quota(api, buyer, ids["orgid"]))["used"]["cpu"] == 2
    await provider.ok(DELETE, id=own["id"])
    assert "超出客户配额 cpu" in await buyer.refused(NEW, **_box(ids["cid"], 6))


async def test_an_update_that_grows_beyond_a_quota_is_refused_and_one_that_shrinks_passes(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "500.00")
    created = await buyer.ok(NEW, **_box(ids["cid"], 1, source_cpurate="2"))
    await _set(api, provider, ids["orgid"], {"cpu": 3, "memory": 1})
    before = await _consumed(provider, ids["cpcid"])
    grow = {**_box(ids["cid"], 1), "id": created["id"]}
    refused = await buyer.refused(UPDATE, **{**grow, "source_cpurate": "4"})
    assert refused == "超出客户配额 cpu: 上限 3 核,已用 2 核,本次 2 核"
    assert "超出客户配额 memory: 上限 1 GiB,已用 1 GiB,本次 1 GiB" in await buyer.refused(
        UPDATE, **{**grow, "source_cpurate": "2", "source_memrate": "2Gi"}
    )
    assert await _consumed(provider, ids["cpcid"]) == before
    assert (await buyer.ok(UPDATE, **{**grow, "source_cpurate": "3"}))["source_cpurate"] == "3"

    await _set(api, provider, ids["orgid"], {"cpu": 1})  # lowered below what it holds: it may still shrink
    await buyer.ok(UPDATE, **{**grow, "source_cpurate": "2"})
    assert (await _quota(api, buyer, ids["orgid"]))["used"]["cpu"] == 2


async def test_a_gpu_model_quota_and_the_instances_quota(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "500.00")
    await _set(api, provider, ids["orgid"], {"gpu:RTX5090-32G": 1, "gpu:A100-80G": 0, "instances": 2})
    gpu = {"source_gpu": "1", "gpu_model": "RTX5090-32G"}
    first = await buyer.ok(NEW, **_box(ids["cid"], 1, **gpu))
    refused = await buyer.refused(NEW, **_box(ids["cid"], 2, **gpu))
    assert refused == "超出客户配额 gpu:RTX5090-32G: 上限 1 卡,已用 1 卡,本次 1 卡"
    assert (await _quota(api, buyer, ids["orgid"]))["used"]["gpu:RTX5090-32G"] == 1

    await buyer.ok(NEW, **_box(ids["cid"], 3))  # no GPU: only the instances quota applies
    refused = await buyer.refused(NEW, **_box(ids["cid"], 4))
    assert refused == "超出客户配额 instances: 上限 2 个,已用 2 个,本次 1 个"
    await buyer.ok(DELETE, id=first["id"])  # what is given back no longer counts
    await buyer.ok(NEW, **_box(ids["cid"], 5, **gpu))
    assert (await _quota(api, buyer, ids["orgid"]))["used"] == {
        "cpu": 2, "memory": 2, "instances": 2, "gpu:RTX5090-32G": 1, "gpu:A100-80G": 0,
    }  # fmt: skip


ORDERS, FITS = 8, 3
# A second cpu and memory model: orders of alternate models share no stock row, so that the stock's row locks do
# not serialise them and only the account's lock keeps them from both passing (on PostgreSQL; SQLite has one
# writer at a time anyway).
FAST = [
    {"type": "cpu", "model": "FAST", "unit_price": 3, "resource_unit": "核", "stock": 64},
    {"type": "memory", "model": "FAST", "unit_price": 0.2, "resource_unit": "Gi", "stock": 256},
]


async def test_concurrent_orders_never_pass_a_quota_together(api: Api) -> None:
    provider, buyer, ids = await _shop(api, "500.00")
    await add_components(provider, ids["cpcid"], ids["cid"], FAST)
    await _set(api, provider, ids["orgid"], {"cpu": FITS})

    async def order(index: int) -> bool:
        model = "FAST" if index % 2 else "STANDARD"
        disks = {"disk_sys_limit": "0", "source_storagelimits": "0"}
        body = await buyer.call(NEW, **_box(ids["cid"], index, cpu_model=model, memory_model=model, **disks))
        assert body["status"] or "超出客户配额 cpu" in body["msg"], body
        return bool(body["status"])

    accepted = await asyncio.gather(*(order(index) for index in range(ORDERS)))
    assert sum(accepted) == FITS
    assert await _instances(api) == FITS
    assert (await _quota(api, buyer, ids["orgid"]))["used"]["cpu"] == FITS
    ledger = await api.http.get(f"/api/v1/accounts/{ids['orgid']}/ledger", headers=buyer.headers)
    charges = [Decimal(row["amount"]) for row in ledger.json()["rows"] if row["kind"] == "charge"]
    assert len(charges) == FITS  # only the accepted orders were paid for
    assert await _balance(api, buyer, ids["orgid"]) == Decimal("500.00") + sum(charges)
