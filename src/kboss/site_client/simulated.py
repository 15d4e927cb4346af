"""A site for a simulated center: machines and clusters in process memory, answered like a site agent would.

Demo only (`kboss demo`, `kboss serve --demo`, or a center added with `simulated: true`). `SimulatedSiteClient`
has the methods and answer shapes of `SiteClient`; it is chosen only for a center that says it is simulated
(`Center.simulated`), never for a real one (see `site_for_center`). Nodes are the cluster's devices as the database
records them; what was applied (pods, objects), node labels and cordoned nodes live in `_CLUSTERS`, a module-level
registry keyed by cluster id: it is lost when the process ends, and is not shared between processes. Validation is
the real one: instance objects are built by `kboss.kube.manifests.build_objects` from `InstanceSpec.from_params`,
capacity by `kboss.kube.capacity`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.crypto import SecretBox
from kboss.db.models import Center, Device
from kboss.errors import InvalidParameter, NotFound, UpstreamError
from kboss.kube import apply as kube_apply
from kboss.kube import capacity as cap
from kboss.kube import nodes
from kboss.kube.ages import age
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.manifests import build_objects, object_refs
from kboss.kube.metrics import UNKNOWN
from kboss.site_client.client import DRAIN_SECONDS, SimulatedCenter, SiteClient

KUBELET_VERSION = "v1.30.0"
MAX_PODS = 110
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
_NONE = "<none>"
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class _Pod:
    namespace: str
    name: str
    owner: Key
    node: str
    requests: dict[str, int]
    ip: str
    created: dt.datetime
    product: cap.Product  # what the scheduler needs to place it again (requests, selector, GPU model)


@dataclass
class _SimCluster:
    """What was applied to one simulated cluster, the labels set on its nodes (`None`: removed), and the nodes
    cordoned (unschedulable)."""

    objects: dict[Key, dict[str, Any]] = field(default_factory=dict)
    pods: dict[tuple[str, str], _Pod] = field(default_factory=dict)
    labels: dict[str, dict[str, str | None]] = field(default_factory=dict)
    cordoned: set[str] = field(default_factory=set)


# Demo only: per-process memory, keyed by cluster id.
_CLUSTERS: dict[str, _SimCluster] = {}


def forget(cluster_id: str | None = None) -> None:
    """Drop the in-memory state of one cluster, or of all (tests)."""
    if cluster_id is None:
        _CLUSTERS.clear()
    else:
        _CLUSTERS.pop(cluster_id, None)


def node_name(device_name: str) -> str:
    """A device name as an RFC 1123 node name: lower case, other characters as `-`, at most 63."""
    name = re.sub(r"[^a-z0-9.-]+", "-", device_name.lower()).strip("-.")
    return name[:63].rstrip("-.") or "node"


@dataclass(frozen=True)
class _Node:
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


class SimulatedSiteClient:
    """Use like `SiteClient`: `async with SimulatedSiteClient(center, session, cluster_id) as site:`."""

    def __init__(self, center: Center, session: AsyncSession, cluster_id: str | None = None) -> None:
        if not center.simulated:
            raise ValueError("SimulatedSiteClient is for simulated centers only")
        self.center = center
        self._session = session
        self._cluster_id = cluster_id

    async def __aenter__(self) -> SimulatedSiteClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        return None

    # -- endpoints ---------------------------------------------------------------------------------

    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        spec = InstanceSpec.from_params(dict(params))
        objects = build_objects(spec)
        state, found = self._state(), await self._nodes()
        results = []
        for obj in objects:
            key = _key(obj)
            results.append(f"{key[0]}/{key[2]} {'configured' if key in state.objects else 'created'}")
            state.objects[key] = obj
        workload = _key(objects[-1])
        _drop_pods(state, workload)
        _start_pods(state, found, workload, objects[-1])
        return {"action": "apply", "objects": results}

    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        spec = InstanceSpec.from_params(dict(params))
        return self._delete(object_refs(spec))

    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]:
        return self._delete(kube_apply.parse_manifests(manifests_yaml))

    async def cluster_pods(self, kubeconfig: str) -> list[dict[str, Any]]:
        state, now = self._state(), dt.datetime.now(dt.UTC)
        await self._nodes()
        return [
            {
                "pod_namespace": pod.namespace,
                "pod_name": pod.name,
                "pod_ready": "1/1" if pod.node else "0/1",
                "pod_running": "Running" if pod.node else "Pending",
                "pod_restart": "0",
                "pod_age": age(pod.created, now),
                "pod_ip": pod.ip if pod.node else _NONE,
                "pod_node": pod.node or _NONE,
                "pod_nominated_node": _NONE,
                "pod_readiness_gates": _NONE,
                "pod_cpu_usage": UNKNOWN,
                "pod_memory_usage": UNKNOWN,
            }
            for pod in state.pods.values()
        ]

    async def cluster_nodes(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
        state, now = self._state(), dt.datetime.now(dt.UTC)
        rows = []
        for node in await self._nodes():
            device = node.device
            placed = [pod for pod in state.pods.values() if pod.node == node.name]
            requested: dict[str, int] = {}
            for pod in placed:
                for resource, amount in pod.requests.items():
                    requested[resource] = requested.get(resource, 0) + amount
            rows.append(
                {
                    "node_name": node.name,
                    "node_status": "Ready,SchedulingDisabled" if node.cordoned else "Ready",
                    "node_role": "control-plane" if node.master else _NONE,
                    "node_age": age(device.created_at, now),
                    "node_version": KUBELET_VERSION,
                    "node_internalip": device.ip or _NONE,
                    "node_externalip": device.external_ip or _NONE,
                    "node_osversion": "Ubuntu 22.04 LTS (simulated)",
                    "node_kernelversion": "5.15.0-simulated",
                    "node_containeruntime": "containerd://1.7.0",
                    "ready": True,
                    "unschedulable": node.cordoned,
                    "labels": dict(node.labels),
                    "capacity": dict(node.resources),
                    "allocatable": dict(node.resources),
                    "taints": node.taints(),
                    "requested": {r: f"{v}m" if r == cap.CPU else str(v) for r, v in requested.items()},
                    "pods": len(placed),
                }
            )
        return rows

    async def label_node(self, kubeconfig: str, node: str, label: str, opt: str) -> dict[str, Any]:
        name = nodes.validate_node_name(node, "worker_node")
        key, value = nodes.parse_label(label)
        found = {n.name: n for n in await self._nodes()}
        if name not in found:
            raise NotFound(f"节点 {name} 不存在")
        if opt == "label" and value is None:
            raise InvalidParameter("label", "绑定标签应为 key=value 形式")
        self._state().labels.setdefault(name, {})[key] = (value or "") if opt == "label" else None
        labels = {n.name: n for n in await self._nodes()}[name].labels
        return {"node_labels": dict(labels)}

    async def switch_node(
        self, kubeconfig: str, node: str, state: str, drain: bool, drain_seconds: int = DRAIN_SECONDS
    ) -> dict[str, Any]:
        """As the agent's `node_state_switch`: cordon, uncordon, or cordon and drain (see `_drain`)."""
        name = nodes.validate_node_name(node, "node_name")
        if state not in ("cordon", "uncordon"):
            raise InvalidParameter("state", "应为 cordon 或 uncordon")
        if drain and state == "uncordon":
            raise InvalidParameter("drain", "恢复调度 (uncordon) 时不能驱逐")
        if name not in {n.name for n in await self._nodes()}:
            raise NotFound(f"节点 {name} 不存在")
        cluster = self._state()
        if state == "cordon":
            cluster.cordoned.add(name)
        else:
            cluster.cordoned.discard(name)
            _schedule_pending(cluster, await self._nodes())  # as the scheduler retries pods left Pending
        data: dict[str, Any] = {"state": state, "drain": drain}
        if drain:
            data["report"] = _drain(cluster, name, await self._nodes())
            if not data["report"]["ok"]:
                raise UpstreamError("模拟站点: switch node failed", data=data)
        return data

    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        products = cap.parse_products(products_json)
        return [fit.as_dict() for fit in cap.assess(products, await self._snapshot())]

    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]:
        """A simulated machine's facts, marked `simulated` (nothing logs in anywhere): the device's recorded
        figures, or, for a device recorded without any yet (added by hand), a plausible machine picked by its
        address, the same one every time."""
        device = await self._session.scalar(
            select(Device).where(Device.cpcid == self.center.id, Device.ip == host, Device.sshport == port)
        )
        if device is None:
            raise NotFound(f"模拟算力中心 {self.center.name} 没有地址为 {host}:{port} 的设备")
        if device.cpu_stock or device.memory_stock:
            facts = _recorded_facts(device)
        else:
            facts = dict(INVENTED[int(hashlib.sha256(host.encode()).hexdigest(), 16) % len(INVENTED)])
        return {
            "simulated": True,
            "hostname": node_name(device.name),
            "os": "Ubuntu 22.04 LTS (simulated)",
            **facts,
            "swap_on": False,
            "kubelet": "",
        }

    # -- state -------------------------------------------------------------------------------------

    def _state(self) -> _SimCluster:
        if self._cluster_id is None:
            raise SimulatedCenter(f"算力中心 {self.center.name} 是模拟站点,此操作需要指明集群")
        return _CLUSTERS.setdefault(self._cluster_id, _SimCluster())

    async def _nodes(self) -> list[_Node]:
        """The cluster's devices as nodes, with the labels set on them; pods on nodes now gone are dropped."""
        state = self._state()
        devices = (
            await self._session.scalars(
                select(Device).where(Device.clusterid == self._cluster_id).order_by(Device.created_at, Device.id)
            )
        ).all()
        found = [_node(device, state.labels.get(node_name(device.name), {}), state.cordoned) for device in devices]
        names = {node.name for node in found}
        for pod in state.pods.values():
            if pod.node and pod.node not in names:
                pod.node = ""
        return found

    async def _snapshot(self) -> cap.ClusterSnapshot:
        state, found = self._state(), await self._nodes()
        return cap.ClusterSnapshot([n.info() for n in found], _pod_infos(state))

    def _delete(self, objects: list[dict[str, Any]]) -> dict[str, Any]:
        state, results = self._state(), []
        for obj in objects:
            key = _key(obj)
            gone = state.objects.pop(key, None)
            _drop_pods(state, key)
            results.append(f"{key[0]}/{key[2]} {'deleted' if gone is not None else 'not found'}")
        return {"action": "delete", "objects": results}


