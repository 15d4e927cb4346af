"""What a caller may buy from: its own org's centers and clusters (a provider), or those its provider published to
it (a customer; `kboss.customers.publication`). Everything else does not exist for the caller (NotFound), exactly
as another org's rows do for `get_owned`.

Used by every buying read and order (offers, quotes, capacity, GPU stock, instances); the provider's management
paths keep `get_owned`, so a customer never reaches devices, kubeconfigs, join commands or boards.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select

from kboss.common.context import Ctx, Principal
from kboss.db.models import Center, CenterCustomer, Cluster
from kboss.errors import MissingParameter, NotFound


def visible_centers(principal: Principal) -> ColumnElement[bool]:
    """The centers a caller may see: its org's own, or for a customer those its provider published to it."""
    if not principal.is_customer:
        return Center.orgid == principal.orgid
    chosen = exists().where(CenterCustomer.center_id == Center.id, CenterCustomer.customer_id == principal.orgid)
    return (Center.orgid == principal.catalog_orgid) & or_(Center.published_all, chosen)


async def buyable_center(ctx: Ctx, center_id: str | None, param: str = "cpcid") -> Center:
    if not center_id:
        raise MissingParameter(param)
    query = select(Center).where(Center.id == str(center_id), visible_centers(ctx.principal))
    center = await ctx.session.scalar(query)
    if center is None:
        raise NotFound(f"算力中心不存在: {center_id}")
    return center


async def buyable_cluster(ctx: Ctx, cluster_id: str | None, param: str = "clusterid") -> Cluster:
    """A cluster of a center the caller may buy from."""
    if not cluster_id:
        raise MissingParameter(param)
    query = (
        select(Cluster)
        .join(Center, Center.id == Cluster.cpcid)
        .where(Cluster.id == str(cluster_id), Cluster.orgid == Center.orgid, visible_centers(ctx.principal))
    )
    cluster = await ctx.session.scalar(query)
    if cluster is None:
        raise NotFound(f"算力集群不存在: {cluster_id}")
    return cluster
