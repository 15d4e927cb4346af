"""Building and dismantling clusters: the checks and the start of the four operations, shared by the compat and
native endpoints, and the device reservation. (Draining a node: `kboss.clusters.drain`; the steps of every kind:
`kboss.clusters.plan`; the catalog rows they make true: `kboss.clusters.records`.)

**The device guard.** The engine locks clusters, not machines, so two requests could aim one idle machine at two
clusters. A request therefore *reserves* its machine in the transaction that records the operation: the device
is marked occupied (`OCCUPIED`, `clusterid`, `role`, with a device history row) by a conditional UPDATE that
only an idle device passes, so of two racing requests exactly one wins, on SQLite and on PostgreSQL alike. A new
cluster's row is written up front (`ready=0`), which gives the operation its cluster lock and the device something
to point at.
A reserved device can be neither deleted nor set idle by the catalog endpoints (they refuse devices with a
`clusterid`).

The reservation belongs to the newest create/join operation that names the device. It is released when that
operation fails (at once, by the failing step), or is cancelled or timed out (by `release_abandoned`, which
every cluster request runs first and which the sweeper may run) — not when a worker stops mid-step, since the
operation resumes. The first step a run of a create or join executes checks that the operation still owns the
device and re-takes it if it was released, so a retry resumes on the same machine unless a newer operation took
it meanwhile — then the retry fails naming that operation.
A failed build leaves its cluster row, marked failed (`cluster_states`): a retry needs it; removal deletes it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Text, and_, cast, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.catalog import device_states
from kboss.catalog.centers import get_center
from kboss.catalog.cluster_states import build_state, failed_build_named, mark_failed
from kboss.catalog.clusters import get_cluster
from kboss.catalog.device_states import IDLE, OCCUPIED
from kboss.catalog.devices import get_device
from kboss.clusters.records import count_instances, step_device
from kboss.clusters.removal_guard import refuse_stranding
from kboss.common.context import Ctx
from kboss.common.validation import Input, OptionalDate, check_date_order, parse
from kboss.common.validation import Text as Name
from kboss.db.cas import compare_and_set
from kboss.db.models import Center, Cluster, Device
from kboss.db.models_ops import Operation, OperationStep
from kboss.errors import Conflict, InvalidParameter
from kboss.operations.service import start_operation
from kboss.operations.states import CANCELLED, FAILED, STEP_DONE, TIMED_OUT
from kboss.operations.steps import OperationInfo, StepContext, StepDef, StepFailed, StepOutcome

CREATE, JOIN = "create_cluster", "join_worker"
REMOVE_WORKER, REMOVE_CLUSTER = "remove_worker", "remove_cluster"
DRAIN = "drain_node"
AGENT = "agent"
SIMULATED = "simulated"  # a center marked simulated: the same steps, on the simulated site
RESERVING = (CREATE, JOIN)
# The step whose success makes the reserved device a member: after it, a failure no longer frees the device.
MEMBER_STEP = {CREATE: "fetch_credentials", JOIN: "kubeadm_join"}
ENDED_UNSUCCESSFULLY = (FAILED, CANCELLED, TIMED_OUT)
# Provisioning choices passed through to the site agent, which validates them (none is secret).
PROVISION_OPTIONS = (
    "install_mode", "bundle", "kubernetes_version", "image_repository", "sandbox_image", "gpu",
    "with_device_plugin", "allow_unsupported_os", "advertise_address", "wait_timeout", "token_ttl",
    "flannel_manifest_url", "device_plugin_manifest_url",
)  # fmt: skip
_KUBERNETES = ("0", "kubernetes", "k8s")
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Started:
    operation: Operation
    cluster_id: str
    device_id: str | None
    center_id: str


class CreateClusterInput(Input):
    cpcid: Name
    ctl_nodeid: Name
    cluster_name: Name
    enable_date: OptionalDate = None
    export_date: OptionalDate = None


class WorkerInput(Input):
    cpcid: Name
    clusterid: Name
    worker_nodeid: Name


def backend_for(center: Center) -> str:
    """Explicit, from the center's record: a real center is never played by the simulator, nor the reverse."""
    return SIMULATED if center.simulated else AGENT


def is_forced(params: Mapping[str, Any]) -> bool:
    return str(params.get("force", "")).strip().lower() in _TRUE


