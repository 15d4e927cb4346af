"""The real steps of the `agent` backend that work on nodes: drain one (`drain_node`), remove a worker
(`remove_worker`), dismantle a cluster (`remove_cluster`).

Every step is idempotent: cordoning a cordoned node or draining an empty one changes nothing, a node already gone
is reported as such, and resetting a reset machine finds nothing to undo. So a step re-run after a crash, or by a
retry, converges. A drain goes through the agent's `node_state_switch` (drain=1), which evicts through the
Eviction API (disruption budgets honoured) and reports every pod it moved, skipped or could not move.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from kboss.clusters import drain as drains
from kboss.clusters import ops
from kboss.clusters.agent_client import (
    DRAIN_SECONDS,
    GONE,
    MARGIN,
    cluster_agent,
    forced,
    machine_form,
    open_agent,
    step_outcome,
)
from kboss.clusters.removal_guard import guard_drain
from kboss.operations.steps import OperationInfo, Registry, StepContext, StepDef, StepFailed, StepOutcome

RESET_SECONDS = 600

# -- drain_node ------------------------------------------------------------------------------------------------


async def cordon_step(ctx: StepContext) -> StepOutcome:
    """Mark the node unschedulable first, so that nothing new lands on it while it is emptied."""
    node = drains.target_node(ctx.operation)
    kubeconfig, agent = await cluster_agent(ctx)
    async with agent:
        answer = await agent.cordon(kubeconfig, node)
    if not answer.ok:
        raise StepFailed(f"禁止调度节点 {node} 失败: {answer.info}")
    ctx.log(f"节点 {node} 已禁止调度")
    return StepOutcome(result={"node": node})


async def evict_step(ctx: StepContext) -> StepOutcome:
    """Evict the node's pods; pods left behind fail the step naming each and why (the node stays cordoned)."""
    node, seconds = drains.target_node(ctx.operation), drains.drain_seconds(ctx.operation)
    kubeconfig, agent = await cluster_agent(ctx)
    ctx.log(f"驱逐节点 {node} 上的 Pod (中断预算最多等待 {seconds} 秒)")
    async with agent:
        answer = await agent.drain(kubeconfig, node, seconds)
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
    device, agent = await open_agent(ctx, ops.step_device(ctx))
    try:
        async with agent:
            facts = await agent.probe(machine_form(device))
    except StepFailed as exc:
        if not forced(ctx):
            raise StepFailed(f"无法登录设备 {device.name} 读取节点名: {exc.message}") from None
        ctx.log(f"警告: 无法登录设备 {device.name} ({exc.message}); 强制移除,跳过排空和删除节点")
        return StepOutcome(result={"node_name": ""})
    name = str(facts.get("hostname") or "").strip().lower()
    ctx.log(f"节点名: {name}")
    return StepOutcome(result={"node_name": name})


async def _cluster_node(ctx: StepContext) -> tuple[str, str]:
    node = str((await ctx.result_of("find_node", ops.step_device(ctx)) or {}).get("node_name") or "")
    _, kubeconfig = await ops.cluster_secrets(ctx)
    return node, kubeconfig


async def drain(ctx: StepContext) -> StepOutcome:
    """Cordon and evict; a failed drain stops the removal (nothing deleted) unless it is forced, as does an instance
    that could run on no other node (`removal_guard`; forced, it is marked degraded)."""
    node, kubeconfig = await _cluster_node(ctx)
    if not node or not kubeconfig:
        return StepOutcome(skipped=True)
    device, agent = await open_agent(ctx, ops.step_device(ctx))
    await guard_drain(ctx, device)
    async with agent:
        answer = await agent.drain(kubeconfig, node)
    drains.log_report(ctx, answer.report)
    if not answer.ok and GONE in answer.info:
        ctx.log(f"节点 {node} 不在集群中")
        return StepOutcome(skipped=True, result={"present": False})
    if not answer.ok and not forced(ctx):
        raise StepFailed(f"排空节点 {node} 失败,未删除节点: {answer.info}。处理后重试,或以 force=1 强制移除")
    ctx.log(f"节点 {node} 已排空" if answer.ok else f"警告: 排空节点 {node} 失败 ({answer.info}); 强制移除,继续")
    return StepOutcome(result={"drained": answer.ok})


