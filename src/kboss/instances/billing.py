"""An instance's order as its owner sees it, and its renewal (`kboss.billing.orders` does the money)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kboss.billing import orders
from kboss.common.context import Ctx
from kboss.errors import NotFound
from kboss.instances.records import get_instance


async def instance_order(ctx: Ctx, instance_id: str) -> dict[str, Any]:
    """The order of an instance the caller may see (a provider's own instances have none: 404)."""
    instance = await get_instance(ctx, instance_id)
    order = await orders.open_order(ctx.session, instance.id)
    if order is None:
        raise NotFound(f"资源实例 {instance.id} 没有订单 (服务商自有的实例不计费)")
    return orders.order_row(order)


async def renew(ctx: Ctx, instance_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """`{"duration", "duration_unit"}` more of a prepaid instance, charged now at today's prices."""
    instance = await get_instance(ctx, instance_id)
    terms = orders.terms_of(params)
    order = await orders.renew(ctx.session, ctx.principal, instance.id, terms)
    await ctx.session.commit()
    return orders.order_row(order)
