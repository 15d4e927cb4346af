"""Live boards of a cluster (the spec's get_cpcpod / get_cpcworker), node labels (setup_cpclabel), and cordoning
and uncordoning a node.

Everything here is read from the live cluster through the center's site agent; a cluster that cannot be reached
is an error with the agent's message, never an empty board. Node figures follow `kubectl describe node`:
`node_cpurate` is what the pods on the node request over what it can allocate, and `available_*` is allocatable
minus the requests of its non-terminated pods (the agent counts them the way the scheduler does). Pod figures
`pod_cpurate` / `pod_memrate` are what the pod uses now, as the metrics API reports it through the agent
(`0.004核`, `2.539Mi` as in the spec), and `-` when the cluster has no metrics API.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from kboss.common.context import Ctx
from kboss.db.models_instances import Instance
from kboss.errors import InvalidParameter, NotFound, UpstreamError
from kboss.instances.health import owns
from kboss.instances.records import end_reads, find_owned_cluster, instances_in_cluster, kubeconfig_of, site_for
from kboss.kube.capacity import GPU_MODEL_LABEL_KEYS, GPU_RESOURCE
from kboss.kube.labels import parse_node_label, validate_label_key
from kboss.kube.nodes import validate_node_name
from kboss.kube.quantity import cpu_millicores, format_bytes, memory_bytes, parse_quantity
from kboss.sites.protocol import Site

NONE = "<none>"
NO_METRICS = "-"  # the cluster has no metrics API (or it did not report the pod): usage is unknown, not zero
STATUS_TEXT = {"Ready": "已就绪", "NotReady": "未就绪", "Unknown": "未知"}
CONTROL_ROLES = frozenset({"control-plane", "master"})
# Labels Kubernetes and its add-ons put on every node say nothing an operator chose; the board hides them.
_SYSTEM_LABEL_DOMAINS = ("kubernetes.io", "k8s.io")
_GIB = Decimal(2**30)
_MIB = Decimal(2**20)
_THOUSANDTH = Decimal("0.001")
NODE_CHECK_SECONDS = 15.0  # a node list, before changing a node: a person (or a request) is waiting


# ---------------------------------------------------------------------------------------------
# Pods


async def pod_board(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> dict[str, Any]:
    """Every pod for an admin; a member sees the pods of their own instances only."""
    center, cluster = await find_owned_cluster(ctx, cpcid, clusterid)
    mine_only = not ctx.principal.is_admin
    instances = await instances_in_cluster(ctx, cluster.id, mine_only=mine_only)
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    async with site_for(ctx, center, cluster) as site:
        pods = await site.cluster_pods(kubeconfig)
    rows = []
    for pod in pods:
        owner = _instance_of(pod, instances)
        if owner is None and mine_only:
            continue
        rows.append(pod_row(pod, owner))
    return {"total": len(rows), "rows": rows}


def _instance_of(pod: Mapping[str, Any], instances: Iterable[Instance]) -> Instance | None:
    return next((instance for instance in instances if owns(instance, pod)), None)


def _none_as(value: Any, text: str) -> Any:
    return text if value in (None, "", NONE) else value


def pod_row(pod: Mapping[str, Any], instance: Instance | None) -> dict[str, Any]:
    """The spec's pod row. Limits come from the instance's parameters (requests equal limits there)."""
    row = {key: pod.get(key, "") for key in ("pod_namespace", "pod_name", "pod_ready", "pod_running", "pod_restart")}
    row.update(
        pod_age=pod.get("pod_age", ""),
        pod_ip=_none_as(pod.get("pod_ip"), "无"),
        pod_node=_none_as(pod.get("pod_node"), "无"),
        pod_nominated_node=_none_as(pod.get("pod_nominated_node"), "无"),
        pod_cpurate=_usage(pod.get("pod_cpu_usage"), Decimal(1), "核"),
        pod_memrate=_usage(pod.get("pod_memory_usage"), _MIB, "Mi"),
        pod_readiness_gates=_readiness_gates(pod.get("pod_readiness_gates")),
    )
    row.update(_limits(instance))
    row.update(instance_id=instance.id if instance else "", source_name=instance.source_name if instance else "")
    return row


def _readiness_gates(summary: Any) -> list[str]:
    """The document types this field [string] on the board: kubectl's summary ("1/2") as one item, none empty."""
    if not summary or summary in ("<none>", "无"):
        return []
    return [str(summary)]


