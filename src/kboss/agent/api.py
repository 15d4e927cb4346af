"""The site agent's routes: the spec's nine /pcapi endpoints (envelope {"status","info","data"}) and native ones.

Every call names its target (SSH account or kubeconfig); the agent keeps no state beyond known host keys.
Routes parse and delegate; nothing reaches a machine or a cluster before every parameter has been validated.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from lightkube import ALL_NS
from lightkube.resources.core_v1 import Node, Pod

from kboss.agent import targets
from kboss.agent.access import SiteState, open_cluster
from kboss.agent.auth import check_basic_auth
from kboss.agent.probe import probe
from kboss.agent.provision import RESET, ProvisionParams, run_step
from kboss.errors import CommandFailed, InvalidParameter
from kboss.kube import apply as kube_apply
from kboss.kube import capacity, metrics, nodes, views
from kboss.kube.client import api_errors
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.manifests import build_objects, object_refs
from kboss.ssh import SshTarget, connect
from kboss.wire import required
from kboss.wire.errors import envelope
from kboss.wire.jsonresp import EnvelopeResponse
from kboss.wire.params import Params

PCAPI = "/pcapi/api/v1/cluster/common"
NATIVE = "/pcapi/api/v1/native"
router = APIRouter(include_in_schema=False)


async def site_state(request: Request, params: Params) -> SiteState:
    """The agent's state, once the caller is authenticated and the document's required parameters are there."""
    site: SiteState = request.app.state.site
    check_basic_auth(request, site.user, site.password)
    required.check(request.url.path, params)
    return site


Site = Annotated[SiteState, Depends(site_state)]


def done(info: str, data: Any) -> JSONResponse:
    return envelope(True, info, data, key="info")


@router.api_route(f"{PCAPI}/get_cluster_pods", methods=["GET", "POST"])
async def get_cluster_pods(site: Site, params: Params) -> JSONResponse:
    """The spec's rows plus `pod_cpu_usage` / `pod_memory_usage` from the metrics API (`-` without one)."""
    access = targets.cluster_access(params)
    async with open_cluster(access, site) as client:
        pods = await views.list_pod_rows(client, now=dt.datetime.now(dt.UTC))
        usage = await metrics.pod_usage(client)
    rows = [{**row, **metrics.usage_columns(usage, row["pod_namespace"], row["pod_name"])} for row in pods]
    return done("operate success", {"total": len(rows), "rows": rows})


@router.api_route(f"{PCAPI}/get_cluster_nodes", methods=["GET", "POST"])
async def get_cluster_nodes(site: Site, params: Params) -> JSONResponse:
    access = targets.cluster_access(params)
    async with open_cluster(access, site) as client:
        rows = await views.list_node_rows(client, now=dt.datetime.now(dt.UTC))
    return done("operate success", {"total": len(rows), "rows": rows})


@router.api_route(f"{NATIVE}/cluster/nodes", methods=["GET", "POST"])
async def native_cluster_nodes(site: Site, params: Params) -> JSONResponse:
    """Nodes with labels, allocatable, capacity, taints, and what their pods request (`requested`, `pods`):
    what dashboards and the capacity check need."""
    access = targets.cluster_access(params)
    async with open_cluster(access, site) as client:
        rows = await views.list_node_details(client, now=dt.datetime.now(dt.UTC))
        with api_errors("读取 Pod"):
            pod_dicts = [pod.to_dict() async for pod in client.list(Pod, namespace=ALL_NS)]
    usage = _requested_by_node(pod_dicts)
    data = [{**row, **usage.get(row["node_name"], {"requested": {}, "pods": 0})} for row in rows]
    return done("operate success", {"total": len(data), "rows": data})


