"""Concurrent orders never oversell, and every instance has its objects and every object its instance."""

from __future__ import annotations

import asyncio

from tests.api.test_instances import (
    GET,
    NEW,
    Site,
    add_components,
    consumed,
    instance_params,
    site,
)

__all__ = ["site"]
ORDERS, CARDS = 100, 10


async def test_a_hundred_concurrent_orders_for_ten_cards_sell_exactly_ten(site: Site) -> None:
    await add_components(
        site.admin, site.cpcid, site.clusterid, [{"type": "gpu", "model": "A100-80G", "unit_price": 18, "stock": CARDS}]
    )
    order = instance_params(
        site.clusterid,
        source_gpu="1",
        gpu_model="A100-80G",
        source_outsideport="",  # let Kubernetes pick: ten instances cannot share one node port
        source_storagelimits="0",
        disk_sys_limit="0",
    )
    answers = await asyncio.gather(
        *(site.admin.call(NEW, **{**order, "source_name": f"order-{n}"}) for n in range(ORDERS))
    )

    sold = [answer["data"] for answer in answers if answer["status"]]
    refused = {answer["msg"] for answer in answers if not answer["status"]}
    assert len(sold) == CARDS
    assert all(message.startswith("gpu A100-80G 库存不足 (库存: ") for message in refused), refused
    assert (await consumed(site))["gpu A100-80G"] == CARDS

    listed = await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert listed["total"] == CARDS and {row["state"] for row in listed["rows"]} == {"ready"}
    controllers = {row["podcd_name"] for row in listed["rows"]}
    services = {row["service_name"] for row in listed["rows"]}
    assert {obj["metadata"]["name"] for obj in site.fake.list("StatefulSet", site.namespace)} == controllers
    assert {obj["metadata"]["name"] for obj in site.fake.list("Service", site.namespace)} == services
    assert len(site.fake.list("Secret", site.namespace)) == CARDS
