"""Priced components (the spec's cpcwidget), their stock per cluster, quotes and the GPU inventory."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from kboss.catalog.centers import get_center
from kboss.catalog.clusters import get_cluster
from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.published import buyable_center
from kboss.common.records import get_owned, time_text
from kboss.common.validation import Input, NonNegInt, Text, parse
from kboss.db.cas import matched
from kboss.db.models import Cluster, Component, ComponentStock, utcnow
from kboss.errors import Conflict, InvalidParameter
from kboss.pricing import units

EXISTS_MESSAGE = "该部件已存在,请前往编辑!"
SORTABLE = {"type": Component.type, "model": Component.model, "unit_price": Component.unit_price}


# The column is NUMERIC(24, 10): 14 digits before the point.
MAX_PRICE = Decimal(10) ** 14


def _price(value: Any) -> Decimal:
    try:
        price = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("应为数字") from None
    if not price.is_finite() or price < 0:
        raise ValueError("应为非负数")
    if price.as_tuple().exponent < -10:  # type: ignore[operator]
        raise ValueError("最多 10 位小数")
    if price >= MAX_PRICE:
        raise ValueError(f"应小于 {MAX_PRICE}")
    return price


Price = Annotated[Decimal, BeforeValidator(_price)]


class ComponentInput(Input):
    cpcid: Text
    clusterid: Text
    type: Literal["cpu", "memory", "disk", "gpu"]
    model: Text = "STANDARD"
    resource_unit: str = Field(default="", validate_default=True)
    unit_price: Price
    stock: NonNegInt = 0
    charge_unit: Literal["秒", "分钟", "小时", "天", "second", "minute", "hour", "day"] = "小时"
    account_unit: Literal["元", "角", "分"] = "元"
    add_opt: Literal["yes", "no"] = "no"

    @field_validator("resource_unit", mode="after")
    @classmethod
    def _unit_matches_type(cls, unit: str, info: ValidationInfo) -> str:
        resource_type = info.data.get("type")
        if resource_type is None:  # the type itself was refused; that error is reported instead
            return unit
        unit = unit.strip() or units.DEFAULT_RESOURCE_UNIT[resource_type]
        problem = units.resource_unit_problem(resource_type, unit)
        if problem:
            raise ValueError(problem)
        return unit


class PriceUpdate(Input):
    unit_price: Price


def component_row(component: Component, stocks: list[tuple[ComponentStock, str]]) -> dict[str, Any]:
    return {
        "id": component.id,
        "cpcid": component.cpcid,
        "type": component.type,
        "model": component.model,
        "unit_price": component.unit_price.normalize(),
        "resource_unit": component.resource_unit,
        "stock": sum(s.stock for s, _ in stocks),
        "consumed": sum(s.consumed for s, _ in stocks),
        "charge_unit": component.charge_unit,
        "account_unit": component.account_unit,
        "update_time": time_text(component.update_time),
        "import_export": [
            {"clusterid": s.clusterid, "clustername": name, "stock": s.stock, "consumed": s.consumed}
            for s, name in stocks
        ],
    }


async def _stocks(ctx: Ctx, component_ids: list[str]) -> dict[str, list[tuple[ComponentStock, str]]]:
    query = (
        select(ComponentStock, Cluster.name)
        .join(Cluster, Cluster.id == ComponentStock.clusterid)
        .where(ComponentStock.component_id.in_(component_ids))
        .order_by(Cluster.created_at, Cluster.id)
    )
    grouped: dict[str, list[tuple[ComponentStock, str]]] = {cid: [] for cid in component_ids}
    for stock, name in (await ctx.session.execute(query)).all():
        grouped[stock.component_id].append((stock, name))
    return grouped


def offer_row(component: Component, stocks: list[tuple[ComponentStock, str]]) -> dict[str, Any]:
    """A component as a customer sees it: an offer, in stock or not per cluster, never the stock's numbers (they
    would tell one customer what the others hold)."""
    row = component_row(component, stocks)
    for name in ("stock", "consumed"):
        del row[name]
    row["in_stock"] = any(s.stock > s.consumed for s, _ in stocks)
    row["import_export"] = [
        {"clusterid": s.clusterid, "clustername": name, "in_stock": s.stock > s.consumed} for s, name in stocks
    ]
    return row


async def list_components(ctx: Ctx, center_id: str | None, page: Page) -> dict[str, Any]:
    """The center's components; for a customer, the offers of a center published to it (`offer_row`)."""
    center = await buyable_center(ctx, center_id)
    query = select(Component).where(Component.orgid == center.orgid, Component.cpcid == center.id)
    query = query.order_by(*order_by(SORTABLE, page.sort, [Component.type, Component.model]))
    result = await paged_rows(ctx.session, query, page, lambda c: {"component": c})
    stocks = await _stocks(ctx, [row["component"].id for row in result["rows"]])
    shape = offer_row if ctx.principal.is_customer else component_row
    result["rows"] = [
        {**shape(row["component"], stocks[row["component"].id]), "row_num_": row["row_num_"]} for row in result["rows"]
    ]
    return result