def _node(device: Device, overrides: Mapping[str, str | None], cordoned: set[str]) -> _Node:
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
    return _Node(name, device, master, labels, resources, name in cordoned)


# Machines a probe of a simulated device answers when nothing is recorded yet: common shapes of a site.
INVENTED: tuple[dict[str, Any], ...] = (
    {"cpu_model": "Intel Xeon Gold 6330 (simulated)", "cpu_cores": 56, "memory_mib": 256 * 1024,
     "disks": [{"name": "sda", "size_gib": 200}, {"name": "sdb", "size_gib": 2000}], "gpus": []},
    {"cpu_model": "AMD EPYC 7543 (simulated)", "cpu_cores": 64, "memory_mib": 512 * 1024,
     "disks": [{"name": "sda", "size_gib": 200}, {"name": "sdb", "size_gib": 4000}],
     "gpus": [{"model": "RTX4090-24G", "count": 8}]},
    {"cpu_model": "Intel Xeon Silver 4314 (simulated)", "cpu_cores": 32, "memory_mib": 128 * 1024,
     "disks": [{"name": "sda", "size_gib": 100}, {"name": "sdb", "size_gib": 1000}], "gpus": []},
)  # fmt: skip


def _recorded_facts(device: Device) -> dict[str, Any]:
    disks = [{"name": "sda", "size_gib": device.sysdisk_stock}]
    if device.datadisk_stock:
        disks.append({"name": "sdb", "size_gib": device.datadisk_stock})
    return {
        "cpu_model": device.cpu_model,
        "cpu_cores": device.cpu_stock,
        "memory_mib": device.memory_stock * 1024,
        "disks": disks,
        "gpus": [{"model": device.gpu_model, "count": device.gpu_stock}] if device.gpu_stock else [],
    }


