"""The in-memory state of simulated clusters (`kboss.site_client.simulated`): what was applied, the pods it
started and where they run, node labels and cordoned nodes, per cluster id.

Demo only: it lives in process memory (`CLUSTERS`), is lost when the process ends and is not shared between
processes. Nodes are not stored: they are the cluster's devices as the database records them (`make_node`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kboss.db.models import Device
from kboss.kube import capacity as cap

MAX_PODS = 110
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class SimPod:
    namespace: str
    name: str
    owner: Key
    node: str
    requests: dict[str, int]
    ip: str
    created: dt.datetime
    product: cap.Product  # what the scheduler needs to place it again (requests, selector, GPU model)

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class SimCluster:
    """What was applied to one simulated cluster, the labels set on its nodes (`None`: removed), and the nodes
    cordoned (unschedulable)."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], SimPod] = field(default_factory=dict)
    labels: dict[str, dict[str, str | None]] = field(default_factory=dict)
    cordoned: set[str] = field(default_factory=set)


# Demo only: per-process memory, keyed by cluster id.
CLUSTERS: dict[str, SimCluster] = {}


def forget(cluster_id: str | None = None) -> None:
    """Drop the in-memory state of one cluster, or of all (tests)."""
    if cluster_id is None:
        CLUSTERS.clear()
    else:
        CLUSTERS.pop(cluster_id, None)


def node_name(device_name: str) -> str:
    """A device name as an RFC 1123 node name: lower case, other characters as `-`, at most 63."""
    name = re.sub(r"[^a-z0-9.-]+", "-", device_name.lower()).strip("-.")
    return name[:63].rstrip("-.") or "node"


@dataclass(frozen=True)
class SimNode:
    name: str
    device: Device
    master: bool
    labels: dict[str, str]
    resources: dict[str, str]
    cordoned: bool = False

    def info(self) -> cap.NodeInfo:
        return cap.NodeInfo.from_api(
            {
                "metadata": {"name": self.name, "labels": self.labels},
                "spec": {"unschedulable": self.cordoned, "taints": self.taints()},
                "status": {"allocatable": self.resources},
            }
        )

    def taints(self) -> list[dict[str, str]]:
        # What the API server adds to a cordoned node, as `kubectl describe node` shows it.
        return [{"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}] if self.cordoned else []


def make_node(device: Device, overrides: Mapping[str, str | None], cordoned: set[str]) -> SimNode:
    name, master = node_name(device.name), device.role == "master"
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kboss.io/simulated": "true",
    }
    if master:
        labels["node-role.kubernetes.io/control-plane"] = ""
    resources = {
        cap.CPU: str(device.cpu_stock),
        cap.MEMORY: f"{device.memory_stock}Gi",
        cap.EPHEMERAL_STORAGE: f"{device.sysdisk_stock}Gi",
        "pods": str(MAX_PODS),
    }
    if device.gpu_stock:
        labels["kboss.io/gpu-model"] = device.gpu_model
        resources[cap.GPU_RESOURCE] = str(device.gpu_stock)
    for key, value in overrides.items():
        if value is None:
            labels.pop(key, None)
        else:
            labels[key] = value
    return SimNode(name, device, master, labels, resources, name in cordoned)


def forget_gone_nodes(state: SimCluster, names: set[str]) -> None:
    """Pods of nodes no longer in the cluster: a DaemonSet's go with their node, the others wait Pending."""
    for key, pod in list(state.pods.items()):
        if pod.node and pod.node not in names:
            if pod.owner[0] == "DaemonSet":
                del state.pods[key]
            else:
                pod.node = ""


def pod_ip() -> str:
    return f"10.244.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 2}"


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", ""))


def pod_infos(state: SimCluster) -> list[cap.PodInfo]:
    return [cap.PodInfo(pod.node, pod.requests, "Running", pod.ref) for pod in state.pods.values() if pod.node]


def first_fit(state: SimCluster, candidates: list[SimNode], product: cap.Product) -> str:
    """The first candidate node the scheduler would place `product` on now, or "" (Pending)."""
    pods = pod_infos(state)
    return next((n.name for n in candidates if cap.ClusterSnapshot([n.info()], pods).placeable(product)), "")


def drop_pods(state: SimCluster, owner: Key) -> None:
    for key in [key for key, pod in state.pods.items() if pod.owner == owner]:
        del state.pods[key]


def _template(workload: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The pod template of a controller and how many pods run from it (a CronJob: none until its schedule;
    a DaemonSet: -1, one per node)."""
    spec = workload.get("spec") or {}
    kind = workload.get("kind")
    if kind == "Pod":
        return {"spec": spec}, 1
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"], 0
    if kind == "Job":
        return spec["template"], 1
    if kind == "DaemonSet":
        return spec["template"], -1
    return spec["template"], int(spec.get("replicas", 1))


def start_pods(state: SimCluster, found: list[SimNode], owner: Key, workload: Mapping[str, Any]) -> None:
    """One Running pod per replica, each on the first node with room (Pending when none has)."""
    template, replicas = _template(workload)
    pod_spec = template.get("spec") or {}
    requests = cap.PodInfo.from_api({"spec": pod_spec}).requests
    product = _product(requests, pod_spec)
    kind, namespace, controller = owner
    suffix = secrets.token_hex(5)[:9]
    targets = [[n] for n in found] if replicas < 0 else [found] * replicas
    for index, candidates in enumerate(targets):
        if kind in ("StatefulSet", "Pod"):
            name = controller if kind == "Pod" else f"{controller}-{index}"
        elif kind in ("Job", "DaemonSet"):
            name = f"{controller}-{secrets.token_hex(3)[:5]}"
        else:
            name = f"{controller}-{suffix}-{secrets.token_hex(3)[:5]}"
        node = first_fit(state, candidates, product)
        now = dt.datetime.now(dt.UTC)
        state.pods[(namespace, name)] = SimPod(namespace, name, owner, node, dict(requests), pod_ip(), now, product)


def _product(requests: Mapping[str, int], pod_spec: Mapping[str, Any]) -> cap.Product:
    """The pod as a capacity product: its requests, its node selector, and the GPU model its affinity asks for."""
    selector = {str(k): str(v) for k, v in (pod_spec.get("nodeSelector") or {}).items()}
    models = frozenset(cap.normalize_gpu_model(m) for m in _affinity_models(pod_spec))
    return cap.Product("pod", dict(requests), selector, models)


def _affinity_models(pod_spec: Mapping[str, Any]) -> list[str]:
    terms = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    for term in terms:
        for expr in term.get("matchExpressions", []):
            if expr.get("key") in cap.GPU_MODEL_LABEL_KEYS and expr.get("operator") == "In":
                return [str(v) for v in expr.get("values", [])]
    return []
