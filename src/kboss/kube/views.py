"""Rows of `kubectl get pods -A -o wide` and `kubectl get nodes -o wide`, computed from API objects.

The spec's get_cluster_pods / get_cluster_nodes answers used to be scraped from kubectl's text; here they
are computed from the objects with kubectl's own rules (`pkg/printers/internalversion/printers.go`:
printPod, printNode, findNodeRoles), so they read the same: STATUS reasons such as `ImagePullBackOff`,
`Init:0/1` or `Terminating`, RESTARTS such as `3 (5m ago)`, `<none>` where kubectl prints it.
The row functions are pure (the caller passes `now`); `list_*` fetch and map.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict

from lightkube import ALL_NS, AsyncClient
from lightkube.models.core_v1 import Container, ContainerStatus, PodCondition
from lightkube.resources.core_v1 import Node, Pod

from kboss.kube.ages import age
from kboss.kube.client import api_errors

NONE = "<none>"
_ROLE_PREFIX = "node-role.kubernetes.io/"
_LEGACY_ROLE_LABEL = "kubernetes.io/role"
_NODE_UNREACHABLE_REASON = "NodeLost"


class PodRow(TypedDict):
    pod_namespace: str
    pod_name: str
    pod_ready: str
    pod_running: str
    pod_restart: str
    pod_age: str
    pod_ip: str
    pod_node: str
    pod_nominated_node: str
    pod_readiness_gates: str


class NodeRow(TypedDict):
    node_name: str
    node_status: str
    node_role: str
    node_age: str
    node_version: str
    node_internalip: str
    node_externalip: str
    node_osversion: str
    node_kernelversion: str
    node_containeruntime: str


class NodeDetails(NodeRow):
    """A node row plus what schedulers and operators need: labels, resources, cordon, taints."""

    ready: bool
    unschedulable: bool
    labels: dict[str, str]
    capacity: dict[str, str]
    allocatable: dict[str, str]
    taints: list[dict[str, str]]


# ---------------------------------------------------------------------------------------------
# Pods


@dataclass
class _PodSummary:
    """The mutable state printPod threads through its loops."""

    reason: str
    ready: int = 0
    total: int = 0
    restarts: int = 0
    last_restart: datetime | None = None


def pod_row(pod: Pod, now: datetime) -> PodRow:
    """One row of `kubectl get pods -A -o wide` (printPod with `options.Wide`)."""
    meta, spec, status = pod.metadata, pod.spec, pod.status
    summary = summarize_pod(pod)
    restarts = str(summary.restarts)
    if summary.restarts and summary.last_restart is not None:
        restarts = f"{summary.restarts} ({age(summary.last_restart, now)} ago)"
    pod_ips = (status.podIPs if status else None) or []
    return PodRow(
        pod_namespace=(meta.namespace if meta else None) or "default",
        pod_name=(meta.name if meta else None) or "",
        pod_ready=f"{summary.ready}/{summary.total}",
        pod_running=summary.reason,
        pod_restart=restarts,
        pod_age=age(meta.creationTimestamp if meta else None, now),
        pod_ip=(pod_ips[0].ip if pod_ips else None) or NONE,
        pod_node=(spec.nodeName if spec else None) or NONE,
        pod_nominated_node=(status.nominatedNodeName if status else None) or NONE,
        pod_readiness_gates=_readiness_gates(pod),
    )


def summarize_pod(pod: Pod) -> _PodSummary:
    """READY counts, STATUS reason and RESTARTS exactly as kubectl's printPod derives them."""
    status = pod.status
    phase = (status.phase if status else None) or ""
    summary = _PodSummary(reason=(status.reason if status else None) or phase)
    conditions = (status.conditions if status else None) or []
    if any(c.type == "PodScheduled" and c.reason == "SchedulingGated" for c in conditions):
        summary.reason = "SchedulingGated"
    init_specs = {c.name: c for c in ((pod.spec.initContainers if pod.spec else None) or [])}
    summary.total = len(pod.spec.containers if pod.spec else []) + sum(
        1 for c in init_specs.values() if _restartable(c)
    )
    initializing, sidecar_restarts, sidecar_last = _summarize_init(pod, init_specs, summary)
    if not initializing or _condition_true(conditions, "Initialized"):
        # Plain init containers' restarts no longer count once the pod is initialized; sidecars' do.
        summary.restarts, summary.last_restart = sidecar_restarts, sidecar_last
        _summarize_containers(pod, summary, conditions)
    meta = pod.metadata
    if meta is not None and meta.deletionTimestamp is not None:
        if status is not None and status.reason == _NODE_UNREACHABLE_REASON:
            summary.reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            summary.reason = "Terminating"
    return summary