async def component_view(ctx: Ctx, component: Component) -> dict[str, Any]:
    return component_row(component, (await _stocks(ctx, [component.id]))[component.id])


async def add_component(ctx: Ctx, params: Mapping[str, Any]) -> Component:
    ctx.require_admin()
    data = parse(ComponentInput, params)
    await get_center(ctx, data.cpcid)
    cluster = await get_cluster(ctx, data.clusterid)
    if cluster.cpcid != data.cpcid:
        raise InvalidParameter("clusterid", "集群不属于该算力中心")
    existing = await ctx.session.scalar(
        select(Component).where(
            Component.cpcid == data.cpcid, Component.type == data.type, Component.model == data.model
        )
    )
    if existing is not None and data.add_opt != "yes":
        raise Conflict(EXISTS_MESSAGE)
    component = existing or await _new_component(ctx, data)
    await _add_stock(ctx, component, cluster.id, data.stock)
    await _commit_catalog(ctx)
    return component


async def _new_component(ctx: Ctx, data: ComponentInput) -> Component:
    component = Component(
        orgid=ctx.orgid,
        **data.model_dump(include={"cpcid", "type", "model", "resource_unit", "unit_price"}),
        charge_unit=data.charge_unit,
        account_unit=data.account_unit,
    )
    ctx.session.add(component)
    try:
        await ctx.session.flush()
    except IntegrityError:
        await ctx.session.rollback()
        raise Conflict(EXISTS_MESSAGE) from None
    return component


async def _add_stock(ctx: Ctx, component: Component, cluster_id: str, amount: int) -> None:
    # An in-place increment, so that concurrent additions never lose one another.
    added = await matched(
        ctx.session,
        update(ComponentStock)
        .where(ComponentStock.component_id == component.id, ComponentStock.clusterid == cluster_id)
        .values(stock=ComponentStock.stock + amount),
    )
    if added == 0:
        ctx.session.add(ComponentStock(component_id=component.id, clusterid=cluster_id, stock=amount))
    component.update_time = utcnow()


async def _commit_catalog(ctx: Ctx) -> None:
    await ctx.session.commit()
    if ctx.offers:
        ctx.offers.clear()


async def _find_component(ctx: Ctx, params: Mapping[str, Any]) -> Component:
    if params.get("id"):
        component = await get_owned(ctx, Component, params["id"], "id", "算力部件")
        if params.get("cpcid") and params["cpcid"] != component.cpcid:
            raise InvalidParameter("cpcid", "部件不属于该算力中心")
        return component
    center = await get_center(ctx, params.get("cpcid"))
    found = await ctx.session.scalar(
        select(Component).where(
            Component.cpcid == center.id,
            Component.type == str(params.get("type") or ""),
            Component.model == str(params.get("model") or "STANDARD"),
        )
    )
    if found is None:
        raise InvalidParameter("id", "找不到该算力部件 (需要 id,或 cpcid + type + model)")
    return found


async def update_price(ctx: Ctx, params: Mapping[str, Any]) -> Component:
    ctx.require_admin()
    component = await _find_component(ctx, params)
    component.unit_price = parse(PriceUpdate, params).unit_price
    component.update_time = utcnow()
    await _commit_catalog(ctx)
    return component


async def delete_component(ctx: Ctx, params: Mapping[str, Any]) -> Component:
    ctx.require_admin()
    component = await get_owned(ctx, Component, params.get("id"), "id", "算力部件")
    if params.get("cpcid") and params["cpcid"] != component.cpcid:
        raise InvalidParameter("cpcid", "部件不属于该算力中心")
    stocks = (await _stocks(ctx, [component.id]))[component.id]
    if any(stock.consumed for stock, _ in stocks):
        raise Conflict(f"部件 {component.type} {component.model} 仍有实例在使用,不能移除")
    await ctx.session.execute(delete(ComponentStock).where(ComponentStock.component_id == component.id))
    await ctx.session.delete(component)
    await _commit_catalog(ctx)
    return component