def check_cluster_type(params: Mapping[str, Any]) -> None:
    raw = str(params.get("cluster_type", "0")).strip().lower() or "0"
    if raw in ("1", "slurm"):
        raise InvalidParameter("cluster_type", "暂不支持创建 slurm 集群 (1); kboss 目前只构建 kubernetes 集群 (0)")
    if raw not in _KUBERNETES:
        raise InvalidParameter("cluster_type", "应为 0 (kubernetes)")


def provision_options(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(params[k]) for k in PROVISION_OPTIONS if params.get(k) not in (None, "")}


# -- starting operations --------------------------------------------------------------------------------------


async def start_create_cluster(ctx: Ctx, params: Mapping[str, Any]) -> Started:
    ctx.require_admin()
    check_cluster_type(params)
    data = parse(CreateClusterInput, params, {"name": "cluster_name", "device_id": "ctl_nodeid"})
    check_date_order(data.enable_date, data.export_date, "enable_date", "export_date")
    await release_abandoned(ctx.session, ctx.orgid)
    center = await get_center(ctx, data.cpcid)
    device = await _idle_device(ctx, data.ctl_nodeid, center, "ctl_nodeid")
    cluster = await failed_build_named(ctx.session, ctx.orgid, center.id, data.cluster_name) or Cluster(
        orgid=ctx.orgid, cpcid=center.id, name=data.cluster_name, clustertype=0, ready=0, origin="built"
    )
    cluster.enable_date, cluster.export_date = data.enable_date, data.export_date
    op = await _start_reserving(ctx, CREATE, center, cluster, device, {"provision": provision_options(params)})
    return Started(op, cluster.id, device.id, center.id)


async def start_join_worker(ctx: Ctx, params: Mapping[str, Any]) -> Started:
    data, center, cluster = await _worker_request(ctx, params)
    if not cluster.ready or not cluster.controllerid or cluster.origin != "built":
        raise Conflict(f"集群 {cluster.name} 尚未就绪或不是由 kboss 构建的 (没有控制节点记录),不能加入工作节点")
    device = await _idle_device(ctx, data.worker_nodeid, center, "worker_nodeid")
    op = await _start_reserving(ctx, JOIN, center, cluster, device, {"provision": provision_options(params)})
    return Started(op, cluster.id, device.id, center.id)


async def start_remove_worker(ctx: Ctx, params: Mapping[str, Any]) -> Started:
    data, center, cluster = await _worker_request(ctx, params)
    device = await get_device(ctx, data.worker_nodeid, "worker_nodeid")
    if device.clusterid != cluster.id:
        raise Conflict(f"设备 {device.name} 不是集群 {cluster.name} 的节点")
    if device.id == cluster.controllerid or device.role == "master":
        raise Conflict(f"设备 {device.name} 是集群 {cluster.name} 的控制节点,不能单独移除;请移除整个集群")
    force = is_forced(params)
    if not force:
        await refuse_stranding(ctx, center, cluster, device)
    op = await start_operation(
        ctx, REMOVE_WORKER, cluster.id, [device.id], {"force": force}, backend=backend_for(center)
    )
    return Started(op, cluster.id, device.id, center.id)


async def start_remove_cluster(ctx: Ctx, params: Mapping[str, Any]) -> Started:
    ctx.require_admin()
    await release_abandoned(ctx.session, ctx.orgid)
    cluster = await get_cluster(ctx, params.get("id") or params.get("clusterid"), "id")
    center = await get_center(ctx, cluster.cpcid)
    force = is_forced(params)
    instances = await count_instances(ctx.session, cluster.id)
    if instances and not force:
        raise Conflict(f"集群 {cluster.name} 还有 {instances} 个资源实例;请先删除它们,或以 force=1 强制移除")
    master, workers = await cluster_machines(ctx.session, cluster)
    devices = [*master, *workers]
    op_params = {"force": force, "master": master[0] if master else ""}
    op = await start_operation(ctx, REMOVE_CLUSTER, cluster.id, devices, op_params, backend=backend_for(center))
    return Started(op, cluster.id, None, center.id)