def _drain(state: _SimCluster, node: str, found: list[_Node]) -> dict[str, Any]:
    """`kubectl drain` on the simulated cluster, reported as the agent reports it: DaemonSet pods are skipped; a
    pod no controller owns is not evicted (nothing would recreate it); the others are evicted, and their
    controller starts a replacement on a schedulable node with room (Pending when none has)."""
    report: dict[str, Any] = {"node": node, "evicted": [], "deleted": [], "skipped": [], "failed": []}
    for key, pod in sorted(state.pods.items()):
        ref, (kind, _, controller) = f"{pod.namespace}/{pod.name}", pod.owner
        if pod.node != node:
            continue
        if kind == "DaemonSet":
            report["skipped"].append({"pod": ref, "reason": f"由 DaemonSet {controller} 管理"})
        elif kind == "Pod":
            report["failed"].append({"pod": ref, "reason": "不受任何控制器管理,驱逐后无法重建 (需要 force)"})
        else:
            report["evicted"].append(ref)
            del state.pods[key]
            _replace(state, found, pod)
    report["ok"] = not report["failed"]
    return report


def _replace(state: _SimCluster, found: list[_Node], gone: _Pod) -> None:
    # A StatefulSet keeps the pod's name; other controllers name the new pod after the same template.
    name = gone.name if gone.owner[0] == "StatefulSet" else f"{gone.name.rsplit('-', 1)[0]}-{secrets.token_hex(3)[:5]}"
    pods = _pod_infos(state)
    node = next((n.name for n in found if cap.ClusterSnapshot([n.info()], pods).placeable(gone.product)), "")
    now = dt.datetime.now(dt.UTC)
    state.pods[(gone.namespace, name)] = _Pod(
        gone.namespace, name, gone.owner, node, gone.requests, _pod_ip(), now, gone.product
    )


