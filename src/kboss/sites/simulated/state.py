"""The in-memory state of simulated clusters (`kboss.sites.simulated.site`): what was applied, the pods it
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
from kboss.kube.workloads import pod_product, pod_template

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


def start_pods(state: SimCluster, found: list[SimNode], owner: Key, workload: Mapping[str, Any]) -> None:
    """One Running pod per replica, each on the first node with room (Pending when none has)."""
    template, replicas = pod_template(workload)
    pod_spec = template.get("spec") or {}
    product = pod_product(pod_spec)
    requests = dict(product.requests)
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
