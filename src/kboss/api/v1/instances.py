"""Native routes for instances, live boards, node labels, cordon/uncordon and capacity. Same services as the
compat routes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, Field

from kboss.api.deps import CtxDep
from kboss.common.listing import MAX_PAGE, MAX_ROWS, Page
from kboss.instances import billing, boards, buy
from kboss.instances import service as instances
from kboss.instances.records import get_instance, instance_health, instance_row, list_instances, usernames
from kboss.kube.instance_spec import MAX_REPLICAS

router = APIRouter(prefix="/api/v1", tags=["instances"])
JsonBody = Body(default_factory=dict)


class ScaleInput(BaseModel):
    replicas: int = Field(ge=1, le=MAX_REPLICAS)


class LabelInput(BaseModel):
    label: str = Field(min_length=1, max_length=400, description="key=value")


class ScheduleInput(BaseModel):
    # Loosely typed on purpose: the service checks it and names it in Chinese when bad, as everywhere else.
    state: Any = Field(None, description="cordon (禁止调度) or uncordon (恢复调度)")
    drain: Any = Field(None, description="refused: a drain is an operation, POST .../nodes/{node}/drain")


class CapacityInput(BaseModel):
    resources: list[dict[str, Any]] | dict[str, Any] | str
    labels: list[str] | str = Field(default_factory=list, description="node labels every product needs")


async def _row(ctx: CtxDep, instance: Any, reveal: bool = False) -> dict[str, Any]:
    names = await usernames(ctx, {instance.userid})
    return instance_row(instance, ctx, names, await instance_health(ctx, instance), reveal)


@router.get("/clusters/{cluster_id}/instances")
async def list_cluster_instances(
    ctx: CtxDep,
    cluster_id: str,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    rows: int = Query(100, ge=1, le=MAX_ROWS),
    sort: str = "",
    reveal: bool = False,
) -> dict[str, Any]:
    return await list_instances(ctx, None, cluster_id, Page(page, rows, sort), reveal)


@router.post("/clusters/{cluster_id}/instances", status_code=201)
async def create_instance(ctx: CtxDep, cluster_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    instance = await instances.create_instance(ctx, {**body, "clusterid": cluster_id})
    return await _row(ctx, instance)


@router.get("/instances/{instance_id}")
async def read_instance(ctx: CtxDep, instance_id: str, reveal: bool = False) -> dict[str, Any]:
    return await _row(ctx, await get_instance(ctx, instance_id), reveal)


@router.patch("/instances/{instance_id}")
async def update_instance(ctx: CtxDep, instance_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await _row(ctx, await instances.update_instance(ctx, {**body, "id": instance_id}))


@router.post("/instances/{instance_id}/scale")
async def scale_instance(ctx: CtxDep, instance_id: str, body: ScaleInput) -> dict[str, Any]:
    params = {"id": instance_id, "source_replicasetnum": body.replicas}
    return await _row(ctx, await instances.update_instance(ctx, params))


@router.delete("/instances/{instance_id}", status_code=204)
async def delete_instance(ctx: CtxDep, instance_id: str, force: bool = False) -> None:
    await instances.delete_instance(ctx, instance_id, force=force)


@router.get("/clusters/{cluster_id}/pods")
async def cluster_pods(ctx: CtxDep, cluster_id: str) -> dict[str, Any]:
    return await boards.pod_board(ctx, None, cluster_id)


@router.get("/clusters/{cluster_id}/nodes")
async def cluster_nodes(ctx: CtxDep, cluster_id: str) -> dict[str, Any]:
    return await boards.node_board(ctx, None, cluster_id)


@router.put("/clusters/{cluster_id}/nodes/{node}/labels")
async def label_node(ctx: CtxDep, cluster_id: str, node: str, body: LabelInput) -> dict[str, Any]:
    params = {"clusterid": cluster_id, "worker_node": node, "label": body.label, "opt": "label"}
    return await boards.set_node_label(ctx, params)


@router.delete("/clusters/{cluster_id}/nodes/{node}/labels/{key:path}")
async def unlabel_node(ctx: CtxDep, cluster_id: str, node: str, key: str) -> dict[str, Any]:
    params = {"clusterid": cluster_id, "worker_node": node, "label": key, "opt": "unlabel"}
    return await boards.set_node_label(ctx, params)


@router.post("/clusters/{cluster_id}/nodes/{node}/schedule")
async def schedule_node(ctx: CtxDep, cluster_id: str, node: str, body: ScheduleInput) -> dict[str, Any]:
    """Cordon or uncordon a node, at once. Draining is an operation: `POST .../nodes/{node}/drain` (202)."""
    params = {"clusterid": cluster_id, "node_name": node, **body.model_dump()}
    return await boards.switch_node_state(ctx, params)


@router.post("/clusters/{cluster_id}/capacity")
async def capacity(ctx: CtxDep, cluster_id: str, body: CapacityInput) -> dict[str, Any]:
    """Which products can be deployed now, and per product why not: the scheduler's reasons on live data
    (`live`) and the catalog's stock (`stock`). `source` is `dynamic`, or `catalog` when the cluster is
    unreachable (`detail` says why)."""
    found = await buy.assess(ctx, {"clusterid": cluster_id, "resources": body.resources, "kyylabels": body.labels})
    return {
        "source": found.reason,
        "detail": found.detail,
        "unplaceable": found.unplaceable,
        "rows": [verdict.as_dict() for verdict in found.verdicts],
    }


@router.get("/instances/{instance_id}/order")
async def instance_order(ctx: CtxDep, instance_id: str) -> dict[str, Any]:
    """How a customer's instance is paid for: mode, price lines, charged, refunded, start and (prepaid) end."""
    return await billing.instance_order(ctx, instance_id)


@router.post("/instances/{instance_id}/renew")
async def renew_instance(ctx: CtxDep, instance_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """`{"duration": 1, "duration_unit": "天"}` more of a prepaid instance, charged now at today's prices."""
    return await billing.renew(ctx, instance_id, body)
