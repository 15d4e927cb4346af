"""Builders for Nodes and Pods in the states tests need, shaped as the kubelet reports them.

`node(...)` and `pod(...)` return plain objects; `KubeFake.add_node` / `add_pod` store them. Pod states:
running, not_ready, pending (unschedulable), container_creating, image_pull_backoff, err_image_pull,
crash_loop, completed, error, evicted, init, terminating.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.kubefake.ssa import merge_patch
from tests.kubefake.store import rfc3339

POD_STATES = (
    "running",
    "not_ready",
    "pending",
    "container_creating",
    "image_pull_backoff",
    "err_image_pull",
    "crash_loop",
    "completed",
    "error",
    "evicted",
    "init",
    "terminating",
)
_OWNER_API = {
    "ReplicaSet": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "Job": "batch/v1",
    "Deployment": "apps/v1",
    "Node": "v1",
}


def _created(age: timedelta | None, created: datetime | None) -> str:
    return rfc3339(created or datetime.now(UTC) - (age or timedelta(0)))


def _condition(kind: str, status: str, reason: str = "", at: str = "") -> dict[str, Any]:
    cond = {"type": kind, "status": status, "lastTransitionTime": at or rfc3339()}
    if reason:
        cond["reason"] = reason
    return cond


# ---------------------------------------------------------------------------------------------
# Nodes


def node(
    name: str,
    *,
    ready: bool | str | None = True,
    roles: Iterable[str] = (),
    labels: Mapping[str, str] | None = None,
    unschedulable: bool = False,
    taints: Sequence[Mapping[str, str]] = (),
    cpu: str = "8",
    memory: str = "32Gi",
    pods: str = "110",
    ephemeral_storage: str = "100Gi",
    gpus: int = 0,
    allocatable: Mapping[str, str] | None = None,
    internal_ip: str = "192.168.0.10",
    external_ip: str | None = None,
    kubelet_version: str = "v1.28.2",
    os_image: str = "Ubuntu 22.04.1 LTS",
    kernel_version: str = "5.15.0-91-generic",
    container_runtime: str = "containerd://1.7.24",
    age: timedelta | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """A Node; `ready` True/False/"Unknown" sets the Ready condition, None leaves it out entirely."""
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}
    all_labels |= {f"node-role.kubernetes.io/{role}": "" for role in roles} | dict(labels or {})
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": ephemeral_storage}
    if gpus:
        capacity["nvidia.com/gpu"] = str(gpus)
    spec: dict[str, Any] = {"podCIDR": "10.244.1.0/24"}
    if unschedulable:
        spec["unschedulable"] = True
    if taints:
        spec["taints"] = [dict(t) for t in taints]
    addresses = [{"type": "InternalIP", "address": internal_ip}, {"type": "Hostname", "address": name}]
    if external_ip:
        addresses.insert(1, {"type": "ExternalIP", "address": external_ip})
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": all_labels, "creationTimestamp": _created(age, created)},
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": dict(allocatable) if allocatable is not None else dict(capacity),
            "conditions": _node_conditions(ready),
            "addresses": addresses,
            "nodeInfo": _node_info(kubelet_version, os_image, kernel_version, container_runtime),
        },
    }


def _node_conditions(ready: bool | str | None) -> list[dict[str, Any]]:
    conditions = [_condition(kind, "False", f"KubeletHasNo{kind}") for kind in ("MemoryPressure", "DiskPressure")]
    if ready is not None:
        status = ready if isinstance(ready, str) else ("True" if ready else "False")
        reason = {"True": "KubeletReady", "False": "KubeletNotReady"}.get(status, "NodeStatusUnknown")
        conditions.append(_condition("Ready", status, reason))
    return conditions


def _node_info(kubelet: str, os_image: str, kernel: str, runtime: str) -> dict[str, str]:
    return {
        "architecture": "amd64",
        "bootID": str(uuid.uuid4()),
        "containerRuntimeVersion": runtime,
        "kernelVersion": kernel,
        "kubeProxyVersion": kubelet,
        "kubeletVersion": kubelet,
        "machineID": uuid.uuid4().hex,
        "operatingSystem": "linux",
        "osImage": os_image,
        "systemUUID": str(uuid.uuid4()),
    }


# ---------------------------------------------------------------------------------------------
# Pods


def owner_reference(kind: str, name: str) -> dict[str, Any]:
    return {
        "apiVersion": _OWNER_API.get(kind, "apps/v1"),
        "kind": kind,
        "name": name,
        "uid": str(uuid.uuid4()),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod(
    name: str,
    namespace: str = "default",
    *,
    state: str = "running",
    node: str | None = "worker-1",
    containers: int | Sequence[str] = 1,
    init_containers: int = 0,
    labels: Mapping[str, str] | None = None,
    owner: tuple[str, str] | None = None,
    mirror: bool = False,
    restarts: int = 0,
    ip: str = "10.244.1.5",
    requests: Mapping[str, str] | None = None,
    readiness_gates: Sequence[tuple[str, bool | None]] = (),
    nominated_node: str | None = None,
    age: timedelta | None = None,
    created: datetime | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A Pod in `state` (see POD_STATES). `owner` is (kind, name) of its controller, e.g. ("ReplicaSet", "web-7d");
    `mirror` makes it a static pod's mirror; `readiness_gates` are (conditionType, condition status or None
    for absent); `overrides` is merged last (JSON merge patch) for anything else."""
    if state not in POD_STATES:
        raise ValueError(f"unknown pod state {state!r}; one of {POD_STATES}")
    names = [f"c{i}" for i in range(containers)] if isinstance(containers, int) else list(containers)
    scheduled = state != "pending" and node is not None
    meta = _pod_meta(name, namespace, labels, owner, mirror, node, _created(age, created))
    if state == "terminating":
        meta["deletionTimestamp"] = rfc3339(datetime.now(UTC) + timedelta(seconds=30))
        meta["deletionGracePeriodSeconds"] = 30
    spec = _pod_spec(names, init_containers, node if scheduled else None, requests, readiness_gates)
    status = _pod_status(state, names, init_containers, restarts, ip if scheduled else None)
    status["conditions"] += [_condition(t, "True" if ok else "False") for t, ok in readiness_gates if ok is not None]
    if nominated_node:
        status["nominatedNodeName"] = nominated_node
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}
    return merge_patch(obj, overrides) if overrides else obj


