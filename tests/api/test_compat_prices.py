"""Components, quotes and GPU inventory through the compat endpoints, with the spec's catalog and examples."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.api.test_compat_catalog import CENTER, CPCC, assert_fields_like_spec, import_cluster
from tests.support.api import Api, User
from tests.support.spec import success_example

QUOTE = f"{CPCC}/cpcwidget/accrual_price.dspy"
HOUR = {"duration": "1", "duration_unit": "小时"}  # both required (docs/compat-api.md)
ADD = f"{CPCC}/cpcwidget/add_cpcwidget.dspy"
# The four lines of the spec's quote example (memory in Mi, as the spec requires).
SPEC_RESOURCES = [
    {"type": "cpu", "model": "INTEL(R) XEON(R) PLATINUM 8582C", "amount": 4},
    {"type": "memory", "model": "Samsung DDR4 DIMMs", "amount": 8192},
    {"type": "disk", "model": "DATA", "amount": 512},
    {"type": "gpu", "model": "RTX5090-32G", "amount": 2},
]


def spec_catalog() -> list[dict[str, Any]]:
    """The spec's component catalog, with memory priced per Mi as its quote example assumes."""
    rows: list[dict[str, Any]] = success_example(f"{CPCC}/cpcwidget/get_cpcwidget.dspy")["data"]["rows"]
    catalog = []
    for row in rows:
        unit = "Mi" if (row["type"], row["model"]) == ("memory", "Samsung DDR4 DIMMs") else row["resource_unit"]
        catalog.append({**row, "resource_unit": unit})
    return catalog


async def load_catalog(admin: User, cpcid: str, clusterid: str, stock: int = 100_000) -> None:
    for row in spec_catalog():
        params = {k: row[k] for k in ("type", "model", "unit_price", "resource_unit", "charge_unit", "account_unit")}
        await admin.ok(ADD, cpcid=cpcid, clusterid=clusterid, stock=stock, add_opt="no", **params)


async def center_with_catalog(api: Api, stock: int = 100_000) -> tuple[User, str, str]:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    clusterid = await import_cluster(admin, cpcid)
    await load_catalog(admin, cpcid, clusterid, stock)
    return admin, cpcid, clusterid


async def test_spec_quote_example_answers_64_08_for_one_hour(api: Api) -> None:
    admin, cpcid, _ = await center_with_catalog(api)
    body = await admin.call(
        QUOTE, "GET", cpcid=cpcid, resources=json.dumps(SPEC_RESOURCES), duration=1, duration_unit="小时"
    )
    assert body["status"] is True and body["msg"] == "获取部件组合价格成功"
    data = body["data"]
    assert_fields_like_spec(QUOTE, data)
    assert Decimal(str(data["total_price"])) == Decimal("64.08")
    assert [line["subtotal"] for line in data["price_details"]] == [6, 40.96, 5.12, 12]
    assert (data["message"], data["duration"], data["duration_unit"]) == ("汇算正常", "1", "小时")


async def test_quote_honours_the_requested_duration(api: Api) -> None:
    admin, cpcid, _ = await center_with_catalog(api)
    two_days = await admin.ok(
        QUOTE, "GET", cpcid=cpcid, resources=json.dumps(SPEC_RESOURCES), duration=2, duration_unit="天"
    )
    assert Decimal(str(two_days["total_price"])) == Decimal("64.08") * 48
    assert (two_days["duration"], two_days["duration_unit"]) == ("2", "天")
    week = await admin.ok(
        QUOTE, "POST", cpcid=cpcid, resources=json.dumps(SPEC_RESOURCES), duration=1, duration_unit="week"
    )
    assert Decimal(str(week["total_price"])) == Decimal("64.08") * 24 * 7


async def test_unknown_model_prices_the_other_lines(api: Api) -> None:
    admin, cpcid, _ = await center_with_catalog(api)
    resources = [*SPEC_RESOURCES[:3], {"type": "gpu", "model": "RTXs5090-32G", "amount": 2}]
    body = await admin.call(
        QUOTE, "GET", cpcid=cpcid, resources=json.dumps(resources), duration=1, duration_unit="小时"
    )
    assert body["status"] is False
    assert body["msg"] == "无效的 gpu 部件型号: RTXs5090-32G"
    assert Decimal(str(body["data"]["total_price"])) == Decimal("52.08")
    assert body["data"]["price_details"][3] == {"resource_type": "gpu", "error": "无效的 gpu 部件型号: RTXs5090-32G"}


async def test_short_stock_is_reported_per_line(api: Api) -> None:
    admin, cpcid, clusterid = await center_with_catalog(api, stock=1280)
    resources = json.dumps(SPEC_RESOURCES)
    body = await admin.call(QUOTE, "GET", cpcid=cpcid, clusterid=clusterid, resources=resources, **HOUR)
    assert body["msg"] == "memory Samsung DDR4 DIMMs 库存不足 (库存: 1280, 请求: 8192)"
    assert Decimal(str(body["data"]["total_price"])) == Decimal("23.12")