def _summarize_init(
    pod: Pod, init_specs: dict[str, Container], summary: _PodSummary
) -> tuple[bool, int, datetime | None]:
    """The init-container loop; returns (initializing, sidecar restarts, last sidecar restart)."""
    statuses = (pod.status.initContainerStatuses if pod.status else None) or []
    sidecar_restarts, sidecar_last = 0, None
    for index, cs in enumerate(statuses):
        finished = _last_termination(cs)
        summary.restarts += cs.restartCount
        summary.last_restart = _later(summary.last_restart, finished)
        sidecar = _restartable(init_specs.get(cs.name))
        if sidecar:
            sidecar_restarts += cs.restartCount
            sidecar_last = _later(sidecar_last, finished)
        terminated = cs.state.terminated if cs.state else None
        if terminated is not None and terminated.exitCode == 0:
            continue
        if sidecar and cs.started:
            summary.ready += 1 if cs.ready else 0
            continue
        summary.reason = _init_reason(cs, index, len(init_specs))
        return True, sidecar_restarts, sidecar_last
    return False, sidecar_restarts, sidecar_last


def _init_reason(cs: ContainerStatus, index: int, init_count: int) -> str:
    terminated = cs.state.terminated if cs.state else None
    waiting = cs.state.waiting if cs.state else None
    if terminated is not None:
        if terminated.reason:
            return "Init:" + terminated.reason
        if terminated.signal:
            return f"Init:Signal:{terminated.signal}"
        return f"Init:ExitCode:{terminated.exitCode}"
    if waiting is not None and waiting.reason and waiting.reason != "PodInitializing":
        return "Init:" + waiting.reason
    return f"Init:{index}/{init_count}"


def _summarize_containers(pod: Pod, summary: _PodSummary, conditions: list[PodCondition]) -> None:
    has_running = False
    # kubectl walks the statuses backwards, so the first container's reason is the one that shows.
    for cs in reversed((pod.status.containerStatuses if pod.status else None) or []):
        summary.restarts += cs.restartCount
        summary.last_restart = _later(summary.last_restart, _last_termination(cs))
        state = cs.state
        waiting = state.waiting if state else None
        terminated = state.terminated if state else None
        if waiting is not None and waiting.reason:
            summary.reason = waiting.reason
        elif terminated is not None and terminated.reason:
            summary.reason = terminated.reason
        elif terminated is not None:
            code = f"Signal:{terminated.signal}" if terminated.signal else f"ExitCode:{terminated.exitCode}"
            summary.reason = code
        elif cs.ready and state is not None and state.running is not None:
            has_running = True
            summary.ready += 1
    if summary.reason == "Completed" and has_running:
        summary.reason = "Running" if _condition_true(conditions, "Ready") else "NotReady"


def _readiness_gates(pod: Pod) -> str:
    gates = (pod.spec.readinessGates if pod.spec else None) or []
    if not gates:
        return NONE
    conditions = (pod.status.conditions if pod.status else None) or []
    passed = 0
    for gate in gates:
        # kubectl looks only at the first condition of the gate's type.
        match = next((c for c in conditions if c.type == gate.conditionType), None)
        passed += 1 if match is not None and match.status == "True" else 0
    return f"{passed}/{len(gates)}"


def _restartable(container: Container | None) -> bool:
    """A sidecar: an init container with restartPolicy Always (counted among the pod's containers)."""
    return container is not None and container.restartPolicy == "Always"


def _condition_true(conditions: Iterable[PodCondition], kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in conditions)