async def _worker_request(ctx: Ctx, params: Mapping[str, Any]) -> tuple[WorkerInput, Center, Cluster]:
    """An admin's request about a worker of a cluster: its parameters, center and cluster (abandoned
    reservations are freed first, so that the machine's state is current)."""
    ctx.require_admin()
    data = parse(WorkerInput, params, {"device_id": "worker_nodeid"})
    await release_abandoned(ctx.session, ctx.orgid)
    center = await get_center(ctx, data.cpcid)
    return data, center, await _cluster_in(ctx, data.clusterid, center)


async def _cluster_in(ctx: Ctx, cluster_id: str, center: Center) -> Cluster:
    cluster = await get_cluster(ctx, cluster_id)
    if cluster.cpcid != center.id:
        raise InvalidParameter("clusterid", "集群不属于该算力中心")
    return cluster


async def _idle_device(ctx: Ctx, device_id: str, center: Center, param: str) -> Device:
    device = await get_device(ctx, device_id, param)
    if device.cpcid != center.id:
        raise InvalidParameter(param, "设备不属于该算力中心")
    if device.node_status != IDLE or device.clusterid:
        where = f"属于集群 {device.clusterid}" if device.clusterid else "被标记为占用"
        raise Conflict(f"设备 {device.name} 不是空闲设备 ({where})")
    return device


async def _start_reserving(
    ctx: Ctx, kind: str, center: Center, cluster: Cluster, device: Device, op_params: dict[str, Any]
) -> Operation:
    """Reserve the device and record the operation in one transaction (start_operation commits it)."""
    try:
        ctx.session.add(cluster)  # a new cluster row (or the existing one) first: the device points at its id
        await ctx.session.flush()
        taken = await compare_and_set(
            ctx.session,
            update(Device)
            .where(Device.id == device.id, Device.node_status == IDLE, Device.clusterid.is_(None))
            .values(node_status=OCCUPIED, clusterid=cluster.id, role="master" if kind == CREATE else "worker")
            .execution_options(synchronize_session=False),
        )
        if not taken:
            raise Conflict(f"设备 {device.name} 刚刚被另一个请求占用")
        reason = f"{kind}: 预留给集群 {cluster.id}"  # committed with the operation, or not at all
        device_states.record(ctx.session, device.id, IDLE, OCCUPIED, reason, ctx.principal.username)
        return await start_operation(ctx, kind, cluster.id, [device.id], op_params, backend=backend_for(center))
    except BaseException:
        await ctx.session.rollback()
        raise


async def cluster_machines(session: AsyncSession, cluster: Cluster) -> tuple[list[str], list[str]]:
    """([master device id] or [], worker device ids) of a cluster's devices."""
    rows = (await session.execute(select(Device.id, Device.role).where(Device.clusterid == cluster.id))).all()
    masters = [d for d, role in rows if d == cluster.controllerid or role == "master"]
    master = [cluster.controllerid] if cluster.controllerid in masters else masters[:1]
    return master, sorted(d for d, _ in rows if d not in master)


# -- the reservation ------------------------------------------------------------------------------------------


async def newer_claim(session: AsyncSession, op: Operation | OperationInfo, device_id: str) -> str | None:
    """A create/join operation newer than `op` naming the device (it owns the reservation now), or None."""
    created = select(Operation.created_at).where(Operation.id == op.id).scalar_subquery()
    query = (
        select(Operation.id, Operation.device_ids)
        .where(Operation.orgid == op.orgid, Operation.kind.in_(RESERVING), Operation.id != op.id)
        .where(or_(Operation.created_at > created, and_(Operation.created_at == created, Operation.id > op.id)))
        .where(cast(Operation.device_ids, Text).contains(f'"{device_id}"', autoescape=True))
    )
    return next((op_id for op_id, devices in await session.execute(query) if device_id in devices), None)


# (operation, attempt) whose reservation this process checked. A reservation is only given up when its
# operation fails or ends, and running it again takes a retry, which increments the attempt: one check per
# attempt (and per process, for a run resumed elsewhere after a crash) is enough.
_HELD: OrderedDict[tuple[str, int], None] = OrderedDict()
_HELD_MAX = 4096


