"""The simulated backend's kinds for a simulated center: `SimulatedSite`'s timed, logged steps, each followed by
what it makes true — the catalog rows the agent backend writes (devices, cluster credentials), and, for drains,
the simulated cluster's pods.

Drains act on the simulated site's in-memory cluster (`kboss.sites.simulated.site`, keyed by cluster id), through
the same client the node board reads, so the console shows their effect: DaemonSet pods stay, a pod no controller
owns blocks the drain (unless a removal is forced, which deletes it), the others move or wait Pending. That state
lives in the process's memory: the operation runs in the process that serves the board (`kboss serve`).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from sqlalchemy import select

from kboss.clusters import drain as drains
from kboss.clusters.ops import (
    CREATE,
    DRAIN,
    JOIN,
    REMOVE_CLUSTER,
    REMOVE_WORKER,
    RESERVING,
    check_instances,
    control_plane_recorded,
    delete_cluster_records,
    record_control_plane,
    record_worker,
    release_devices,
    reserving,
    step_device,
)
from kboss.clusters.removal_guard import guard_drain
from kboss.clusters.simulated_plan import BACKEND as SIMULATED
from kboss.clusters.simulated_plan import SimulatedSite
from kboss.db.models import Center, Cluster
from kboss.errors import NotFound
from kboss.operations.steps import Registry, StepContext, StepDef, StepFailed, StepOutcome
from kboss.sites.simulated.site import SimulatedSiteClient, node_name

Domain = Callable[[StepContext], Awaitable[Any]]


def simulated_credentials(address: str) -> tuple[str, str]:
    """A join command and kubeconfig of the right shape for a simulated cluster (nothing answers there)."""
    token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
    join = f"kubeadm join {address}:6443 --token {token} --discovery-token-ca-cert-hash sha256:{secrets.token_hex(32)}"
    kubeconfig = (
        "# 模拟集群 (simulated): no API server answers at this address\napiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: simulated\n  cluster: {{server: 'https://{address}:6443'}}\n"
        "contexts:\n- name: simulated\n  context: {cluster: simulated, user: admin}\ncurrent-context: simulated\n"
        f"users:\n- name: admin\n  user: {{token: {secrets.token_hex(16)}}}\n"
    )
    return join, kubeconfig


async def _simulated_control_plane(ctx: StepContext) -> None:
    device_id = step_device(ctx)
    if not await control_plane_recorded(ctx, device_id):
        device = await ctx.device(device_id)
        await record_control_plane(ctx, device_id, *simulated_credentials(device.ip))


# -- drains on the in-memory cluster ---------------------------------------------------------------------------


@asynccontextmanager
async def _simulated_cluster(ctx: StepContext) -> AsyncIterator[SimulatedSiteClient]:
    """The operation's cluster as the simulated site holds it; refused for a real center."""
    op = ctx.operation
    async with ctx.sessions() as session:
        cluster = await session.scalar(select(Cluster).where(Cluster.id == op.cluster_id, Cluster.orgid == op.orgid))
        if cluster is None:
            raise StepFailed(f"集群 {op.cluster_id} 的记录不存在")
        center = await session.scalar(select(Center).where(Center.id == cluster.cpcid, Center.orgid == op.orgid))
        if center is None or not center.simulated:
            raise StepFailed(f"集群 {cluster.name} 的算力中心不是模拟站点,不能由模拟站点执行")
        yield SimulatedSiteClient(center, session, cluster.id)


async def _drain(ctx: StepContext, node: str, force: bool) -> dict[str, Any]:
    async with _simulated_cluster(ctx) as site:
        report = await site.drain(node, force)
    drains.log_report(ctx, report)
    return report


async def _cordon(ctx: StepContext) -> StepOutcome:
    node = drains.target_node(ctx.operation)
    async with _simulated_cluster(ctx) as site:
        try:
            await site.switch_node("", node, "cordon")
        except NotFound:
            raise StepFailed(f"集群中没有节点 {node}") from None
    ctx.log(f"节点 {node} 已禁止调度")
    return StepOutcome(result={"node": node})


async def _evict(ctx: StepContext) -> StepOutcome:
    node = drains.target_node(ctx.operation)
    try:
        report = await _drain(ctx, node, force=False)
    except NotFound:
        raise StepFailed(f"集群中没有节点 {node}") from None
    if not report["ok"]:
        raise StepFailed(drains.blocked_message(node, report))
    ctx.log(f"节点 {node} 已排空")
    return StepOutcome(result=drains.report_result(report))


async def _drain_worker(ctx: StepContext) -> StepOutcome:
    """remove_worker's drain, by the agent backend's rule: what cannot be evicted stops the removal unless forced."""
    device = await ctx.device(step_device(ctx))
    node = node_name(device.name)
    force = bool(ctx.operation.params.get("force"))
    await guard_drain(ctx, device)
    try:
        report = await _drain(ctx, node, force)
    except NotFound:
        ctx.log(f"节点 {node} 不在集群中")
        return StepOutcome(skipped=True, result={"present": False})
    if not report["ok"]:
        pods = drains.left_behind(report)
        raise StepFailed(f"排空节点 {node} 失败,未删除节点: {pods}。处理后重试,或以 force=1 强制移除")
    ctx.log(f"节点 {node} 已排空" + (f" (强制: 删除了 {len(report['deleted'])} 个 Pod)" if report["deleted"] else ""))
    return StepOutcome(result=drains.report_result(report))


SIMULATED_DOMAIN: dict[tuple[str, str], Domain] = {
    (CREATE, "fetch_credentials"): _simulated_control_plane,
    (JOIN, "kubeadm_join"): lambda ctx: record_worker(ctx, step_device(ctx)),
    (REMOVE_WORKER, "drain"): _drain_worker,
    (REMOVE_WORKER, "release_device"): lambda ctx: release_devices(ctx, [step_device(ctx)]),
    (REMOVE_CLUSTER, "release_devices"): release_devices,
    (REMOVE_CLUSTER, "delete_records"): delete_cluster_records,
    (DRAIN, "cordon"): _cordon,
    (DRAIN, "evict"): _evict,
}


def _then(step: StepDef, domain: Domain) -> StepDef:
    """The played step (its time, log and faults), then what it makes true; a domain that reports its own outcome
    (a drain: what moved, or why it could not) is the step's outcome."""

    async def run(ctx: StepContext) -> StepOutcome:
        outcome = await step.run(ctx)
        done = await domain(ctx)
        return done if isinstance(done, StepOutcome) else outcome

    return replace(step, run=run)


def register_simulated_steps(registry: Registry, site: SimulatedSite) -> Registry:
    """The simulated site's kinds, with the catalog rows written as the agent backend writes them."""
    played = site.registry(Registry())
    for kind in (CREATE, JOIN, REMOVE_WORKER, REMOVE_CLUSTER, DRAIN):
        kind_def = played.get(SIMULATED, kind)
        assert kind_def is not None
        steps = [_then(s, SIMULATED_DOMAIN[(kind, s.name)]) if (kind, s.name) in SIMULATED_DOMAIN else s
                 for s in kind_def.steps]  # fmt: skip
        if kind == REMOVE_CLUSTER:
            steps.insert(0, StepDef("check_instances", check_instances, 60))
        if kind in RESERVING:
            steps = [reserving(s, "master" if kind == CREATE else "worker") for s in steps]
        registry.register(kind, steps, backend=SIMULATED, resume_after_crash=kind_def.resume_after_crash)
    return registry