def _usage(quantity: Any, unit: Decimal, suffix: str) -> str:
    """What the agent measured (`4m`, `2600Ki`) as the spec shows it: `0.004核`, `2.539Mi`; `-` when unknown
    (no metrics API, the pod not reported yet, or an agent too old to read metrics)."""
    if not isinstance(quantity, str) or quantity in ("", NO_METRICS):
        return NO_METRICS
    try:
        amount = parse_quantity(quantity, "usage")
    except InvalidParameter:
        return NO_METRICS
    return f"{(amount / unit).quantize(_THOUSANDTH, rounding=ROUND_HALF_UP)}{suffix}"


def _limits(instance: Instance | None) -> dict[str, str]:
    if instance is None:
        return {"pod_gpu": NO_METRICS, "pod_cpu_limit": "-", "pod_memory_limit": "-", "pod_gpu_limit": "-"}
    millicores = cpu_millicores(instance.source_cpurate, "source_cpurate")
    cpu = str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"
    return {
        # With no GPU asked for, a pod certainly uses none; with some, how busy they are needs metrics.
        "pod_gpu": "0" if not instance.source_gpu else NO_METRICS,
        "pod_cpu_limit": cpu,
        "pod_memory_limit": format_bytes(memory_bytes(instance.source_memrate, "source_memrate")),
        "pod_gpu_limit": str(instance.source_gpu),
    }


# ---------------------------------------------------------------------------------------------
# Nodes