async def test_center_without_components_answers_no_such_type(api: Api) -> None:
    admin = await api.user("alice", "acme")
    cpcid = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    body = await admin.call(
        QUOTE, "GET", cpcid=cpcid, resources=json.dumps(SPEC_RESOURCES), duration=1, duration_unit="小时"
    )
    assert body["msg"] == "没有该类型组件"
    assert body["data"]["total_price"] == 0
    assert [line["error"] for line in body["data"]["price_details"]] == ["没有该类型组件"] * 4


async def test_clusterid_limits_stock_to_that_cluster(api: Api) -> None:
    admin, cpcid, first = await center_with_catalog(api, stock=0)
    second = await import_cluster(admin, cpcid, "通州区")
    await admin.ok(
        ADD, cpcid=cpcid, clusterid=second, type="gpu", model="RTX5090-32G", unit_price=6, stock=4, add_opt="yes"
    )
    gpu = json.dumps([{"type": "gpu", "model": "RTX5090-32G", "amount": 2}])
    assert (await admin.call(QUOTE, "GET", cpcid=cpcid, clusterid=second, resources=gpu, **HOUR))["status"] is True
    assert "库存不足" in (await admin.call(QUOTE, "GET", cpcid=cpcid, clusterid=first, resources=gpu, **HOUR))["msg"]
    assert (await admin.call(QUOTE, "GET", cpcid=cpcid, resources=gpu, **HOUR))["status"] is True


async def test_adding_an_existing_component_needs_add_opt(api: Api) -> None:
    admin, cpcid, clusterid = await center_with_catalog(api, stock=3)
    again = {"cpcid": cpcid, "clusterid": clusterid, "type": "gpu", "model": "A100-80G", "unit_price": 99, "stock": 2}
    assert await admin.refused(ADD, **again, add_opt="no") == "该部件已存在,请前往编辑!"
    added = await admin.ok(ADD, **again, add_opt="yes")
    assert (added["stock"], added["unit_price"]) == (5, 18)
    assert added["import_export"] == [{"clusterid": clusterid, "clustername": "朝阳区", "stock": 5, "consumed": 0}]


async def test_component_list_matches_the_spec_and_update_changes_only_the_price(api: Api) -> None:
    admin, cpcid, _ = await center_with_catalog(api, stock=5)
    listed = await admin.ok(f"{CPCC}/cpcwidget/get_cpcwidget.dspy", "GET", cpcid=cpcid)
    assert_fields_like_spec(f"{CPCC}/cpcwidget/get_cpcwidget.dspy", listed)
    assert listed["total"] == len(spec_catalog())
    gpu = next(r for r in listed["rows"] if r["model"] == "V100-32G")
    updated = await admin.ok(
        f"{CPCC}/cpcwidget/update_cpcwidget.dspy",
        id=gpu["id"],
        cpcid=cpcid,
        unit_price="0.0009",
        type="gpu",
        model="V100-32G",
        resource_unit="Gi",
        stock=999,
    )
    assert updated == {"cpcid": cpcid, "id": gpu["id"], "unit_price": 0.0009}
    listed = await admin.ok(f"{CPCC}/cpcwidget/get_cpcwidget.dspy", "GET", cpcid=cpcid)
    after = next(r for r in listed["rows"] if r["id"] == gpu["id"])
    assert (after["unit_price"], after["resource_unit"], after["stock"]) == (0.0009, "卡", 5)

    await admin.ok(f"{CPCC}/cpcwidget/delete_cpcwidget.dspy", id=gpu["id"], cpcid=cpcid)
    listed = await admin.ok(f"{CPCC}/cpcwidget/get_cpcwidget.dspy", "GET", cpcid=cpcid)
    assert gpu["id"] not in {r["id"] for r in listed["rows"]}


async def test_gpu_inventory_per_cluster_center_and_org(api: Api) -> None:
    admin, cpcid, first = await center_with_catalog(api, stock=0)
    second = await import_cluster(admin, cpcid, "通州区")
    base = {"cpcid": cpcid, "type": "gpu", "unit_price": 2, "add_opt": "yes"}
    await admin.ok(ADD, **base, clusterid=first, model="STANDARD-8G", stock=3)
    await admin.ok(ADD, **base, clusterid=second, model="STANDARD-8G", stock=2)
    other_center = (await admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    other_cluster = await import_cluster(admin, other_center, "另一个")
    await admin.ok(ADD, **{**base, "cpcid": other_center}, clusterid=other_cluster, model="XXX-12G", stock=1)

    path = f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy"
    by_center = await admin.ok(path, "GET", cpcid=cpcid)
    assert by_center["STANDARD-8G"] == 5 and "XXX-12G" not in by_center
    assert (await admin.ok(path, "GET", clusterid=second)) == {"STANDARD-8G": 2}
    everywhere = await admin.ok(path, "GET")
    assert (everywhere["STANDARD-8G"], everywhere["XXX-12G"]) == (5, 1)
