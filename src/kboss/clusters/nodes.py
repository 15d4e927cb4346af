"""The steps that work on nodes through the center's site: drain one (`drain_node`), remove a worker
(`remove_worker`), dismantle a cluster (`remove_cluster`).

Every step is idempotent: cordoning a cordoned node or draining an empty one changes nothing, a node already gone
is reported as such (the site's `not_found` code), and resetting a reset machine finds nothing to undo. So a step
re-run after a crash, or by a retry, converges. A drain evicts through the Eviction API (disruption budgets
honoured) and reports every pod it moved, skipped or could not move. Which steps, with which timeouts:
`kboss.clusters.plan`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kboss.clusters import drain as drains
from kboss.clusters import records
from kboss.clusters.removal_guard import guard_drain
from kboss.clusters.site_access import cluster_site, forced, machine_form, open_site, step_outcome
from kboss.errors import KbossError, NotFound
from kboss.operations.steps import StepContext, StepFailed, StepOutcome
from kboss.sites.protocol import NodeAnswer, Site

# -- drain_node ------------------------------------------------------------------------------------------------


async def cordon_step(ctx: StepContext) -> StepOutcome:
    """Mark the node unschedulable first, so that nothing new lands on it while it is emptied."""
    node = drains.target_node(ctx.operation)
    async with cluster_site(ctx) as (kubeconfig, site):
        answer = await site.cordon(kubeconfig, node)
    if not answer.ok:
        raise StepFailed(f"禁止调度节点 {node} 失败: {answer.info}")
    ctx.log(f"节点 {node} 已禁止调度")
    return StepOutcome(result={"node": node})


async def evict_step(ctx: StepContext) -> StepOutcome:
    """Evict the node's pods; pods left behind fail the step naming each and why (the node stays cordoned)."""
    node, seconds = drains.target_node(ctx.operation), drains.drain_seconds(ctx.operation)
    ctx.log(f"驱逐节点 {node} 上的 Pod (中断预算最多等待 {seconds} 秒)")
    async with cluster_site(ctx) as (kubeconfig, site):
        answer = await site.drain(kubeconfig, node, seconds)
    drains.log_report(ctx, answer.report)
    if not answer.ok and answer.report.get("failed"):
        raise StepFailed(drains.blocked_message(node, answer.report))
    if not answer.ok:
        raise StepFailed(f"排空节点 {node} 失败: {answer.info}")
    ctx.log(f"节点 {node} 已排空")
    return StepOutcome(result=drains.report_result(answer.report))


# -- remove_worker and remove_cluster -------------------------------------------------------------------------


async def find_node(ctx: StepContext) -> StepOutcome:
    """The machine's Kubernetes node name: its host name, lower-cased, as the provisioning scripts use it."""
    device = await ctx.device(records.step_device(ctx))
    try:
        async with open_site(ctx, device.cpcid) as site:
            facts = await site.probe(device.ip, device.port, device.user, device.password, device.ssh_key)
    except KbossError as exc:
        if not forced(ctx):
            raise StepFailed(f"无法登录设备 {device.name} 读取节点名: {exc.message}") from None
        ctx.log(f"警告: 无法登录设备 {device.name} ({exc.message}); 强制移除,跳过排空和删除节点")
        return StepOutcome(result={"node_name": ""})
    name = str(facts.get("hostname") or "").strip().lower()
    ctx.log(f"节点名: {name}")
    return StepOutcome(result={"node_name": name})


NodeCall = Callable[[Site, str, str], Awaitable[NodeAnswer]]


async def _on_node(ctx: StepContext, call: NodeCall) -> tuple[str, NodeAnswer] | None:
    """`call(site, kubeconfig, node)` on the node `find_node` named, or None when there is none to act on (a
    forced removal of a machine that could not be reached, a cluster never built)."""
    node = str((await ctx.result_of("find_node", records.step_device(ctx)) or {}).get("node_name") or "")
    _, kubeconfig = await records.cluster_secrets(ctx)  # read once: the site call below takes it as it is
    cluster = await ctx.cluster()
    if not node or not kubeconfig or cluster is None:
        return None
    async with open_site(ctx, cluster.cpcid) as site:
        return node, await call(site, kubeconfig, node)


