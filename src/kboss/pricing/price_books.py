"""The quote service (the spec's accrual_price): a center's (or one cluster's) price book, read from its
components and what is left of their stock, cached per (org, center, cluster) for a few seconds
(`kboss.common.offer_cache`), and the requested combination priced from it (`kboss.pricing.quotes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from kboss.common.context import Ctx
from kboss.common.published import buyable_center, buyable_cluster
from kboss.db.models import Component, ComponentStock
from kboss.errors import InvalidParameter
from kboss.pricing import quotes


@dataclass(frozen=True)
class Quote:
    """A priced combination: `data` holds the spec's fields (totals, one detail per line, status and message);
    `ok` is False when a line could not be priced (an unknown type or model, short stock), `message` says why."""

    data: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return bool(self.data["status"])

    @property
    def message(self) -> str:
        return str(self.data["message"])


async def quote(ctx: Ctx, params: Mapping[str, Any]) -> Quote:
    request = quotes.parse_request(params)
    center_id, cluster_id = params.get("cpcid"), params.get("clusterid") or None
    # Per buyer: a customer's book is its provider's offers of a center published to it, which the key names.
    key = (ctx.orgid, center_id, cluster_id)
    book = ctx.offers.get(key) if ctx.offers else None
    if book is None:
        book = quotes.PriceBook(await _offers(ctx, center_id, cluster_id))
        if ctx.offers:
            ctx.offers.put(key, book)
    return Quote(book.price(request))


async def _offers(ctx: Ctx, center_id: str | None, cluster_id: str | None) -> list[quotes.Offer]:
    center = await buyable_center(ctx, center_id)
    if cluster_id and (await buyable_cluster(ctx, cluster_id)).cpcid != center.id:
        raise InvalidParameter("clusterid", "集群不属于该算力中心")
    stock_join = ComponentStock.component_id == Component.id
    if cluster_id:
        stock_join &= ComponentStock.clusterid == cluster_id
    query = (
        select(Component, ComponentStock.stock, ComponentStock.consumed)
        .outerjoin(ComponentStock, stock_join)
        .where(Component.cpcid == center.id, Component.orgid == center.orgid)
    )
    available: dict[str, int] = {}
    found: dict[str, Component] = {}
    for component, stock, consumed in (await ctx.session.execute(query)).all():
        found[component.id] = component
        available[component.id] = available.get(component.id, 0) + (stock or 0) - (consumed or 0)
    return [
        quotes.Offer(c.type, c.model, c.unit_price, c.resource_unit, c.charge_unit, c.account_unit, available[c.id])
        for c in found.values()
    ]
