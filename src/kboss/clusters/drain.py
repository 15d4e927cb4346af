"""Draining a node: the `drain_node` operation's start, its parameters, and how its steps report a drain.

A drain is an operation (DESIGN.md §5), not a blocking call: it takes the cluster's lock like the other kinds, so
it never runs beside a build or a removal of the same cluster, and a second drain there is refused while one runs.
Its target is a Kubernetes node *name*, stored as a parameter: a node of an imported cluster need not be a kboss
device. Steps: `cordon`, then `evict` (`kboss.clusters.nodes`, the same for a site agent and a simulated
center). A drain that leaves pods behind fails naming each pod and why, and leaves the node cordoned, as
`kubectl drain` does; a retry runs `evict` again.

**No force.** What blocks a drain is a disruption budget (whose point is to be honoured) or a pod no controller
owns — for kboss, a Standalone instance, which a forced drain would delete while its record and its stock stay.
Delete that instance first, or remove the worker with force (`remove_worker`), which is meant to destroy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kboss.clusters import ops
from kboss.common.context import Ctx
from kboss.errors import InvalidParameter
from kboss.instances.boards import require_node
from kboss.instances.records import end_reads, find_owned_cluster, kubeconfig_of, site_for
from kboss.kube.nodes import validate_node_name
from kboss.operations.service import start_operation
from kboss.operations.states import DEFAULT_TIMEOUTS
from kboss.operations.steps import OperationInfo, StepContext

# How long the evictions may take (disruption budgets answer "not now" until other pods are ready): the agent's
# own default, and its maximum.
DRAIN_SECONDS = 300
MAX_DRAIN_SECONDS = 3600
_REPORTED = 50  # pods named per list in a step's log and result


def drain_seconds_of(value: Any) -> int:
    if value in (None, ""):
        return DRAIN_SECONDS
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_DRAIN_SECONDS:
        raise InvalidParameter("timeout_seconds", f"应为 1 到 {MAX_DRAIN_SECONDS} 的整数秒数")
    return int(text)


def _refuse_force(value: Any) -> None:
    if value in (None, False, "", "0", "false"):
        return
    raise InvalidParameter(
        "force",
        "排空节点不支持强制: 无法驱逐的 Pod (中断预算保护的,或不受控制器管理的独立实例) 不会被删除;"
        "请先删除该实例,或以强制方式移除工作节点",
    )


async def start_drain_node(ctx: Ctx, cluster_id: str, node: str, params: Mapping[str, Any]) -> ops.Started:
    """Check everything (node name, timeout, the node is in the cluster), then record the operation (202)."""
    ctx.require_admin()
    name = validate_node_name(node, "node")
    seconds = drain_seconds_of(params.get("timeout_seconds"))
    _refuse_force(params.get("force"))
    await ops.release_abandoned(ctx.session, ctx.orgid)
    center, cluster = await find_owned_cluster(ctx, None, cluster_id)
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    async with site_for(ctx, center, cluster) as site:
        await require_node(site, kubeconfig, cluster.name, name)
    op_params = {"node": name, "drain_seconds": seconds}
    timeout = DEFAULT_TIMEOUTS[ops.DRAIN] + seconds
    backend = ops.backend_for(center)
    op = await start_operation(ctx, ops.DRAIN, cluster.id, [], op_params, timeout, backend=backend)
    return ops.Started(op, cluster.id, None, center.id)


# -- what the node steps share -----------------------------------------------------------------------


def target_node(op: OperationInfo) -> str:
    return str(op.params.get("node") or "")


def drain_seconds(op: OperationInfo) -> int:
    return int(op.params.get("drain_seconds") or DRAIN_SECONDS)


def _pods(items: Any) -> list[str]:
    return [str(item.get("pod") if isinstance(item, dict) else item) for item in items or []]


def log_report(ctx: StepContext, report: Mapping[str, Any]) -> None:
    """The drain's report in the operation's log: what moved, what was left alone, what blocked it and why."""
    for word, key in (("已驱逐", "evicted"), ("已删除", "deleted")):
        for pod in _pods(report.get(key))[:_REPORTED]:
            ctx.log(f"{word} {pod}")
    for word, key in (("跳过", "skipped"), ("无法驱逐", "failed")):
        for item in (report.get(key) or [])[:_REPORTED]:
            if isinstance(item, dict):
                ctx.log(f"{word} {item.get('pod')}: {item.get('reason')}")


def left_behind(report: Mapping[str, Any]) -> str:
    """`ns/pod (why); ...` of the pods a drain could not move, or "" when it emptied the node."""
    failed = [item for item in report.get("failed") or [] if isinstance(item, dict)]
    text = "; ".join(f"{item.get('pod')} ({item.get('reason')})" for item in failed[:_REPORTED])
    return text + (f"; 另有 {len(failed) - _REPORTED} 个" if len(failed) > _REPORTED else "")


def blocked_message(node: str, report: Mapping[str, Any]) -> str:
    failed = len(report.get("failed") or [])
    return (
        f"节点 {node} 未能排空: {failed} 个 Pod 无法驱逐: {left_behind(report)}。"
        f"已驱逐 {len(report.get('evicted') or [])} 个 Pod;节点保持禁止调度。"
        "处理这些 Pod 后重试 (不受控制器管理的独立实例需先删除),或恢复调度"
    )


def report_result(report: Mapping[str, Any]) -> dict[str, Any]:
    """A step's stored result (pod names are not secret): counts, and the names of the pods evicted."""
    return {
        "node": str(report.get("node") or ""),
        "evicted": _pods(report.get("evicted"))[:_REPORTED],
        "deleted": _pods(report.get("deleted"))[:_REPORTED],
        "skipped": len(report.get("skipped") or []),
    }