@dataclass(frozen=True)
class _Words:
    """How a node call of a removal is told: {node} and the site's {info} are filled in."""

    gone: str  # the node is not (or no longer) in the cluster: nothing to do
    gone_result: Mapping[str, Any]
    refused: str  # it failed and the removal is not forced: it stops here
    done: str
    forced_on: str  # it failed, and the forced removal goes on


DRAIN_WORDS = _Words(
    "节点 {node} 不在集群中", {"present": False},
    "排空节点 {node} 失败,未删除节点: {info}。处理后重试,或以 force=1 强制移除",
    "节点 {node} 已排空", "警告: 排空节点 {node} 失败 ({info}); 强制移除,继续",
)  # fmt: skip
DELETE_WORDS = _Words(
    "节点 {node} 已不在集群中", {"deleted": False}, "删除节点 {node} 失败: {info}",
    "节点 {node} 已从集群删除", "警告: 删除节点 {node} 失败 ({info}); 强制移除,继续",
)  # fmt: skip


def _settled(ctx: StepContext, node: str, answer: NodeAnswer, words: _Words) -> StepOutcome | None:
    """The outcome when the node was gone; raises when the call failed unforced; else None, after saying so."""
    if not answer.ok and answer.code == NotFound.code:
        ctx.log(words.gone.format(node=node))
        return StepOutcome(skipped=True, result=dict(words.gone_result))
    if not answer.ok and not forced(ctx):
        raise StepFailed(words.refused.format(node=node, info=answer.info))
    ctx.log((words.done if answer.ok else words.forced_on).format(node=node, info=answer.info))
    return None


async def drain(ctx: StepContext) -> StepOutcome:
    """Cordon and evict; a failed drain stops the removal (nothing deleted) unless it is forced, as does an instance
    that could run on no other node (`removal_guard`; forced, it is marked degraded)."""

    async def guarded(site: Site, kubeconfig: str, node: str) -> NodeAnswer:
        await guard_drain(ctx, await ctx.device(records.step_device(ctx)))
        return await site.drain(kubeconfig, node, drains.DRAIN_SECONDS, forced(ctx))

    called = await _on_node(ctx, guarded)
    if called is None:
        return StepOutcome(skipped=True)
    node, answer = called
    drains.log_report(ctx, answer.report)
    settled = _settled(ctx, node, answer, DRAIN_WORDS)
    return settled or StepOutcome(result={"drained": answer.ok, **drains.report_result(answer.report)})


async def delete_node(ctx: StepContext) -> StepOutcome:
    called = await _on_node(ctx, lambda site, kc, node: site.delete_node(kc, node, forced(ctx)))
    if called is None:
        return StepOutcome(skipped=True)
    node, answer = called
    return _settled(ctx, node, answer, DELETE_WORDS) or StepOutcome(result={"deleted": answer.ok})


async def reset_machine(ctx: StepContext) -> StepOutcome:
    """kubeadm reset and CNI cleanup on the machine; an unreachable machine stops the removal unless forced."""
    device = await ctx.device(records.step_device(ctx))
    try:
        async with open_site(ctx, device.cpcid) as site:
            return step_outcome(await site.reset(machine_form(device), ctx.log))
    except KbossError as exc:
        if not forced(ctx):
            raise
        ctx.log(f"警告: 重置设备 {device.name} 失败 ({exc.message}); 强制移除,继续")
        return StepOutcome(result={"reset": False})


async def release_step(ctx: StepContext) -> StepOutcome:
    """This node's device (remove_worker), or every device of the cluster (remove_cluster), back to idle."""
    freed = await records.release_devices(ctx, [ctx.node] if ctx.node else None)
    ctx.log(f"已释放 {freed} 台设备")
    return StepOutcome(result={"released": freed}, skipped=not freed)
