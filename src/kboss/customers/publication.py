"""Which of a provider's centers its customers may buy from: a center is published to every customer
(`Center.published_all`) or to chosen ones (`center_customers`), and to none by default.

Unpublishing stops new orders only: a customer's instances on the center stay theirs to read, renew and delete.
Unpublishing chosen customers from a center published to all turns it into a list of every other customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import delete, select

from kboss.common.context import Ctx
from kboss.customers.service import get_customer, require_provider_admin
from kboss.db.models import ORG_CUSTOMER, Center, CenterCustomer, Org
from kboss.errors import InvalidParameter, NotFound

ALL = "all"


async def publish(ctx: Ctx, center_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    require_provider_admin(ctx)
    center = await _center(ctx, center_id)
    chosen = await _chosen(ctx, params)
    if chosen is None:
        center.published_all = True
    else:
        await _add(ctx, center.id, chosen)
    await ctx.session.commit()
    return await publication(ctx, center.id)


async def unpublish(ctx: Ctx, center_id: str, params: Mapping[str, Any]) -> dict[str, Any]:
    require_provider_admin(ctx)
    center = await _center(ctx, center_id)
    chosen = await _chosen(ctx, params)
    if chosen is None:
        center.published_all = False
        await ctx.session.execute(delete(CenterCustomer).where(CenterCustomer.center_id == center.id))
    else:
        if center.published_all:
            center.published_all = False
            everyone = select(Org.id).where(Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER)
            await _add(ctx, center.id, (await ctx.session.scalars(everyone)).all())
        await ctx.session.execute(
            delete(CenterCustomer).where(CenterCustomer.center_id == center.id, CenterCustomer.customer_id.in_(chosen))
        )
    await ctx.session.commit()
    return await publication(ctx, center.id)


async def publication(ctx: Ctx, center_id: str) -> dict[str, Any]:
    """`{"all": bool, "customers": [{"id", "name"}]}` of one of the caller's centers."""
    require_provider_admin(ctx)
    center = await _center(ctx, center_id)
    query = select(Org.id, Org.name).join(CenterCustomer, CenterCustomer.customer_id == Org.id)
    rows = (await ctx.session.execute(query.where(CenterCustomer.center_id == center.id).order_by(Org.name))).all()
    return {"id": center.id, "all": center.published_all, "customers": [{"id": i, "name": n} for i, n in rows]}


async def _center(ctx: Ctx, center_id: str) -> Center:
    center = await ctx.session.scalar(select(Center).where(Center.id == center_id, Center.orgid == ctx.orgid))
    if center is None:
        raise NotFound(f"算力中心不存在: {center_id}")
    return center


async def _chosen(ctx: Ctx, params: Mapping[str, Any]) -> list[str] | None:
    """None for `"all"`, else the customer ids, each checked to be a customer of the caller's org."""
    customers = params.get("customers")
    if customers == ALL:
        return None
    if not isinstance(customers, list) or not customers or not all(isinstance(c, str) for c in customers):
        raise InvalidParameter("customers", '应为 "all" 或客户组织编号的列表')
    for customer_id in customers:
        await get_customer(ctx, customer_id)
    return list(dict.fromkeys(customers))


async def _add(ctx: Ctx, center_id: str, customers: Sequence[str]) -> None:
    listed = select(CenterCustomer.customer_id).where(CenterCustomer.center_id == center_id)
    present = set((await ctx.session.scalars(listed)).all())
    ctx.session.add_all(CenterCustomer(center_id=center_id, customer_id=org) for org in customers if org not in present)
    await ctx.session.flush()