async def ensure_reserved(ctx: StepContext, device_id: str, role: str) -> None:
    """Before a create/join step: the device is (again) this operation's, or the step fails."""
    op = ctx.operation
    if (op.id, op.attempt) in _HELD:
        return
    async with ctx.sessions() as session:
        if await session.scalar(select(Cluster.id).where(Cluster.id == op.cluster_id)) is None:
            raise StepFailed(f"集群 {op.cluster_id} 的记录已被删除,不能继续此操作")
        newer = await newer_claim(session, op, device_id)
        if newer is not None:
            raise StepFailed(f"设备 {device_id} 已由更新的操作 {newer} 使用,此操作不能再使用它")
        await _take_again(session, op, device_id, role)
        await session.commit()
    _HELD[(op.id, op.attempt)] = None
    while len(_HELD) > _HELD_MAX:
        _HELD.popitem(last=False)


async def _take_again(session: AsyncSession, op: OperationInfo, device_id: str, role: str) -> None:
    """The device is this operation's cluster's already, or idle and taken again (a retry after a release)."""
    device = update(Device).where(Device.id == device_id, Device.orgid == op.orgid)
    take = device.values(node_status=OCCUPIED, clusterid=op.cluster_id, role=role)
    if await compare_and_set(session, take.where(Device.clusterid == op.cluster_id)):
        return
    if not await compare_and_set(session, take.where(Device.node_status == IDLE, Device.clusterid.is_(None))):
        raise StepFailed(f"设备 {device_id} 已被其他集群占用或已被删除")
    reason = f"{op.kind}: 重新预留给集群 {op.cluster_id}"
    device_states.record(session, device_id, IDLE, OCCUPIED, reason, f"operation {op.id}")


async def release_reservation(session: AsyncSession, op: Operation | OperationInfo, device_id: str) -> bool:
    """Free the device if `op` owns its reservation and never made it a member; the caller commits."""
    if await newer_claim(session, op, device_id) is not None:
        return False
    member = await session.scalar(
        select(OperationStep.id).where(
            OperationStep.operation_id == op.id,
            OperationStep.name == MEMBER_STEP[op.kind],
            OperationStep.state.in_(STEP_DONE),
        )
    )
    if member is not None:
        return False
    freed = await compare_and_set(
        session,
        update(Device)
        .where(Device.id == device_id, Device.clusterid == op.cluster_id)
        .values(node_status=IDLE, clusterid=None)
        .execution_options(synchronize_session=False),
    )
    if freed:
        device_states.record(session, device_id, OCCUPIED, IDLE, f"{op.kind} 未完成: 释放预留", f"operation {op.id}")
    return freed


async def release_abandoned(session: AsyncSession, orgid: str | None = None) -> int:
    """Free the devices of create/join operations that were cancelled, timed out or failed. Commits."""
    reserved = select(Device.id, Device.clusterid).where(Device.node_status == OCCUPIED, Device.clusterid.is_not(None))
    if orgid:
        reserved = reserved.where(Device.orgid == orgid)
    occupied: dict[str, str | None] = {d: c for d, c in await session.execute(reserved)}
    if not occupied:
        return 0
    ended = select(Operation).where(Operation.kind.in_(RESERVING), Operation.state.in_(ENDED_UNSUCCESSFULLY))
    ended = ended.where(Operation.cluster_id.in_(set(occupied.values())))
    freed = 0
    for op in (await session.scalars(ended)).all():
        for device_id in op.device_ids:
            if occupied.get(device_id) == op.cluster_id and await release_reservation(session, op, device_id):
                freed += 1
        if op.kind == CREATE:
            await mark_failed(session, op.cluster_id, op.last_error or f"构建操作 {op.id} 已结束 ({op.state})")
    await session.commit()
    return freed


def reserving(step: StepDef, role: str) -> StepDef:
    """A create/join step that first re-asserts the reservation, and frees the device when it fails."""

    async def run(ctx: StepContext) -> StepOutcome:
        device_id = step_device(ctx)
        await ensure_reserved(ctx, device_id, role)
        await build_state(ctx, None)
        try:
            return await step.run(ctx)
        except Exception as exc:
            # Not on cancellation: that is also how a worker hands a step over on shutdown.
            _HELD.pop((ctx.operation.id, ctx.operation.attempt), None)
            async with ctx.sessions() as session:
                if await release_reservation(session, ctx.operation, device_id):
                    ctx.log(f"设备 {device_id} 已释放 (步骤失败)")
                await session.commit()
            await build_state(ctx, ctx.redacted(f"步骤 {ctx.step} 失败: {exc}"))
            raise

    return replace(step, run=run)
