"""How an instance's pods are doing, and which instances removing a worker would strand.

Health is read from the cluster whenever an instance is read (one pod listing per cluster,
`instance_records.cluster_pods`):
- `running`: every pod of the instance runs (a CronJob between runs, with no pod, too);
- `pending`: some pod waits for a node or is starting; the reason names them and their status;
- `degraded`: a forced worker removal took the node its pods needed (the row's mark, `mark_degraded`), and they do
  not all run again yet; cleared by the next successful update of the instance;
- `unknown`: the cluster did not answer.
An instance reads 就绪 only when it is `ready` and `running` (`instance_records.state_text`).

A worker's removal strands an instance when a pod of it runs on that worker and no other node could take it: the
other nodes' free room (allocatable − what their pods request), labels, taints and GPU models, as the scheduler
judges them (`kboss.kube.capacity`), each placed pod taking its room. `stranded_by_removal` names those instances.

Pure functions over the site's pod and node rows; the calls to the site are the callers' (`instance_records`,
`removal_guard`). Imports no other service.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.db.models_instances import Instance
from kboss.kube import capacity as cap
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.manifests import build_objects
from kboss.kube.requests import scheduler_units
from kboss.kube.workloads import pod_product, pod_template

RUNNING: Final = "running"
PENDING: Final = "pending"
DEGRADED: Final = "degraded"
UNKNOWN: Final = "unknown"
# What a ready instance reads as (`state_text`), by its health.
HEALTH_TEXT: Final = {RUNNING: "就绪", PENDING: "等待调度", DEGRADED: "降级", UNKNOWN: "状态未知"}
_NONE = ("", "<none>", "无")
_FINE = ("Running", "Succeeded", "Completed")
_NO_STANDING_POD = ("CronJob",)  # no pod between its runs: that is not a problem


@dataclass(frozen=True, slots=True)
class Health:
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Stranded:
    instance: Instance
    pods: list[str]
    why: str  # the scheduler's words for the other nodes

    def text(self) -> str:
        return f"{self.instance.source_name} ({self.instance.id}): {', '.join(self.pods)} — {self.why}"


def owns(instance: Instance, pod: Mapping[str, Any]) -> bool:
    """Pods are named after their controller: `<controller>`, `<controller>-0`, `<controller>-<hash>-<id>`."""
    name = str(pod.get("pod_name", ""))
    return pod.get("pod_namespace") == instance.namespace_name and (
        name == instance.podcd_name or name.startswith(f"{instance.podcd_name}-")
    )


def _runs(pod: Mapping[str, Any]) -> bool:
    return pod.get("pod_running") in _FINE and pod.get("pod_node") not in _NONE


def health_of(instance: Instance, pods: Sequence[Mapping[str, Any]] | None) -> Health:
    """The instance's health from the cluster's pod rows (None: the cluster did not answer)."""
    if pods is None:
        return Health(UNKNOWN, "无法读取集群中的 Pod")
    mine = [pod for pod in pods if owns(instance, pod)]
    waiting = [pod for pod in mine if not _runs(pod)]
    if (mine or instance.source_podengine in _NO_STANDING_POD) and not waiting:
        return Health(RUNNING)
    if instance.health == DEGRADED:
        return Health(DEGRADED, instance.health_reason)
    if not mine:
        return Health(PENDING, "集群中没有该实例的 Pod")
    names = ", ".join(f"{pod.get('pod_name')} ({pod.get('pod_running') or '?'})" for pod in waiting)
    return Health(PENDING, f"{len(waiting)}/{len(mine)} 个 Pod 未运行: {names}")


# ---------------------------------------------------------------------------------------------
# Removal


def instance_product(params: Mapping[str, str]) -> cap.Product:
    """One pod of an instance (its agent parameters) as the scheduler sees it, built from the objects kboss
    applies for it."""
    workload = build_objects(InstanceSpec.from_params(dict(params)))[-1]
    template, _ = pod_template(workload)
    return pod_product(template.get("spec") or {}, params.get("id", "pod"))


def node_at(nodes: Iterable[Mapping[str, Any]], ip: str) -> str:
    """The name of the node whose internal address is `ip` ("" when the machine is no node of the cluster)."""
    return next((str(n["node_name"]) for n in nodes if ip and n.get("node_internalip") == ip), "")


def _room(node: Mapping[str, Any]) -> cap.NodeInfo:
    """A node with what is free on it as its allocatable."""
    name = str(node.get("node_name", ""))
    allocatable = scheduler_units(node.get("allocatable") or {}, f"node {name}")
    requested = scheduler_units(node.get("requested") or {}, f"node {name}")
    free = {res: amount - requested.get(res, 0) for res, amount in allocatable.items()}
    free["pods"] = allocatable.get("pods", 110) - int(node.get("pods") or 0)
    taints = tuple(
        cap.Taint(str(t.get("key", "")), str(t.get("value") or ""), str(t.get("effect", "")))
        for t in node.get("taints") or ()
    )
    return cap.NodeInfo(name, free, dict(node.get("labels") or {}), bool(node.get("unschedulable")), taints)


def _take(nodes: list[cap.NodeInfo], product: cap.Product) -> str:
    """Place one pod of `product` on the first node with room, taking that room; its name, or "" when none."""
    for index, node in enumerate(nodes):
        if cap.ClusterSnapshot([node]).placeable(product):
            left = {res: amount - product.requests.get(res, 0) for res, amount in node.allocatable.items()}
            left["pods"] = node.allocatable.get("pods", 0) - 1
            nodes[index] = replace(node, allocatable=left)
            return node.name
    return ""


def stranded_by_removal(
    nodes: Sequence[Mapping[str, Any]],
    pods: Sequence[Mapping[str, Any]],
    node: str,
    products: Sequence[tuple[Instance, cap.Product]],
) -> list[Stranded]:
    """The instances (with one pod of each as a product) that have a pod on `node` which no other node of `nodes`
    could take."""
    others = [_room(n) for n in nodes if n.get("node_name") != node]
    stranded = []
    for instance, product in products:
        moving = [str(p.get("pod_name")) for p in pods if owns(instance, p) and p.get("pod_node") == node]
        if moving and not all([_take(others, product) for _ in moving]):
            why = cap.ClusterSnapshot(others).assess([product])[0].message.rstrip(".")
            stranded.append(Stranded(instance, moving, why))
    return stranded


def stranded_message(node: str, stranded: Sequence[Stranded]) -> str:
    names = "; ".join(item.text() for item in stranded)
    return (
        f"节点 {node} 上的资源实例无法调度到其他节点: {names}。请先删除或缩小这些实例、为集群加入节点,"
        "或以 force=1 强制移除 (这些实例将标记为降级)"
    )


async def mark_degraded(session: AsyncSession, stranded: Sequence[Stranded], reason: str) -> None:
    """Mark stranded instances degraded, in the caller's transaction."""
    ids = [item.instance.id for item in stranded]
    if ids:
        await session.execute(
            update(Instance)
            .where(Instance.id.in_(ids))
            .values(health=DEGRADED, health_reason=reason)
            .execution_options(synchronize_session=False)
        )