def _requested_by_node(pod_dicts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per node, the summed requests of its non-terminated pods as the scheduler counts them (quantity strings,
    cpu in millicores) and how many such pods it runs."""
    totals: dict[str, dict[str, int]] = {}
    counts: dict[str, int] = {}
    for pod in map(capacity.PodInfo.from_api, pod_dicts):
        if not pod.occupies_node:
            continue
        node = totals.setdefault(pod.node_name, {})
        counts[pod.node_name] = counts.get(pod.node_name, 0) + 1
        for resource, amount in pod.requests.items():
            node[resource] = node.get(resource, 0) + amount
    return {
        name: {
            "requested": {res: f"{v}m" if res == capacity.CPU else str(v) for res, v in resources.items()},
            "pods": counts[name],
        }
        for name, resources in totals.items()
    }


@router.post(f"{PCAPI}/node_label_opt")
async def node_label_opt(site: Site, params: Params) -> JSONResponse:
    node = _node(params, "worker_node", "node_name")
    opt = _one_of(params, "opt", ("label", "unlabel"))
    key, value = nodes.parse_label(targets.text(params, "label"))
    if opt == "label" and value is None:
        raise InvalidParameter("label", "绑定标签应为 key=value 形式")
    access = targets.cluster_access(params)
    async with open_cluster(access, site) as client:
        if opt == "label":
            labels = await nodes.label_node(client, node, key, value or "")
        else:
            labels = await nodes.unlabel_node(client, node, key, value)
    return done("节点绑定标签成功" if opt == "label" else "节点解绑标签成功", {"node_labels": labels})


@router.post(f"{PCAPI}/node_state_switch")
async def node_state_switch(site: Site, params: Params) -> JSONResponse:
    node = _node(params, "node_name", "worker_node")
    state = _one_of(params, "state", ("cordon", "uncordon"))
    drain = targets.flag(params, "drain", "darin")
    if drain and state == "uncordon":
        raise InvalidParameter("drain", "恢复调度 (uncordon) 时不能驱逐")
    timeout = _seconds(params, "timeout", 300)
    access = targets.cluster_access(params)
    data: dict[str, Any] = {"state": state, "drain": drain}
    async with open_cluster(access, site) as client:
        if drain:
            result = await nodes.drain(client, node, timeout)
            data["report"] = result.as_dict()
            if not result.ok:
                return envelope(False, "switch node failed", data, key="info")
        elif state == "cordon":
            await nodes.cordon(client, node)
        else:
            await nodes.uncordon(client, node)
    return done("switch node success", data)


@router.post(f"{PCAPI}/delete_cluster_node")
async def delete_cluster_node(site: Site, params: Params) -> JSONResponse:
    node = _node(params, "node_name", "worker_node")
    force = targets.flag(params, "force")
    worker = targets.ssh_target(params, "worker_", required=False)
    timeout = _seconds(params, "timeout", 300)
    access = targets.cluster_access(params)
    data: dict[str, Any] = {"node_name": node, "force": force}
    async with open_cluster(access, site) as client:
        result = await nodes.drain(client, node, timeout, force=force)
        data["report"] = result.as_dict()
        if not result.ok and not force:
            return envelope(False, "delete node failed: drain did not complete", data, key="info")
        await nodes.delete_node(client, node)
    if worker is not None:
        data["reset"] = await reset_machine(site, worker)
    return done("delete node success", data)


async def reset_machine(site: SiteState, worker: SshTarget) -> str:
    """The provisioning `reset` step: kubeadm reset, CNI configuration removed, containerd restarted."""
    async with connect(worker, known_hosts=site.known_hosts, options=site.ssh_options) as ssh:
        result = await run_step(ssh, RESET, ProvisionParams.from_mapping({}, "worker", host=worker.host))
    if not result.ok:
        raise CommandFailed("reset", 1, result.error or result.output[-500:])
    return result.output[-500:]


@router.post(f"{PCAPI}/yaml_apply_delete")
async def yaml_apply_delete(site: Site, params: Params) -> JSONResponse:
    action = _one_of(params, "action", ("apply", "delete"), default="apply")
    raw_yaml = targets.text(params, "yaml", required=False)
    if raw_yaml:
        objects = kube_apply.parse_manifests(raw_yaml)
    else:
        spec = InstanceSpec.from_params(params)
        objects = build_objects(spec) if action == "apply" else object_refs(spec)
    access = targets.cluster_access(params)
    async with open_cluster(access, site) as client:
        if action == "apply":
            results = await kube_apply.apply_objects(client, objects)
        else:
            results = await kube_apply.delete_objects(client, objects)
    return done("operate success", {"action": action, "objects": [str(r) for r in results]})


@router.api_route(f"{PCAPI}/determine_accommodat", methods=["GET", "POST"])
async def determine_accommodat(site: Site, params: Params) -> JSONResponse:
    products = capacity.parse_products(targets.text(params, "resources"))
    access = targets.cluster_access(params)
    snapshot = await _snapshot(access, site)
    # The spec's answer is the bare list of products no node can host.
    return EnvelopeResponse(capacity.unplaceable_ids(products, snapshot))


@router.api_route(f"{NATIVE}/capacity", methods=["GET", "POST"])
async def native_capacity(site: Site, params: Params) -> JSONResponse:
    products = capacity.parse_products(targets.text(params, "resources"))
    access = targets.cluster_access(params)
    snapshot = await _snapshot(access, site)
    fits = [fit.as_dict() for fit in capacity.assess(products, snapshot)]
    return done("operate success", {"total": len(fits), "rows": fits})


async def _snapshot(access: targets.ClusterAccess, site: SiteState) -> capacity.ClusterSnapshot:
    async with open_cluster(access, site) as client:
        with api_errors("读取节点和 Pod"):
            node_dicts = [node.to_dict() async for node in client.list(Node)]
            pod_dicts = [pod.to_dict() async for pod in client.list(Pod, namespace=ALL_NS)]
    return capacity.ClusterSnapshot.from_api(node_dicts, pod_dicts)


@router.post(f"{NATIVE}/probe")
async def native_probe(site: Site, params: Params) -> JSONResponse:
    """Log into a machine and report its facts (OS, CPU, memory, disks, GPUs, swap, kubelet)."""
    target = targets.ssh_target(params)
    assert target is not None
    async with connect(target, known_hosts=site.known_hosts, options=site.ssh_options) as ssh:
        facts = await probe(ssh)
    return done("operate success", facts.model_dump())


def _node(params: dict[str, Any], name: str, alias: str) -> str:
    """The node the call names, under `name` or `alias`, checked as a Kubernetes node name."""
    return nodes.validate_node_name(targets.text(params, name, alias), name)


def _one_of(params: dict[str, Any], name: str, choices: tuple[str, str], default: str = "") -> str:
    """The parameter `name`, one of the two `choices`; absent, `default` if there is one (else it is missing)."""
    value = targets.text(params, name, required=not default) or default
    if value not in choices:
        raise InvalidParameter(name, f"应为 {choices[0]} 或 {choices[1]}")
    return value


def _seconds(params: dict[str, Any], name: str, default: int) -> int:
    raw = targets.text(params, name, required=False)
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 3600:
        raise InvalidParameter(name, "应为 1-3600 的秒数")
    return int(raw)
