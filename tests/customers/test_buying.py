"""What a customer sees: the centers its provider published to it, their offers (in stock or not, never the
numbers), quotes, GPU stock and its own instances in `<clusterid>-<orgid>`; nothing of machines, clusters' secrets,
boards, other customers or unpublished centers. The provider sees its customers' instances."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kboss.accounts import users
from kboss.errors import Conflict
from kboss.kube.labels import namespace_name
from tests.api.test_compat_catalog import CENTER, CPCC, import_cluster
from tests.api.test_instances import COMPONENTS, DELETE, GET, NEW, add_components, instance_params
from tests.api.test_simulated_site import _simulated_cluster
from tests.customers.test_customers import _customer, _login
from tests.support.api import Api, User

CENTERS = f"{CPCC}/cpclist/get_cpclist.dspy"
WIDGETS = f"{CPCC}/cpcwidget/get_cpcwidget.dspy"
PRICE = f"{CPCC}/cpcwidget/accrual_price.dspy"
GPUS = f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy"
QUOTE = {"resources": json.dumps([{"type": "gpu", "model": "RTX5090-32G", "amount": 2}]), "duration": "3"}


async def _publish(api: Api, provider: User, center: str, customers: Any) -> None:
    answer = await api.http.post(
        f"/api/v1/centers/{center}/publish", json={"customers": customers}, headers=provider.headers
    )
    assert answer.status_code == 200, answer.text


async def _shop(api: Api) -> tuple[User, dict[str, str], User, User]:
    provider = await api.user("alice", "acme")
    cpcid = (await provider.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    cluster = await import_cluster(provider, cpcid)
    await add_components(provider, cpcid, cluster, COMPONENTS)
    first = await _customer(api, provider, "甲客户", "buyer1")
    await _customer(api, provider, "乙客户", "buyer2")
    ids = {"cpcid": cpcid, "cluster": cluster, "customer": first["id"]}
    return provider, ids, await _login(api, "buyer1"), await _login(api, "buyer2")


async def test_a_customer_buys_only_from_centers_published_to_it(api: Api) -> None:
    provider, ids, buyer, other = await _shop(api)
    price = {"cpcid": ids["cpcid"], **QUOTE, "duration_unit": "小时"}
    assert (await buyer.ok(CENTERS, "GET"))["total"] == 0
    assert "不存在" in await buyer.refused(WIDGETS, "GET", cpcid=ids["cpcid"])
    assert "不存在" in await buyer.refused(PRICE, "GET", **price)
    assert "不存在" in await buyer.refused(f"{CPCC}/cpccluster/get_cpccluster.dspy", "GET", cpcid=ids["cpcid"])

    await _publish(api, provider, ids["cpcid"], [ids["customer"]])
    listed = (await buyer.ok(CENTERS, "GET", reveal="1"))["rows"]
    assert [(row["id"], row["pcapi_url"], row["api_user"], row["api_pwd"]) for row in listed] == [
        (ids["cpcid"], "", "", "")
    ]
    assert listed[0]["contactname"] == CENTER["contactname"] and listed[0]["orgid_text"] == "acme"
    offers = (await buyer.ok(WIDGETS, "GET", cpcid=ids["cpcid"]))["rows"]
    assert {row["type"] for row in offers} == {"cpu", "memory", "disk", "gpu"}
    assert all("stock" not in row and "consumed" not in row and row["in_stock"] is True for row in offers)
    assert all(set(line) == {"clusterid", "clustername", "in_stock"} for row in offers for line in row["import_export"])
    quoted = await buyer.ok(PRICE, "GET", **price)
    assert quoted == await provider.ok(PRICE, "GET", **price)  # the provider's prices, to the cent
    assert await buyer.ok(GPUS, "GET", cpcid=ids["cpcid"]) == {"RTX5090-32G": 8}

    assert (await other.ok(CENTERS, "GET"))["total"] == 0  # published to buyer1 only
    assert "不存在" in await other.refused(WIDGETS, "GET", cpcid=ids["cpcid"])
    assert await other.ok(GPUS, "GET") == {}


async def test_a_customer_reaches_nothing_of_the_providers_machines(api: Api) -> None:
    provider, ids, buyer, _ = await _shop(api)
    await _publish(api, provider, ids["cpcid"], "all")
    refused = [
        (f"{CPCC}/cpcnode/get_cpcnode.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcnode/get_cpcidle_device.dspy", {"cpcid": ids["cpcid"]}),
        (f"{CPCC}/cpcpod/get_cpcpod.dspy", {"cpcid": ids["cpcid"], "clusterid": ids["cluster"]}),
        (f"{CPCC}/cpcworker/get_cpcworker.dspy", {"cpcid": ids["cpcid"], "clusterid": ids["cluster"]}),
    ]
    clusters = await buyer.ok(f"{CPCC}/cpccluster/get_cpccluster.dspy", "GET", cpcid=ids["cpcid"], reveal="1")
    assert [(c["id"], c["kubeconfig"], c["clusterjoin"], c["controllerid"]) for c in clusters["rows"]] == [
        (ids["cluster"], "", "", None)
    ]  # the clusters to buy on, with no secret and no machine of theirs
    for path, params in refused:
        assert "没有这个接口" in await buyer.refused(path, "GET", **params), path
    writes = [
        (f"{CPCC}/cpclist/update_cpclist.dspy", {**CENTER, "id": ids["cpcid"], "name": "pwned"}),
        (f"{CPCC}/cpccluster/update_cpccluster.dspy", {"id": ids["cluster"], "name": "pwned"}),
        (
            f"{CPCC}/cpcwidget/add_cpcwidget.dspy",
            {"cpcid": ids["cpcid"], "clusterid": ids["cluster"], "type": "cpu", "unit_price": 1},
        ),
    ]
    for path, params in writes:
        assert "没有这个接口" in await buyer.refused(path, **params), path
    for path in (f"/api/v1/clusters/{ids['cluster']}?reveal=true", f"/api/v1/centers/{ids['cpcid']}/devices"):
        answer = await api.http.get(path, headers=buyer.headers)
        assert answer.status_code == 404, (path, answer.text)
    center = (await api.http.get(f"/api/v1/centers/{ids['cpcid']}?reveal=true", headers=buyer.headers)).json()
    assert center["name"] == CENTER["name"] and center["api_pwd"] == "" and center["pcapi_url"] == ""
    assert (await provider.ok(CENTERS, "GET"))["rows"][0]["name"] == CENTER["name"]  # nothing was changed


async def test_customers_instances_live_in_their_own_namespace_and_the_provider_sees_them(api: Api) -> None:
    provider = await api.user("alice", "acme")
    cpcid, cid = await _simulated_cluster(api, provider)
    first = await _customer(api, provider, "甲客户", "buyer1")
    await _customer(api, provider, "乙客户", "buyer2")
    buyer, other = await _login(api, "buyer1"), await _login(api, "buyer2")
    await _publish(api, provider, cpcid, "all")
    top_up = {"amount": "10"}  # a metered order needs a balance (docs/billing.md)
    await api.http.post(f"/api/v1/accounts/{first['id']}/credit", json=top_up, headers=provider.headers)

    created = await buyer.ok(NEW, **instance_params(cid))
    assert created["namespace_name"] == namespace_name(cid, first["id"])
    mine = (await buyer.ok(GET, "GET", cpcid=cpcid, clusterid=cid))["rows"]
    assert [(row["id"], row["orgid"], row["username"]) for row in mine] == [(created["id"], first["id"], "buyer1")]
    assert (await other.ok(GET, "GET", cpcid=cpcid, clusterid=cid))["rows"] == []
    assert "不存在" in await other.refused(DELETE, id=created["id"])
    seen = (await provider.ok(GET, "GET", cpcid=cpcid, clusterid=cid))["rows"]
    assert [(row["id"], row["username"]) for row in seen] == [(created["id"], "buyer1")]
    async with api.app.state.kboss.sessions() as session:  # an owner of instances is not removed
        with pytest.raises(Conflict, match="还拥有 1 个资源实例"):
            await users.remove(session, "buyer1")

    await _unpublish_all(api, provider, cpcid)  # no new orders; what runs stays the customer's to delete
    assert "不存在" in await buyer.refused(NEW, **instance_params(cid, source_name="again"))
    await buyer.ok(DELETE, id=created["id"])
    assert (await provider.ok(GET, "GET", cpcid=cpcid, clusterid=cid))["rows"] == []


async def _unpublish_all(api: Api, provider: User, center: str) -> None:
    answer = await api.http.post(
        f"/api/v1/centers/{center}/unpublish", json={"customers": "all"}, headers=provider.headers
    )
    assert answer.status_code == 200, answer.text
