"""Compat routes that build and dismantle clusters: new cluster, new worker, remove worker, remove cluster.

Each starts a durable operation, then waits for it up to the application's `compat_wait_seconds`
(`AppState.compat_wait_seconds`): the spec's callers expect the finished answer (`msg` with the join command,
`data` with the device and cluster ids). When the operation takes longer, the answer is `status: true` with the
operation's id and state, to follow at /api/v1/operations/{id}; a failed operation answers `status: false` with its
error. Workers need no waking: starting an operation notifies them on commit (`kboss.db.notify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse

from kboss.api.compat.registry import compat
from kboss.api.deps import request_state
from kboss.audit import trail
from kboss.clusters import ops as cluster_ops
from kboss.clusters import reads
from kboss.common.context import Ctx
from kboss.db.models_ops import Operation
from kboss.operations.states import SUCCEEDED, TERMINAL
from kboss.wire.errors import envelope, ok

CPCC = "/dev/cpcc"


@dataclass(frozen=True)
class Endpoint:
    """One endpoint's operation and wording."""

    start: reads.Starter
    what: str  # names the operation in an answer given before it ended
    done: str  # the answer once it succeeded
    with_join: bool = False  # a successful answer shows the cluster's join command
    leaves_cluster: bool = False  # a successful answer shows the device outside any cluster


NEW_CLUSTER = Endpoint(cluster_ops.start_create_cluster, "新建算力集群", "操作成功!", with_join=True)
NEW_WORKER = Endpoint(cluster_ops.start_join_worker, "新增工作节点", "新增工作节点成功!", with_join=True)
REMOVE_WORKER = Endpoint(cluster_ops.start_remove_worker, "移除工作节点", "移除工作节点成功", leaves_cluster=True)
REMOVE_CLUSTER = Endpoint(cluster_ops.start_remove_cluster, "移除算力集群", "移除算力集群成功")


def _operation(op: Operation) -> dict[str, Any]:
    return {"operation_id": op.id, "operation_state": op.state, "current_step": op.current_step}


def _data(settled: reads.Settled) -> dict[str, Any]:
    """The device as it is now (spec fields), or the cluster when no single device is concerned; and the operation."""
    started, device = settled.started, settled.device
    if device is None:
        return {"id": started.cluster_id, "cpcid": started.center_id, **_operation(settled.operation)}
    return {
        "id": started.device_id, "node_status": str(device.node_status),
        "clusterid": device.clusterid or started.cluster_id, "cpcid": started.center_id, "role": device.role,
        **_operation(settled.operation),
    }  # fmt: skip


def _unfinished(op: Operation, what: str, data: dict[str, Any]) -> JSONResponse:
    if op.state in TERMINAL:
        return envelope(False, f"算力中心服务操作失败: {op.last_error or op.state}", data)
    step = f", 当前步骤 {op.current_step}" if op.current_step else ""
    message = f"{what}已受理,仍在执行 (操作 {op.id}, 状态 {op.state}{step});进度见 /api/v1/operations/{op.id}"
    return ok(message, data)


async def _answer(ctx: Ctx, params: dict[str, Any], endpoint: Endpoint) -> JSONResponse:
    seconds = request_state().compat_wait_seconds
    settled = await reads.start_and_wait(ctx, endpoint.start, params, seconds, with_join=endpoint.with_join)
    data = _data(settled)
    if settled.operation.state != SUCCEEDED:
        return _unfinished(settled.operation, endpoint.what, data)
    if endpoint.leaves_cluster:
        data["clusterid"] = None
    if endpoint.with_join:
        if settled.join_command:  # the spec answers the join command: a secret shown
            trail.note_reveal("cluster", settled.operation.cluster_id or "", ["clusterjoin"])
        return ok(f"{endpoint.done}\n加入集群凭证: {settled.join_command}", data)
    return ok(endpoint.done, data)


@compat(f"{CPCC}/cpccluster/new_cluster.dspy")
async def new_cluster(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    return await _answer(ctx, params, NEW_CLUSTER)


@compat(f"{CPCC}/cpcworker/new_cpcworker.dspy")
async def new_cpcworker(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    return await _answer(ctx, params, NEW_WORKER)


@compat(f"{CPCC}/cpcworker/delete_cpcworker.dspy")
async def delete_cpcworker(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    return await _answer(ctx, params, REMOVE_WORKER)


@compat("/computing/cpcluster_delete.dspy")
async def cpcluster_delete(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    return await _answer(ctx, params, REMOVE_CLUSTER)