def _schedule_pending(state: _SimCluster, found: list[_Node]) -> None:
    for pod in state.pods.values():
        if not pod.node:
            pods = _pod_infos(state)
            pod.node = next((n.name for n in found if cap.ClusterSnapshot([n.info()], pods).placeable(pod.product)), "")


def _pod_ip() -> str:
    return f"10.244.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 2}"


def _key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", ""))


def _pod_infos(state: _SimCluster) -> list[cap.PodInfo]:
    return [
        cap.PodInfo(pod.node, pod.requests, "Running", f"{pod.namespace}/{pod.name}")
        for pod in state.pods.values()
        if pod.node
    ]


def _drop_pods(state: _SimCluster, owner: Key) -> None:
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


def _start_pods(state: _SimCluster, found: list[_Node], owner: Key, workload: Mapping[str, Any]) -> None:
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
        pods = _pod_infos(state)
        node = next((n.name for n in candidates if cap.ClusterSnapshot([n.info()], pods).placeable(product)), "")
        now = dt.datetime.now(dt.UTC)
        state.pods[(namespace, name)] = _Pod(namespace, name, owner, node, dict(requests), _pod_ip(), now, product)


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


SiteLike = SiteClient | SimulatedSiteClient


def site_for_center(center: Center, box: SecretBox, session: AsyncSession, cluster_id: str | None = None) -> SiteLike:
    """The client to a center's site: the agent over HTTP, or — only for a center marked simulated — the
    in-memory simulated site. A real center never gets the simulated one."""
    if center.simulated:
        return SimulatedSiteClient(center, session, cluster_id)
    return SiteClient.for_center(center, box)


__all__ = ["SimulatedSiteClient", "SiteLike", "forget", "node_name", "site_for_center"]
