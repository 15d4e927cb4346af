"""A site for a simulated center: machines and clusters in process memory, answered like a site agent would.

Demo only (`kboss demo`, `kboss serve --demo`, or a center added with `simulated: true`). `SimulatedSiteClient`
is a `Site` (`kboss.sites.protocol`) like `SiteClient`; it is chosen only for a center that says it is simulated
(`Center.simulated`), never for a real one (see `site_for_center`). Provisioning runs the real plan
(`kboss.wire.plan`) step by step on `SimulatedMachines` (time, faults, effects). Nodes are the cluster's devices as
the database records them; what was applied (pods, objects), node labels and cordoned nodes live in
`state.CLUSTERS`, a module-level registry keyed by cluster id: it is lost when the process ends, and is not shared
between processes. Drains follow `drain`. Validation is the real one: instance objects are built by
`kboss.kube.manifests.build_objects` from `InstanceSpec.from_params`, capacity by `kboss.kube.capacity`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.crypto import SecretBox
from kboss.db.models import Center, Device
from kboss.errors import InvalidParameter, NotFound
from kboss.kube import apply as kube_apply
from kboss.kube import capacity as cap
from kboss.kube import nodes
from kboss.kube.ages import age
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.labels import check_unlabel
from kboss.kube.manifests import build_objects, object_refs
from kboss.kube.metrics import UNKNOWN
from kboss.sites.audited import AuditedSite
from kboss.sites.client import SimulatedCenter, SiteClient
from kboss.sites.pinning import ensure_pinned
from kboss.sites.protocol import (
    CHANGED,
    FAILED,
    UNCHANGED,
    ClosedOnExit,
    NodeAnswer,
    OnLine,
    Site,
    StepReport,
    pods_left,
)
from kboss.sites.simulated import drain as sim_drain
from kboss.sites.simulated.machines import (
    DEMO_MACHINES,
    PLAYED_SECONDS,
    Effect,
    SimulatedFault,
    SimulatedMachines,
    simulated_credentials,
)
from kboss.sites.simulated.state import (
    CLUSTERS,
    SimCluster,
    SimNode,
    drop_pods,
    forget,
    forget_gone_nodes,
    key_of,
    make_node,
    node_name,
    pod_infos,
    start_pods,
)
from kboss.wire.plan import BY_NAME, Role, plan_for

KUBELET_VERSION = "v1.30.0"
_NONE = "<none>"


class SimulatedSiteClient(ClosedOnExit):
    """Use like `SiteClient`: `async with SimulatedSiteClient(center, session, cluster_id) as site:`."""

    def __init__(
        self,
        center: Center,
        session: AsyncSession,
        cluster_id: str | None = None,
        machines: SimulatedMachines | None = None,
    ) -> None:
        if not center.simulated:
            raise ValueError("SimulatedSiteClient is for simulated centers only")
        self.center = center
        self._session = session
        self._cluster_id = cluster_id
        self._machines = machines or DEMO_MACHINES

    # -- machines: the real plan, played ---------------------------------------------------------

    async def plan(self, role: Role, options: Mapping[str, str]) -> list[str]:
        return [step.name for step in plan_for(role, options.get("gpu", "auto"))]

    async def run_step(self, name: str, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        if name not in BY_NAME:
            raise NotFound(f"部署计划中没有步骤 {name}")
        device = await self._machine(form)
        report = await self._played(name, device.id, on_line)
        if name == "fetch_credentials" and report.status != FAILED:
            join, kubeconfig = simulated_credentials(device.ip)
            return replace(report, secrets={"join_command": join, "kubeconfig": kubeconfig})
        return report

    async def reset(self, form: Mapping[str, str], on_line: OnLine) -> StepReport:
        return await self._played("reset", (await self._machine(form)).id, on_line)

    async def _played(self, name: str, node: str, on_line: OnLine) -> StepReport:
        effect = Effect(self._cluster_id or "", name, node)
        try:
            acted = await self._machines.play(effect, on_line)
        except SimulatedFault as fault:
            return StepReport(name, FAILED, fault.message)
        return StepReport(name, CHANGED if acted else UNCHANGED, seconds=PLAYED_SECONDS.get(name, 1.0))

    async def _machine(self, form: Mapping[str, str]) -> Device:
        """The device a step's form addresses (host and port)."""
        return await self._device_at(form.get("host", ""), int(form.get("port") or 22))

    async def _device_at(self, host: str, port: int) -> Device:
        device = await self._session.scalar(
            select(Device).where(Device.cpcid == self.center.id, Device.ip == host, Device.sshport == port)
        )
        if device is None:
            raise NotFound(f"模拟算力中心 {self.center.name} 没有地址为 {host}:{port} 的设备")
        return device

    # -- nodes: the operations' calls ----------------------------------------------------------------

    async def cordon(self, kubeconfig: str, node: str) -> NodeAnswer:
        return await self._node_answer("cordon", node, lambda name: self.switch_node(kubeconfig, name, "cordon"))

    async def drain(self, kubeconfig: str, node: str, seconds: int, force: bool = False) -> NodeAnswer:
        """Cordon and drain (see `sim_drain.drain`): the report says what moved and what blocked it (`ok` False:
        pods are left, the node stays cordoned)."""

        async def drained(name: str) -> dict[str, Any]:
            return sim_drain.drain(self._state(), name, await self._nodes(), force)

        return await self._node_answer("drain", node, drained)

    async def delete_node(self, kubeconfig: str, node: str, force: bool) -> NodeAnswer:
        """The node's pods go with it; the node itself leaves the cluster when its device is released."""

        async def deleted(name: str) -> dict[str, Any]:
            state = self._state()
            for key in [key for key, pod in state.pods.items() if pod.node == name]:
                del state.pods[key]
            return {}

        return await self._node_answer("delete_node", node, deleted)

    async def _node_answer(self, step: str, node: str, act: Callable[[str], Awaitable[dict[str, Any]]]) -> NodeAnswer:
        try:
            name = await self._known_node(node)
        except NotFound as gone:
            return NodeAnswer(False, gone.message, code=NotFound.code)
        try:
            await self._machines.play(Effect(self._cluster_id or "", step, name), lambda _: None, once=False)
        except SimulatedFault as fault:
            return NodeAnswer(False, fault.message, code=fault.code)
        report = await act(name)
        ok = bool(report.get("ok", True))
        info = "成功" if ok else f"节点 {name} 上有 Pod 无法驱逐" + pods_left(report)
        return NodeAnswer(ok, info, {k: v for k, v in report.items() if k != "ok"} if "ok" in report else {})

    # -- endpoints ---------------------------------------------------------------------------------

    async def apply_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        spec = InstanceSpec.from_params(dict(params))
        objects = build_objects(spec)
        state, found = self._state(), await self._nodes()
        results = []
        for obj in objects:
            key = key_of(obj)
            results.append(f"{key[0]}/{key[2]} {'configured' if key in state.objects else 'created'}")
            state.objects[key] = obj
        workload = key_of(objects[-1])
        drop_pods(state, workload)
        start_pods(state, found, workload, objects[-1])
        return {"action": "apply", "objects": results}

    async def delete_instance(self, kubeconfig: str, params: Mapping[str, str]) -> dict[str, Any]:
        spec = InstanceSpec.from_params(dict(params))
        return self._delete(object_refs(spec))

    async def delete_manifests(self, kubeconfig: str, manifests_yaml: str) -> dict[str, Any]:
        return self._delete(kube_apply.parse_manifests(manifests_yaml))

    async def cluster_pods(self, kubeconfig: str, read_seconds: float | None = None) -> list[dict[str, Any]]:
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
        if opt == "unlabel":
            check_unlabel(name, key, value, dict(found[name].labels))
        self._state().labels.setdefault(name, {})[key] = (value or "") if opt == "label" else None
        labels = {n.name: n for n in await self._nodes()}[name].labels
        return {"node_labels": dict(labels)}

    async def switch_node(self, kubeconfig: str, node: str, state: str) -> dict[str, Any]:
        """As the agent's `node_state_switch` without drain: cordon or uncordon."""
        if state not in ("cordon", "uncordon"):
            raise InvalidParameter("state", "应为 cordon 或 uncordon")
        name = await self._known_node(node)
        cluster = self._state()
        if state == "cordon":
            cluster.cordoned.add(name)
        else:
            cluster.cordoned.discard(name)
            sim_drain.schedule_pending(cluster, await self._nodes())
        return {"state": state}

    async def _known_node(self, node: str) -> str:
        name = nodes.validate_node_name(node, "node_name")
        if name not in {n.name for n in await self._nodes()}:
            raise NotFound(f"节点 {name} 不存在")
        return name

    async def capacity(
        self, kubeconfig: str, products_json: str, read_seconds: float | None = None
    ) -> list[dict[str, Any]]:
        products = cap.parse_products(products_json)
        return [fit.as_dict() for fit in cap.assess(products, await self._snapshot())]

    async def probe(self, host: str, port: int, user: str, password: str, private_key: str) -> dict[str, Any]:
        """A simulated machine's facts, marked `simulated` (nothing logs in anywhere): the device's recorded
        figures, or, for a device recorded without any yet (added by hand), a plausible machine picked by its
        address, the same one every time."""
        device = await self._device_at(host, port)
        await self._machines.play(Effect(self._cluster_id or "", "probe", device.id), lambda _: None, once=False)
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

    def _state(self) -> SimCluster:
        if self._cluster_id is None:
            raise SimulatedCenter(f"算力中心 {self.center.name} 是模拟站点,此操作需要指明集群")
        return CLUSTERS.setdefault(self._cluster_id, SimCluster())

    async def _nodes(self) -> list[SimNode]:
        """The cluster's devices as nodes, with the labels set on them; pods of nodes now gone are let go."""
        state = self._state()
        devices = (
            await self._session.scalars(
                select(Device).where(Device.clusterid == self._cluster_id).order_by(Device.created_at, Device.id)
            )
        ).all()
        found = [make_node(d, state.labels.get(node_name(d.name), {}), state.cordoned) for d in devices]
        forget_gone_nodes(state, {node.name for node in found})
        return found

    async def _snapshot(self) -> cap.ClusterSnapshot:
        state, found = self._state(), await self._nodes()
        return cap.ClusterSnapshot([n.info() for n in found], pod_infos(state))

    def _delete(self, objects: list[dict[str, Any]]) -> dict[str, Any]:
        state, results = self._state(), []
        for obj in objects:
            key = key_of(obj)
            gone = state.objects.pop(key, None)
            drop_pods(state, key)
            results.append(f"{key[0]}/{key[2]} {'deleted' if gone is not None else 'not found'}")
        return {"action": "delete", "objects": results}


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


def site_for_center(center: Center, box: SecretBox, session: AsyncSession, cluster_id: str | None = None) -> Site:
    """The client to a center's site: the agent over HTTP, or — only for a center marked simulated — the
    in-memory simulated site. A real center never gets the simulated one."""
    site: Site
    if center.simulated:
        site = SimulatedSiteClient(center, session, cluster_id)
    else:
        # An https agent with nothing pinned is pinned when the client is entered, before anything is sent.
        site = SiteClient.for_center(center, box, settle=lambda: ensure_pinned(session, center))
    return AuditedSite(site, center.orgid, center.id, cluster_id or "", sessions=session)


__all__ = ["SimulatedSiteClient", "forget", "node_name", "site_for_center"]
