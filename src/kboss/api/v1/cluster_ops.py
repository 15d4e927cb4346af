"""Native routes that build and dismantle clusters, and drain a node. Each answers 202 with the operation to follow at
/api/v1/operations/{id}; the checks are those of the compat endpoints (`kboss.clusters.ops`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body

from kboss.api.deps import CtxDep
from kboss.catalog.clusters import get_cluster
from kboss.clusters import drain as cluster_ops_drain
from kboss.clusters import ops as cluster_ops
from kboss.clusters.ops import Started
from kboss.operations.service import operation_summary

router = APIRouter(prefix="/api/v1/clusters", tags=["cluster operations"])
JsonBody = Body(default_factory=dict)


def _accepted(started: Started) -> dict[str, Any]:
    return {**operation_summary(started.operation), "device_id": started.device_id}


def _flat(body: dict[str, Any]) -> dict[str, Any]:
    """Provisioning options may come at the top level or under `options`."""
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    return {**(options or {}), **{k: v for k, v in body.items() if k != "options"}}


@router.post("", status_code=202)
async def create_cluster(ctx: CtxDep, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """Body: cpcid, device_id (or ctl_nodeid), name (or cluster_name), cluster_type (0), enable_date,
    export_date, and provisioning options (install_mode, bundle, kubernetes_version, gpu, ...)."""
    return _accepted(await cluster_ops.start_create_cluster(ctx, _flat(body)))


@router.post("/{cluster_id}/workers", status_code=202)
async def join_worker(ctx: CtxDep, cluster_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """Body: device_id (or worker_nodeid), and provisioning options."""
    cluster = await get_cluster(ctx, cluster_id, "cluster_id")
    params = {**_flat(body), "cpcid": cluster.cpcid, "clusterid": cluster.id}
    return _accepted(await cluster_ops.start_join_worker(ctx, params))


@router.delete("/{cluster_id}/workers/{device_id}", status_code=202)
async def remove_worker(ctx: CtxDep, cluster_id: str, device_id: str, force: bool = False) -> dict[str, Any]:
    cluster = await get_cluster(ctx, cluster_id, "cluster_id")
    params = {"cpcid": cluster.cpcid, "clusterid": cluster.id, "worker_nodeid": device_id, "force": str(force)}
    return _accepted(await cluster_ops.start_remove_worker(ctx, params))


@router.delete("/{cluster_id}", status_code=202)
async def remove_cluster(ctx: CtxDep, cluster_id: str, force: bool = False) -> dict[str, Any]:
    params = {"id": cluster_id, "force": str(force)}
    return _accepted(await cluster_ops.start_remove_cluster(ctx, params))


@router.post("/{cluster_id}/nodes/{node}/drain", status_code=202)
async def drain_node(ctx: CtxDep, cluster_id: str, node: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """Cordon the node, then evict its pods (disruption budgets honoured, DaemonSet pods left). Body, optional:
    `timeout_seconds` (1-3600, default 300), how long evictions may wait. A drain that leaves pods behind fails,
    naming each pod and why; the node stays cordoned; a retry evicts again. No `force` (see `cluster_ops_drain`)."""
    return _accepted(await cluster_ops_drain.start_drain_node(ctx, cluster_id, node, body))