async def delete_node(ctx: StepContext) -> StepOutcome:
    node, kubeconfig = await _cluster_node(ctx)
    if not node or not kubeconfig:
        return StepOutcome(skipped=True)
    _, agent = await open_agent(ctx, ops.step_device(ctx))
    async with agent:
        answer = await agent.delete_node(kubeconfig, node, forced(ctx))
    if not answer.ok and GONE in answer.info:
        ctx.log(f"节点 {node} 已不在集群中")
        return StepOutcome(skipped=True, result={"deleted": False})
    if not answer.ok and not forced(ctx):
        raise StepFailed(f"删除节点 {node} 失败: {answer.info}")
    ctx.log(f"节点 {node} 已从集群删除" if answer.ok else f"警告: 删除节点 {node} 失败 ({answer.info}); 强制移除,继续")
    return StepOutcome(result={"deleted": answer.ok})


async def reset_machine(ctx: StepContext) -> StepOutcome:
    """kubeadm reset and CNI cleanup on the machine; an unreachable machine stops the removal unless forced."""
    device, agent = await open_agent(ctx, ops.step_device(ctx))
    try:
        async with agent:
            return step_outcome(await agent.reset(machine_form(device), ctx.log))
    except StepFailed as exc:
        if not forced(ctx):
            raise
        ctx.log(f"警告: 重置设备 {device.name} 失败 ({exc.message}); 强制移除,继续")
        return StepOutcome(result={"reset": False})


async def release_step(ctx: StepContext) -> StepOutcome:
    """This node's device (remove_worker), or every device of the cluster (remove_cluster), back to idle."""
    freed = await ops.release_devices(ctx, [ctx.node] if ctx.node else None)
    ctx.log(f"已释放 {freed} 台设备")
    return StepOutcome(result={"released": freed}, skipped=not freed)


def _master(op: OperationInfo) -> Sequence[str]:
    master = str(op.params.get("master") or "")
    return [master] if master else []


def _workers(op: OperationInfo) -> Sequence[str]:
    return [d for d in op.device_ids if d not in _master(op)]


_per_node = functools.partial(StepDef, per_node=True)


def register_node_kinds(registry: Registry) -> Registry:
    """drain_node, remove_worker and remove_cluster on the `agent` backend."""
    # Steps have one timeout per kind: the evict step's is the longest drain one may ask for. The wait asked for
    # bounds a run (the agent answers when it passes; the HTTP read gives up a minute later), as does the deadline.
    evict_seconds = drains.MAX_DRAIN_SECONDS + MARGIN
    registry.register(ops.DRAIN, [
        StepDef("cordon", cordon_step, 60 + MARGIN),
        StepDef("evict", evict_step, evict_seconds),
    ], backend=ops.AGENT)  # fmt: skip
    drain_seconds = DRAIN_SECONDS + MARGIN
    registry.register(ops.REMOVE_WORKER, [
        _per_node("find_node", find_node, 120 + MARGIN),
        _per_node("drain", drain, drain_seconds),
        _per_node("delete_node", delete_node, drain_seconds),
        _per_node("reset_machine", reset_machine, RESET_SECONDS + MARGIN),
        _per_node("release_device", release_step, 60),
    ], backend=ops.AGENT)  # fmt: skip
    registry.register(ops.REMOVE_CLUSTER, [
        StepDef("check_instances", ops.check_instances, 60),
        _per_node("reset_workers", reset_machine, RESET_SECONDS + MARGIN, nodes=_workers),
        _per_node("reset_master", reset_machine, RESET_SECONDS + MARGIN, nodes=_master),
        StepDef("release_devices", release_step, 60),
        StepDef("delete_records", ops.delete_cluster_records, 60),
    ], backend=ops.AGENT)  # fmt: skip
    return registry
