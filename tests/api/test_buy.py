"""The buy page: products that cannot be deployed now, from live data or the catalog, and GPU cards left."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import update

from kboss.db.models_instances import Instance
from tests.api.test_compat_catalog import CPCC, KUBECONFIG
from tests.api.test_instances import COMPONENTS, NEW, Site, add_components, instance_params, record_cluster, site
from tests.support.spec import field_names, success_example

__all__ = ["site"]
BUY = f"{CPCC}/cpcbuy/determine_accommodat.dspy"
GPUINFO = "/api/v1/gpu-inventory"


def product(product_id: str, *resources: tuple[str, int] | tuple[str, int, str], **extra: Any) -> dict[str, Any]:
    lines = [{"type": r[0], "amount": r[1], **({"model": r[2]} if len(r) > 2 else {})} for r in resources]
    return {"id": product_id, "resources": lines, **extra}


# The worker has 16 cores, 64Gi and 4 RTX5090 cards; the catalog sells 8 cards, 64 cores, 256Gi.
PRODUCTS = [
    product("small", ("cpu", 2), ("memory", 2048)),
    product("gpu2", ("cpu", 4), ("gpu", 2, "RTX5090-32G")),
    product("gpu5", ("gpu", 5, "RTX5090-32G")),
    product("a100", ("gpu", 1, "A100-80G")),
    product("gpu-nodes-only", ("gpu", 1, "RTX5090-32G"), labels=["kyy-gpu=true"]),
]


async def _buy(site: Site, clusterid: str | None = None, **params: Any) -> dict[str, Any]:
    params.setdefault("resources", json.dumps(PRODUCTS))
    params.setdefault("kyylabels", "")
    return await site.admin.call(BUY, "GET", cpcid=site.cpcid, clusterid=clusterid or site.clusterid, **params)


async def test_live_data_greys_out_what_no_node_can_host(site: Site) -> None:
    answer = await _buy(site)
    assert field_names(success_example(BUY)) <= field_names(answer)
    assert (answer["status"], answer["msg"], answer["reason"]) == (True, "获取不可部署产品ID成功", "dynamic")
    assert answer["data"] == ["gpu5", "a100"]


async def test_kyylabels_apply_to_every_product(site: Site) -> None:
    answer = await _buy(site, resources=json.dumps(PRODUCTS[:4]), kyylabels=json.dumps(["kyy-gpu=false"]))
    # Only the master is kyy-gpu=false, and it has no GPU.
    assert answer["data"] == ["gpu2", "gpu5", "a100"]
    # A product asking for kyy-gpu=true cannot also ask for kyy-gpu=false: said, naming the product.
    message = (await _buy(site, kyylabels="kyy-gpu=false"))["msg"]
    assert "resources[4].labels" in message and "kyy-gpu" in message


async def test_orders_in_progress_hold_what_they_ordered(site: Site) -> None:
    order = instance_params(site.clusterid, source_gpu="3", gpu_model="RTX5090-32G")
    created = await site.admin.ok(NEW, **order)
    # Its pods are not there yet (the fake runs no controllers), as right after an order: hold its cards.
    async with site.api.app.state.kboss.sessions() as session:
        await session.execute(update(Instance).where(Instance.id == created["id"]).values(state="applying"))
        await session.commit()
    assert (await _buy(site))["data"] == ["gpu2", "gpu5", "a100"]


async def test_the_catalog_greys_out_what_is_not_for_sale_even_when_nodes_have_room(site: Site) -> None:
    bigmem = product("bigmem", ("memory", 300 * 1024))  # 300Gi: more than the 256Gi sold
    response = await site.admin.http.post(
        f"/api/v1/clusters/{site.clusterid}/capacity",
        json={"resources": [bigmem, PRODUCTS[0], PRODUCTS[2]]},
        headers=site.admin.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["source"], body["unplaceable"]) == ("dynamic", ["bigmem", "gpu5"])
    rows = {row["id"]: row for row in body["rows"]}
    assert "memory STANDARD 库存不足 (库存: 256, 请求: 300)" in rows["bigmem"]["stock"]
    assert rows["gpu5"]["live"]["reasons"] == {
        "Insufficient nvidia.com/gpu": 1,
        "node(s) didn't have the requested GPU model": 1,
    }
    assert rows["small"] == {**rows["small"], "deployable": True, "reasons": [], "stock": []}


async def test_an_unreachable_cluster_falls_back_to_the_catalog(site: Site) -> None:
    gone = await record_cluster(site.admin, site.cpcid, KUBECONFIG, "已下线")
    await add_components(site.admin, site.cpcid, gone, COMPONENTS)
    answer = await _buy(site, clusterid=gone)
    assert (answer["status"], answer["reason"]) == (True, "catalog")
    assert "仅按库存判断" in answer["msg"] and "127.0.0.1:1" in answer["msg"]
    # The catalog sells 8 cards (gpu5 passes) but no A100 at all.
    assert answer["data"] == ["a100"]


async def test_bad_products_are_refused_naming_the_field(site: Site) -> None:
    cases = {
        "resources": {"resources": "not json"},
        "resources[0].resources[0].amount": {"resources": json.dumps([product("x", ("cpu", -1))])},
        "kyylabels": {"kyylabels": "a b=c"},
    }
    for named, params in cases.items():
        answer = await _buy(site, **params)
        assert answer["status"] is False and named in answer["msg"], answer
    assert site.fake.requests == []


async def test_gpu_cards_left_are_capped_by_what_the_nodes_have_free(site: Site) -> None:
    async def cards(**where: str) -> dict[str, int]:
        response = await site.admin.http.get(GPUINFO, params=where, headers=site.admin.headers)
        assert response.status_code == 200, response.text
        inventory: dict[str, int] = response.json()
        return inventory

    # The catalog sells 8, the nodes have 4: 4 can really be sold now.
    assert await cards(clusterid=site.clusterid) == {"RTX5090-32G": 4}
    site.fake.add_pod("trainer-0", "default", node="k8s-worker-1", requests={"nvidia.com/gpu": "1"})
    assert await cards(cpcid=site.cpcid) == {"RTX5090-32G": 3}

    gone = await record_cluster(site.admin, site.cpcid, KUBECONFIG, "已下线")
    await add_components(
        site.admin, site.cpcid, gone, [{"type": "gpu", "model": "RTX5090-32G", "unit_price": 6, "stock": 2}]
    )
    assert await cards(clusterid=gone) == {"RTX5090-32G": 2}  # unreachable: the catalog alone
    assert await cards() == {"RTX5090-32G": 5}


async def test_the_console_and_the_compat_api_show_one_gpu_figure(site: Site) -> None:
    """The buy page (native) and obtaining_gpuinfo (compat) answer the same cards: what an order can take now."""
    site.fake.add_pod("trainer-0", "default", node="k8s-worker-1", requests={"nvidia.com/gpu": "3"})
    native = await site.admin.http.get(GPUINFO, params={"cpcid": site.cpcid}, headers=site.admin.headers)
    compat = await site.admin.ok(f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy", "GET", cpcid=site.cpcid)
    assert native.json() == compat == {"RTX5090-32G": 1}  # the catalog still has 8: the node's 1 free card is the truth