def _last_termination(cs: ContainerStatus) -> datetime | None:
    terminated = cs.lastState.terminated if cs.lastState else None
    return terminated.finishedAt if terminated is not None else None


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is None:
        return current
    return candidate if current is None or current < candidate else current


# ---------------------------------------------------------------------------------------------
# Nodes


def node_status(node: Node) -> str:
    """`Ready`, `NotReady` or `Unknown` (no Ready condition at all), plus `,SchedulingDisabled` if cordoned."""
    conditions = (node.status.conditions if node.status else None) or []
    ready = next((c for c in conditions if c.type == "Ready"), None)
    parts = ["Unknown" if ready is None else ("Ready" if ready.status == "True" else "NotReady")]
    if node.spec is not None and node.spec.unschedulable:
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(node: Node) -> str:
    """kubectl's findNodeRoles: `node-role.kubernetes.io/<role>` keys and `kubernetes.io/role` values."""
    roles: set[str] = set()
    for key, value in ((node.metadata.labels if node.metadata else None) or {}).items():
        if key.startswith(_ROLE_PREFIX) and key[len(_ROLE_PREFIX) :]:
            roles.add(key[len(_ROLE_PREFIX) :])
        elif key == _LEGACY_ROLE_LABEL and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def node_row(node: Node, now: datetime) -> NodeRow:
    """One row of `kubectl get nodes -o wide`."""
    info = node.status.nodeInfo if node.status else None
    return NodeRow(
        node_name=(node.metadata.name if node.metadata else None) or "",
        node_status=node_status(node),
        node_role=node_roles(node),
        node_age=age(node.metadata.creationTimestamp if node.metadata else None, now),
        # kubectl prints the kubelet version as is, even empty; the other wide columns say <unknown>.
        node_version=info.kubeletVersion if info else "",
        node_internalip=_node_address(node, "InternalIP"),
        node_externalip=_node_address(node, "ExternalIP"),
        node_osversion=(info.osImage if info else "") or "<unknown>",
        node_kernelversion=(info.kernelVersion if info else "") or "<unknown>",
        node_containeruntime=(info.containerRuntimeVersion if info else "") or "<unknown>",
    )


def node_details(node: Node, now: datetime) -> NodeDetails:
    """The row plus labels, capacity/allocatable (quantity strings), cordon state and taints."""
    status = node.status
    taints = (node.spec.taints if node.spec else None) or []
    return NodeDetails(
        **node_row(node, now),
        ready=node_status(node).split(",")[0] == "Ready",
        unschedulable=bool(node.spec.unschedulable) if node.spec else False,
        labels=dict((node.metadata.labels if node.metadata else None) or {}),
        capacity={k: str(v) for k, v in ((status.capacity if status else None) or {}).items()},
        allocatable={k: str(v) for k, v in ((status.allocatable if status else None) or {}).items()},
        taints=[{"key": t.key, "value": t.value or "", "effect": t.effect} for t in taints],
    )


def _node_address(node: Node, kind: str) -> str:
    for address in (node.status.addresses if node.status else None) or []:
        if address.type == kind:
            return address.address
    return NONE


# ---------------------------------------------------------------------------------------------
# Fetch and map


async def list_pod_rows(
    client: AsyncClient, *, namespace: str | None = None, now: datetime | None = None
) -> list[PodRow]:
    """Pods of one namespace, or of all (the API's order: by namespace, then name)."""
    with api_errors():
        pods = [pod async for pod in client.list(Pod, namespace=namespace or ALL_NS)]
    moment = now or datetime.now(UTC)
    return [pod_row(pod, moment) for pod in pods]


async def list_node_rows(client: AsyncClient, *, now: datetime | None = None) -> list[NodeRow]:
    with api_errors():
        nodes = [node async for node in client.list(Node)]
    moment = now or datetime.now(UTC)
    return [node_row(node, moment) for node in nodes]


async def list_node_details(client: AsyncClient, *, now: datetime | None = None) -> list[NodeDetails]:
    with api_errors():
        nodes = [node async for node in client.list(Node)]
    moment = now or datetime.now(UTC)
    return [node_details(node, moment) for node in nodes]