async def node_details(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> list[dict[str, Any]]:
    center, cluster = await find_owned_cluster(ctx, cpcid, clusterid)
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    async with site_for(ctx, center, cluster) as site:
        nodes = await site.cluster_nodes(kubeconfig)
    if nodes and "requested" not in nodes[0]:
        raise UpstreamError("站点服务版本过旧: 节点列表缺少 requested (各节点 Pod 的资源请求),请升级站点服务")
    return nodes


async def node_board(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> dict[str, Any]:
    """The members of a cluster, for the operator: admins only."""
    ctx.require_admin()
    rows = [node_row(node) for node in await node_details(ctx, cpcid, clusterid)]
    return {"total": len(rows), "rows": rows}


def node_row(node: Mapping[str, Any]) -> dict[str, Any]:
    allocatable, requested = node.get("allocatable") or {}, node.get("requested") or {}
    cpu, memory, gpu = (free_amount(allocatable, requested, res) for res in ("cpu", "memory", GPU_RESOURCE))
    row = {key: node.get(key, "") for key in ("node_name", "node_age", "node_version", "node_internalip")}
    row.update(
        node_status=_status_text(node),
        node_role=_role_text(str(node.get("node_role", ""))),
        node_externalip=_none_as(node.get("node_externalip"), "未分配"),
        node_osversion=node.get("node_osversion", ""),
        node_kernelversion=node.get("node_kernelversion", ""),
        node_containeruntime=node.get("node_containeruntime", ""),
        node_labels=visible_labels(node.get("labels") or {}),
        node_cpurate=_percent(cpu),
        node_memrate=_percent(memory),
        node_gpu=_percent(gpu) if gpu[0] else "0%",
        available_cpu=f"{cpu[1]:.2f}核",
        available_memory=f"{memory[1] / _GIB:.2f}Gi",
        available_gpu=int(gpu[1]),
        node_schedulable=not node.get("unschedulable", False),
        node_gpu_model=gpu_model_of(node.get("labels") or {}),
        node_pods=node.get("pods", 0),
    )
    return row


def free_amount(allocatable: Mapping[str, Any], requested: Mapping[str, Any], resource: str) -> tuple[Decimal, Decimal]:
    """(allocatable, allocatable − requested, never below zero) in cores, bytes or cards."""
    total = parse_quantity(str(allocatable.get(resource, "0")), resource)
    used = parse_quantity(str(requested.get(resource, "0")), resource)
    return total, max(total - used, Decimal(0))


def _percent(amounts: tuple[Decimal, Decimal]) -> str:
    total, free = amounts
    if total <= 0:
        return "0%"
    return f"{float((total - free) / total * 100):.1f}%"


def _status_text(node: Mapping[str, Any]) -> str:
    status = str(node.get("node_status", "Unknown"))
    text = STATUS_TEXT.get(status.split(",")[0], status)
    return f"{text},禁止调度" if "SchedulingDisabled" in status else text


def _role_text(roles: str) -> str:
    return "控制节点" if CONTROL_ROLES & set(roles.split(",")) else "工作节点"


def visible_labels(labels: Mapping[str, str]) -> list[str]:
    """`key=value` of the labels an operator set (`kyy-gpu=false`), without Kubernetes' own."""
    shown = []
    for key, value in sorted(labels.items()):
        domain = key.rpartition("/")[0]
        if any(domain == d or domain.endswith(f".{d}") for d in _SYSTEM_LABEL_DOMAINS):
            continue
        shown.append(f"{key}={value}")
    return shown


def gpu_model_of(labels: Mapping[str, str]) -> str:
    return next((labels[key] for key in GPU_MODEL_LABEL_KEYS if key in labels), "")


# ---------------------------------------------------------------------------------------------
# Node labels


def _checked_label(label: Any, opt: str) -> str:
    """A catalog-style node label `key=value` to bind; to unbind, `key`, `key=value` or kubectl's `key-`."""
    text = str(label or "").strip()
    if not text:
        raise InvalidParameter("label", "缺少该参数")
    if opt == "label":
        key, value = parse_node_label(text, "label")
        return f"{key}={value}"
    if "=" in text:
        # `key=value` unbinds only when the node's value matches: the site checks it, so it is passed whole.
        key, value = parse_node_label(text, "label")
        return f"{key}={value}"
    return validate_label_key(text.removesuffix("-"), "label")


async def set_node_label(ctx: Ctx, params: Mapping[str, Any]) -> dict[str, Any]:
    """Bind or unbind one label on one node; everything is checked before anything reaches the cluster."""
    ctx.require_admin()
    opt = str(params.get("opt") or "").strip()
    if opt not in ("label", "unlabel"):
        raise InvalidParameter("opt", "应为 label (绑定) 或 unlabel (解绑)")
    node = validate_node_name(str(params.get("worker_node") or params.get("node_name") or ""), "worker_node")
    label = _checked_label(params.get("label"), opt)
    center, cluster = await find_owned_cluster(ctx, params.get("cpcid"), params.get("clusterid"))
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    async with site_for(ctx, center, cluster) as site:
        answer = await site.label_node(kubeconfig, node, label, opt)
    return {
        "clusterid": cluster.id,
        "cpcid": cluster.cpcid,
        "label": label,
        "opt": opt,
        "orgid": ctx.orgid,
        "worker_node": node,
        "node_labels": visible_labels(answer.get("node_labels") or {}),
    }


# ---------------------------------------------------------------------------------------------
# Cordon, uncordon (a drain is an operation: `cluster_ops_drain`)


async def switch_node_state(ctx: Ctx, params: Mapping[str, Any]) -> dict[str, Any]:
    """Cordon or uncordon one node; everything is checked before anything reaches the cluster."""
    ctx.require_admin()
    state = str(params.get("state") or "").strip()
    if state not in ("cordon", "uncordon"):
        raise InvalidParameter("state", "应为 cordon (禁止调度) 或 uncordon (恢复调度)")
    if params.get("drain") not in (None, False, "", "0", "false"):
        # Refused rather than ignored: a caller asking for a drain here must not get a mere cordon.
        raise InvalidParameter("drain", "排空节点是一项操作: POST /api/v1/clusters/{id}/nodes/{node}/drain")
    node = validate_node_name(str(params.get("node_name") or params.get("worker_node") or ""), "node_name")
    center, cluster = await find_owned_cluster(ctx, params.get("cpcid"), params.get("clusterid"))
    kubeconfig = kubeconfig_of(ctx, cluster)
    await end_reads(ctx)
    async with site_for(ctx, center, cluster) as site:
        await require_node(site, kubeconfig, cluster.name, node)
        await site.switch_node(kubeconfig, node, state)
    return {"clusterid": cluster.id, "node_name": node, "state": state, "node_schedulable": state == "uncordon"}


async def require_node(site: Site, kubeconfig: str, cluster_name: str, node: str) -> None:
    """The agent would answer an unknown node with a bare upstream failure; ask first, so it is a clear 404."""
    if node not in {row.get("node_name") for row in await site.cluster_nodes(kubeconfig, NODE_CHECK_SECONDS)}:
        raise NotFound(f"集群 {cluster_name} 没有节点 {node}")