def _pod_meta(
    name: str,
    namespace: str,
    labels: Mapping[str, str] | None,
    owner: tuple[str, str] | None,
    mirror: bool,
    node: str | None,
    created: str,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "labels": dict(labels or {}),
        "creationTimestamp": created,
    }
    if mirror:
        meta["annotations"] = {"kubernetes.io/config.mirror": uuid.uuid4().hex, "kubernetes.io/config.source": "file"}
        owner = owner or ("Node", node or "node")
    if owner:
        meta["ownerReferences"] = [owner_reference(*owner)]
    return meta


def _pod_spec(
    names: list[str],
    init_containers: int,
    node: str | None,
    requests: Mapping[str, str] | None,
    gates: Sequence[tuple[str, bool | None]],
) -> dict[str, Any]:
    container = {"image": "registry.example/app:1", "resources": {"requests": dict(requests)} if requests else {}}
    spec: dict[str, Any] = {
        "containers": [{"name": n, **container} for n in names],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
    }
    if init_containers:
        spec["initContainers"] = [{"name": f"init{i}", "image": "busybox"} for i in range(init_containers)]
    if node:
        spec["nodeName"] = node
    if gates:
        spec["readinessGates"] = [{"conditionType": t} for t, _ in gates]
    return spec


def _pod_status(state: str, names: list[str], init_count: int, restarts: int, ip: str | None) -> dict[str, Any]:
    phase, container_state, ready = _STATE_TABLE[state]
    statuses = [_container_status(n, container_state, ready, restarts, state) for n in names]
    status: dict[str, Any] = {"phase": phase, "qosClass": "BestEffort", "startTime": rfc3339()}
    if state == "evicted":
        status.update(reason="Evicted", message="The node was low on resource: memory.")
    if state == "pending":
        status["conditions"] = [_condition("PodScheduled", "False", "Unschedulable")]
        return status
    status["hostIP"], status["podIP"], status["podIPs"] = "192.168.0.10", ip, [{"ip": ip}]
    initialized = "False" if state == "init" else "True"
    status["conditions"] = [
        _condition("Initialized", initialized),
        _condition("Ready", "True" if ready else "False"),
        _condition("ContainersReady", "True" if ready else "False"),
        _condition("PodScheduled", "True"),
    ]
    status["containerStatuses"] = statuses
    if init_count:
        status["initContainerStatuses"] = _init_statuses(state, init_count)
    return status


# state → (phase, container state, ready)
_STATE_TABLE: dict[str, tuple[str, dict[str, Any], bool]] = {
    "running": ("Running", {"running": {"startedAt": "2024-01-01T00:00:00Z"}}, True),
    "terminating": ("Running", {"running": {"startedAt": "2024-01-01T00:00:00Z"}}, True),
    "not_ready": ("Running", {"running": {"startedAt": "2024-01-01T00:00:00Z"}}, False),
    "pending": ("Pending", {}, False),
    "container_creating": ("Pending", {"waiting": {"reason": "ContainerCreating"}}, False),
    "image_pull_backoff": (
        "Pending",
        {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
        False,
    ),
    "err_image_pull": ("Pending", {"waiting": {"reason": "ErrImagePull"}}, False),
    "crash_loop": (
        "Running",
        {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s restarting failed container"}},
        False,
    ),
    "completed": ("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}}, False),
    "error": ("Failed", {"terminated": {"exitCode": 1, "reason": "Error"}}, False),
    "evicted": ("Failed", {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown"}}, False),
    "init": ("Pending", {"waiting": {"reason": "PodInitializing"}}, False),
}


def _container_status(name: str, state: dict[str, Any], ready: bool, restarts: int, kind: str) -> dict[str, Any]:
    restarts = max(restarts, 1) if kind == "crash_loop" else restarts
    status: dict[str, Any] = {
        "name": name,
        "image": "registry.example/app:1",
        "imageID": "",
        "ready": ready,
        "restartCount": restarts,
        "started": "running" in state,
        "state": state,
        "lastState": {},
    }
    if restarts:
        finished = rfc3339(datetime.now(UTC) - timedelta(minutes=5))
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}
    return status


def _init_statuses(state: str, count: int) -> list[dict[str, Any]]:
    done = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    statuses = []
    for i in range(count):
        # While initializing, the first init container runs and the next ones wait their turn.
        if state != "init":
            current = done
        elif i == 0:
            current = {"running": {"startedAt": rfc3339()}}
        else:
            current = {"waiting": {"reason": "PodInitializing"}}
        statuses.append(
            {
                "name": f"init{i}",
                "image": "busybox",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": current,
                "lastState": {},
            }
        )
    return statuses
