"""Lines without a model (the document names no memory or disk model): served by the cheapest component that fits.

The cluster sells two memory components: STANDARD (256 Gi at 0.1/Gi) and DDR5 (4 Gi at 0.05/Gi).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from tests.api.test_buy import BUY, product
from tests.api.test_compat_catalog import CPCC
from tests.api.test_instances import NEW, Site, add_components, consumed, instance_params, site

__all__ = ["site"]
QUOTE = f"{CPCC}/cpcwidget/accrual_price.dspy"
DDR5 = {"type": "memory", "model": "DDR5", "unit_price": 0.05, "resource_unit": "Gi", "stock": 4}


async def _with_ddr5(site: Site) -> Site:
    await add_components(site.admin, site.cpcid, site.clusterid, [DDR5])
    return site


async def _buy(site: Site, *products: dict[str, Any]) -> dict[str, Any]:
    resources = json.dumps(list(products))
    return await site.admin.call(BUY, "GET", cpcid=site.cpcid, clusterid=site.clusterid, resources=resources)


def _memory_models(row: dict[str, Any]) -> list[str]:
    return [line["model"] for line in row["components"] if line["type"] == "memory"]


async def test_the_buy_page_serves_a_modelless_line_from_the_cheapest_component_that_fits(site: Site) -> None:
    await _with_ddr5(site)
    tiny, eight, huge = (
        product("tiny", ("memory", 8)),
        product("8g", ("memory", 8 * 1024)),
        product("huge", ("memory", 300 * 1024)),
    )
    answer = await _buy(site, tiny, eight, huge, product("named", ("memory", 8, "DDR4")))
    assert answer["status"] is True and answer["data"] == ["huge", "named"]
    rows = {row["id"]: row for row in answer["products"]}
    assert _memory_models(rows["tiny"]) == ["DDR5"]  # 8 Mi: a whole Gi of the cheaper DDR5
    assert _memory_models(rows["8g"]) == ["STANDARD"]  # DDR5 has 4 Gi
    # Every greyed product says why, in the quote's words.
    assert "memory STANDARD 库存不足 (库存: 256, 请求: 300)" in rows["huge"]["reasons"]
    assert rows["named"]["reasons"] == ["无效的 memory 部件型号: DDR4"]
    assert all(rows[greyed]["reasons"] for greyed in answer["data"])


async def test_an_order_without_memory_model_draws_on_the_cheapest_that_fits(site: Site) -> None:
    await _with_ddr5(site)
    first = await site.admin.ok(NEW, **instance_params(site.clusterid, source_name="one", source_memrate="3Gi"))
    assert (await consumed(site))["memory DDR5"] == 3
    # The next 3 Gi no longer fit DDR5's last Gi: STANDARD serves it.
    second = await site.admin.ok(
        NEW, **instance_params(site.clusterid, source_name="two", source_memrate="3Gi", source_outsideport="30064")
    )
    assert {k: v for k, v in (await consumed(site)).items() if k.startswith("memory")} == {
        "memory DDR5": 3,
        "memory STANDARD": 3,
    }
    assert first["stock"] and second["stock"]
    assert [line["model"] for line in first["stock"] if line["type"] == "memory"] == ["DDR5"]
    assert [line["model"] for line in second["stock"] if line["type"] == "memory"] == ["STANDARD"]


async def test_a_quote_without_model_prices_what_an_order_would_draw_on(site: Site) -> None:
    await _with_ddr5(site)
    lines = json.dumps([{"type": "memory", "amount": 2048}, {"type": "memory", "amount": 2048, "model": "STANDARD"}])
    quote = await site.admin.ok(
        QUOTE, "GET", cpcid=site.cpcid, clusterid=site.clusterid, resources=lines, duration=1, duration_unit="小时"
    )
    chosen, named = quote["price_details"]
    assert (chosen["model"], chosen["model_chosen"], Decimal(str(chosen["subtotal"]))) == ("DDR5", True, Decimal("0.1"))
    assert (named["model"], named["model_chosen"], Decimal(str(named["subtotal"]))) == (
        "STANDARD",
        False,
        Decimal("0.2"),
    )
