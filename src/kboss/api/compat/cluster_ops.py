"""Compat routes that build and dismantle clusters: new cluster, new worker, remove worker, remove cluster.

Each starts a durable operation, then waits for it up to `compat_wait_seconds`: the spec's callers expect the
finished answer (`msg` with the join command, `data` with the device and cluster ids). When the operation takes
longer, the answer is `status: true` with the operation's id and state, to follow at /api/v1/operations/{id};
a failed operation answers `status: false` with its error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sqlalchemy import select

from kboss.api.compat.registry import compat
from kboss.clusters import ops as cluster_ops
from kboss.clusters.ops import Started
from kboss.common.context import Ctx
from kboss.db.models import Cluster, Device
from kboss.db.models_ops import Operation
from kboss.operations.service import wait_operation
from kboss.operations.states import SUCCEEDED, TERMINAL
from kboss.settings import get_settings
from kboss.wire.errors import envelope, ok

CPCC = "/dev/cpcc"


@dataclass
class CompatWait:
    """Set by the application at start-up; until then the process settings apply. (Workers need no waking:
    starting an operation notifies them on commit, `kboss.db.notify`.)"""

    seconds: float | None = None


WAIT = CompatWait()


def configure(seconds: float | None) -> None:
    """How long these endpoints wait for their operation (None: the process settings)."""
    WAIT.seconds = seconds


async def _run(ctx: Ctx, started: Started) -> Operation:
    seconds = WAIT.seconds if WAIT.seconds is not None else get_settings().compat_wait_seconds
    op = await wait_operation(ctx, started.operation.id, seconds)
    if op.state in TERMINAL and op.state != SUCCEEDED:
        # Cancelled or timed out: free the machine now rather than at the next request.
        await cluster_ops.release_abandoned(ctx.session, ctx.orgid)
    return op


async def _device_data(ctx: Ctx, started: Started, op: Operation) -> dict[str, Any]:
    """The device as it is now (spec fields), and the operation."""
    row = (
        await ctx.session.execute(
            select(Device.node_status, Device.clusterid, Device.role).where(Device.id == started.device_id)
        )
    ).first()
    node_status, clusterid, role = row if row else (0, None, "")
    return {
        "id": started.device_id, "node_status": str(node_status), "clusterid": clusterid or started.cluster_id,
        "cpcid": started.center_id, "role": role, **_operation(op),
    }  # fmt: skip


def _operation(op: Operation) -> dict[str, Any]:
    return {"operation_id": op.id, "operation_state": op.state, "current_step": op.current_step}


async def _join_command(ctx: Ctx, cluster_id: str) -> str:
    sealed = await ctx.session.scalar(select(Cluster.clusterjoin).where(Cluster.id == cluster_id))
    return ctx.box.open(sealed) if sealed else ""


def _unfinished(op: Operation, what: str, data: dict[str, Any]) -> JSONResponse:
    if op.state in TERMINAL:
        return envelope(False, f"算力中心服务操作失败: {op.last_error or op.state}", data)
    step = f", 当前步骤 {op.current_step}" if op.current_step else ""
    message = f"{what}已受理,仍在执行 (操作 {op.id}, 状态 {op.state}{step});进度见 /api/v1/operations/{op.id}"
    return ok(message, data)


@compat(f"{CPCC}/cpccluster/new_cluster.dspy")
async def new_cluster(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    started = await cluster_ops.start_create_cluster(ctx, params)
    op = await _run(ctx, started)
    data = await _device_data(ctx, started, op)
    if op.state == SUCCEEDED:
        return ok(f"操作成功!\n加入集群凭证: {await _join_command(ctx, started.cluster_id)}", data)
    return _unfinished(op, "新建算力集群", data)


@compat(f"{CPCC}/cpcworker/new_cpcworker.dspy")
async def new_cpcworker(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    started = await cluster_ops.start_join_worker(ctx, params)
    op = await _run(ctx, started)
    data = await _device_data(ctx, started, op)
    if op.state == SUCCEEDED:
        return ok(f"新增工作节点成功!\n加入集群凭证: {await _join_command(ctx, started.cluster_id)}", data)
    return _unfinished(op, "新增工作节点", data)


@compat(f"{CPCC}/cpcworker/delete_cpcworker.dspy")
async def delete_cpcworker(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    started = await cluster_ops.start_remove_worker(ctx, params)
    op = await _run(ctx, started)
    data = await _device_data(ctx, started, op)
    if op.state == SUCCEEDED:
        return ok("移除工作节点成功", {**data, "clusterid": None})
    return _unfinished(op, "移除工作节点", data)


@compat("/computing/cpcluster_delete.dspy")
async def cpcluster_delete(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    started = await cluster_ops.start_remove_cluster(ctx, params)
    op = await _run(ctx, started)
    data = {"id": started.cluster_id, "cpcid": started.center_id, **_operation(op)}
    if op.state == SUCCEEDED:
        return ok("移除算力集群成功", data)
    return _unfinished(op, "移除算力集群", data)
