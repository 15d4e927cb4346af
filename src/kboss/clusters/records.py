"""The catalog rows the cluster operations' steps make true, each write idempotent: the cluster's credentials
(sealed with the secret box), its controller and readiness, which devices are its members, and, when a cluster is
dismantled, its records. A device leaving or joining a cluster gets a history row (`kboss.catalog.device_states`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.catalog import device_states
from kboss.catalog.device_states import IDLE, OCCUPIED
from kboss.db.cas import matched
from kboss.db.models import Cluster, ComponentStock, Device
from kboss.db.models_instances import Instance
from kboss.operations.steps import StepContext, StepFailed, StepOutcome


def step_device(ctx: StepContext) -> str:
    """The device a per-node step works on (a single-device operation's device for a cluster-level one)."""
    return ctx.node or ctx.operation.device_ids[0]


def actor(ctx: StepContext) -> str:
    return f"operation {ctx.operation.id}"


async def count_instances(session: AsyncSession, cluster_id: str) -> int:
    query = select(func.count()).select_from(Instance).where(Instance.clusterid == cluster_id)
    return int(await session.scalar(query) or 0)


async def _cluster_row(session: AsyncSession, ctx: StepContext) -> Cluster:
    op = ctx.operation
    cluster = await session.scalar(select(Cluster).where(Cluster.id == op.cluster_id, Cluster.orgid == op.orgid))
    if cluster is None:
        raise StepFailed(f"集群 {op.cluster_id} 的记录不存在")
    return cluster


async def _set_member(session: AsyncSession, ctx: StepContext, device_id: str, role: str) -> None:
    """The device is a member of the operation's cluster (it was reserved for it: occupied already, as a rule)."""
    op = ctx.operation
    mine = (Device.id == device_id, Device.orgid == op.orgid)
    if await matched(session, update(Device).where(*mine, Device.node_status == IDLE).values(node_status=OCCUPIED)):
        device_states.record(session, device_id, IDLE, OCCUPIED, f"成为集群 {op.cluster_id} 的 {role}", actor(ctx))
    await session.execute(update(Device).where(*mine).values(clusterid=op.cluster_id, role=role))


async def control_plane_recorded(ctx: StepContext, device_id: str) -> bool:
    async with ctx.sessions() as session:
        c = await _cluster_row(session, ctx)
        return bool(c.ready == 1 and c.controllerid == device_id and c.clusterjoin and c.kubeconfig)


async def record_control_plane(ctx: StepContext, device_id: str, join: str, kubeconfig: str) -> None:
    """The cluster is built: credentials (encrypted), controller, ready; its master device is a member."""
    box = ctx.env.box
    async with ctx.sessions() as session:
        cluster = await _cluster_row(session, ctx)
        cluster.clusterjoin, cluster.kubeconfig = box.seal(join), box.seal(kubeconfig)
        cluster.controllerid, cluster.ready, cluster.state, cluster.state_reason = device_id, 1, "ready", None
        await _set_member(session, ctx, device_id, "master")
        await session.commit()


async def store_join_command(ctx: StepContext, join: str) -> None:
    async with ctx.sessions() as session:
        (await _cluster_row(session, ctx)).clusterjoin = ctx.env.box.seal(join)
        await session.commit()


async def cluster_secrets(ctx: StepContext) -> tuple[str, str]:
    """(join command, kubeconfig) of the operation's cluster, decrypted and masked in the step's output."""
    async with ctx.sessions() as session:
        cluster = await _cluster_row(session, ctx)
    box = ctx.env.box
    join = ctx.secret(box.open(cluster.clusterjoin)) if cluster.clusterjoin else ""
    return join, ctx.secret(box.open(cluster.kubeconfig)) if cluster.kubeconfig else ""


async def record_worker(ctx: StepContext, device_id: str) -> None:
    async with ctx.sessions() as session:
        await _cluster_row(session, ctx)
        await _set_member(session, ctx, device_id, "worker")
        await session.commit()


async def release_devices(ctx: StepContext, device_ids: Sequence[str] | None = None) -> int:
    """Devices of the operation's cluster (all, or those listed) back to idle, their cluster cleared."""
    op = ctx.operation
    members = select(Device.id, Device.node_status).where(Device.clusterid == op.cluster_id, Device.orgid == op.orgid)
    if device_ids is not None:
        members = members.where(Device.id.in_(device_ids))
    async with ctx.sessions() as session:
        released = 0
        for device_id, status in (await session.execute(members)).all():
            freed = update(Device).where(Device.id == device_id, Device.clusterid == op.cluster_id)
            if await matched(session, freed.values(node_status=IDLE, clusterid=None)):
                released += 1
                if status != IDLE:
                    reason = f"离开集群 {op.cluster_id}"
                    device_states.record(session, device_id, status, IDLE, reason, actor(ctx))
        await session.commit()
    return released


async def check_instances(ctx: StepContext) -> StepOutcome:
    """Re-checked when the removal runs: an instance may have been created since it was requested."""
    async with ctx.sessions() as session:
        count = await count_instances(session, str(ctx.operation.cluster_id))
    if count and not ctx.operation.params.get("force"):
        raise StepFailed(f"集群还有 {count} 个资源实例;请先删除它们,或以 force=1 强制移除")
    ctx.log(f"资源实例: {count}" + (" (强制移除,将一并删除其记录)" if count else ""))
    return StepOutcome(result={"instances": count})


async def delete_cluster_records(ctx: StepContext) -> StepOutcome:
    """The cluster row, its component stock rows and (forced removal) its instance rows."""
    cluster_id = ctx.operation.cluster_id
    async with ctx.sessions() as session:
        if await session.scalar(select(Cluster.id).where(Cluster.id == cluster_id)) is None:
            return StepOutcome(skipped=True)
        if await count_instances(session, str(cluster_id)):
            if not ctx.operation.params.get("force"):
                raise StepFailed("集群还有资源实例,未强制移除")
            await session.execute(delete(Instance).where(Instance.clusterid == cluster_id))
        await session.execute(delete(ComponentStock).where(ComponentStock.clusterid == cluster_id))
        await session.execute(delete(Cluster).where(Cluster.id == cluster_id))
        await session.commit()
    ctx.log(f"已删除集群 {cluster_id} 的记录及其部件库存")
    return StepOutcome(result={"deleted": cluster_id})
