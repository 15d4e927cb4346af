"""A worker is removed only when the instances running on it can run elsewhere (`instance_health`).

Checked twice: when the removal is asked for (refused at once, naming the instances and why no other node fits),
and again by the removal's drain step, just before the node is emptied (an instance may have been created or
grown in between). Unforced, a cluster that does not answer refuses too: kboss cannot tell what would break.
Forced, the removal goes on and the stranded instances are marked degraded, so that every read says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.common.context import Ctx
from kboss.crypto import SecretBox
from kboss.db.models import Center, Cluster, Device
from kboss.db.models_instances import Instance
from kboss.errors import Conflict, KbossError
from kboss.instances.health import (
    Stranded,
    instance_product,
    mark_degraded,
    node_at,
    stranded_by_removal,
    stranded_message,
)
from kboss.instances.records import end_reads, kubeconfig_of, site_for, spec_params
from kboss.operations.steps import DeviceAccess, StepContext, StepFailed
from kboss.sites.protocol import Site
from kboss.sites.simulated.site import site_for_center


def _unreadable(cluster: str, problem: str) -> str:
    return (
        f"无法读取集群 {cluster} 的节点和 Pod ({problem}),不能确认节点上的资源实例可以迁移;"
        "恢复后重试,或以 force=1 强制移除"
    )


async def _instances(session: AsyncSession, cluster_id: str) -> list[Instance]:
    query = select(Instance).where(Instance.clusterid == cluster_id).order_by(Instance.created_at, Instance.id)
    return list((await session.scalars(query)).all())


async def _stranded(
    site: Site, kubeconfig: str, machine_ip: str, instances: Sequence[Instance], box: SecretBox
) -> tuple[str, list[Stranded]]:
    """The machine's node name ("" when it is no node of the cluster) and the instances its removal strands."""
    nodes = await site.cluster_nodes(kubeconfig)
    node = node_at(nodes, machine_ip)
    if not node:
        return "", []
    pods = await site.cluster_pods(kubeconfig)
    products = [(instance, instance_product(spec_params(instance, box))) for instance in instances]
    return node, stranded_by_removal(nodes, pods, node, products)


def _detail(stranded: Sequence[Stranded]) -> list[dict[str, Any]]:
    return [
        {"id": s.instance.id, "source_name": s.instance.source_name, "pods": s.pods, "reason": s.why} for s in stranded
    ]


async def refuse_stranding(ctx: Ctx, center: Center, cluster: Cluster, device: Device) -> None:
    """Before an unforced removal is accepted: refuse it when an instance on the worker could run nowhere else,
    or when the cluster cannot tell."""
    instances = await _instances(ctx.session, cluster.id)
    if not instances:
        return
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    try:
        async with site_for(ctx, center, cluster) as site:
            node, stranded = await _stranded(site, kubeconfig, device.ip, instances, ctx.box)
    except KbossError as err:
        raise Conflict(_unreadable(cluster.name, err.message)) from None
    if stranded:
        raise Conflict(stranded_message(node, stranded), data={"instances": _detail(stranded)})


async def guard_drain(ctx: StepContext, device: DeviceAccess) -> None:
    """In the removal's drain step, before the node is emptied: fail (unforced) or mark degraded (forced)."""
    forced = bool(ctx.operation.params.get("force"))
    async with ctx.sessions() as session:
        cluster = await session.get(Cluster, ctx.operation.cluster_id or "")
        center = await session.get(Center, cluster.cpcid) if cluster else None
        instances = await _instances(session, cluster.id) if cluster else []
        if cluster is None or center is None or not instances or not cluster.kubeconfig:
            return
        box = ctx.env.box
        await session.commit()  # no transaction held open while the site answers
        try:
            async with site_for_center(center, box, session, cluster.id) as site:
                kubeconfig = ctx.secret(box.open(cluster.kubeconfig))
                node, stranded = await _stranded(site, kubeconfig, device.ip, instances, box)
        except KbossError as err:
            if not forced:
                raise StepFailed(_unreadable(cluster.name, err.message)) from None
            ctx.log(f"警告: {_unreadable(cluster.name, err.message)}; 强制移除,继续")
            return
        await _settle(ctx, session, node, stranded, forced)


async def _settle(ctx: StepContext, session: AsyncSession, node: str, stranded: list[Stranded], forced: bool) -> None:
    if not stranded:
        ctx.log(f"节点 {node or '(不在集群中)'} 上的资源实例都可以调度到其他节点")
        return
    if not forced:
        raise StepFailed(stranded_message(node, stranded))
    reason = f"工作节点 {node} 已被强制移除 (操作 {ctx.operation.id}),实例的 Pod 无法调度到其他节点"
    await mark_degraded(session, stranded, reason)
    await session.commit()
    ctx.log(f"强制移除: 资源实例标记为降级: {'; '.join(s.text() for s in stranded)}")
