"""Compat routes for the catalog: centers, devices, labels, cluster records, components, quotes, GPU stock.

Each handler only parses and calls a service; `registry` authenticates and dispatches (GET, POST or DELETE alike,
since the spec's front end uses either).
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from kboss.api.compat.registry import compat
from kboss.catalog import centers, clusters, components, devices, labels
from kboss.common.context import Ctx
from kboss.common.listing import page_from_params
from kboss.instances import buy
from kboss.wire.errors import envelope, ok
from kboss.wire.params import flag

CPCC = "/dev/cpcc"


def _id_only(record: Any, **extra: Any) -> dict[str, Any]:
    return {"id": record.id, **extra}


@compat(f"{CPCC}/cpclist/get_cpclist.dspy")
async def get_cpclist(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await centers.list_centers(ctx, page_from_params(params), flag(params, "reveal"))
    return ok("算力中心数据查询成功", data)


@compat(f"{CPCC}/cpclist/add_cpclist.dspy")
async def add_cpclist(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    center = await centers.add_center(ctx, params)
    return ok("新建算力中心成功", centers.center_row(center, ctx))


@compat(f"{CPCC}/cpclist/update_cpclist.dspy")
async def update_cpclist(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    center = await centers.update_center(ctx, params)
    return ok("更新算力中心成功", centers.center_row(center, ctx))


@compat(f"{CPCC}/cpclist/delete_cpclist.dspy")
async def delete_cpclist(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    center = await centers.delete_center(ctx, params.get("id"))
    return ok("删除算力中心成功", _id_only(center, orgid=center.orgid))


@compat(f"{CPCC}/cpcnode/get_cpcnode.dspy")
async def get_cpcnode(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await devices.list_devices(ctx, params["cpcid"], page_from_params(params), flag(params, "reveal"))
    return ok("获取算力设备成功", data)


@compat(f"{CPCC}/cpcnode/get_cpcidle_device.dspy")
async def get_cpcidle_device(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    found = await devices.idle_devices(ctx, params.get("cpcid"))
    reveal = flag(params, "reveal")
    return ok("获取空闲设备成功", [devices.device_row(d, ctx, reveal) for d in found])


@compat(f"{CPCC}/cpcnode/add_cpcnode.dspy")
async def add_cpcnode(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    device = await devices.add_device(ctx, params)
    return ok("新增算力设备成功", devices.device_row(device, ctx))


@compat(f"{CPCC}/cpcnode/update_cpcnode.dspy")
async def update_cpcnode(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    device = await devices.update_device(ctx, params)
    return ok("更新算力设备成功", devices.device_row(device, ctx))


@compat(f"{CPCC}/cpcnode/delete_cpcnode.dspy")
async def delete_cpcnode(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    device = await devices.delete_device(ctx, params.get("id"))
    return ok("删除算力设备成功", _id_only(device))


@compat(f"{CPCC}/cpclabel/get_cpclabel.dspy")
async def get_cpclabel(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    labeltype = params.get("labeltype")
    data = await labels.list_labels(
        ctx, page_from_params(params), int(labeltype) if labeltype in ("0", "1", 0, 1) else None
    )
    return ok("获取资源标签成功", data)


@compat(f"{CPCC}/cpclabel/add_cpclabel.dspy")
async def add_cpclabel(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    label = await labels.add_label(ctx, params)
    return ok("新增资源标签成功", labels.label_row(label))


@compat(f"{CPCC}/cpclabel/delete_cpclabel.dspy")
async def delete_cpclabel(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    label = await labels.delete_label(ctx, params.get("id"))
    return ok("删除资源标签成功", _id_only(label))


@compat(f"{CPCC}/cpccluster/get_cpccluster.dspy")
async def get_cpccluster(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await clusters.list_clusters(ctx, params.get("cpcid"), page_from_params(params), flag(params, "reveal"))
    return ok("获取算力集群成功", data)


@compat(f"{CPCC}/cpccluster/update_cpccluster.dspy")
async def update_cpccluster(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    cluster = await clusters.update_cluster(ctx, params)
    return ok("更新算力集群成功", clusters.cluster_row(cluster, ctx, None))


@compat(f"{CPCC}/cpcwidget/add_cpcwidget.dspy")
async def add_cpcwidget(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    component = await components.add_component(ctx, params)
    return ok("新增算力部件成功", await components.component_view(ctx, component))


@compat(f"{CPCC}/cpcwidget/get_cpcwidget.dspy")
async def get_cpcwidget(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await components.list_components(ctx, params.get("cpcid"), page_from_params(params))
    return ok("获取算力部件成功", data)


@compat(f"{CPCC}/cpcwidget/update_cpcwidget.dspy")
async def update_cpcwidget(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    component = await components.update_price(ctx, params)
    data = {"cpcid": component.cpcid, "id": component.id, "unit_price": component.unit_price.normalize()}
    return ok("更新算力部件成功", data)


@compat(f"{CPCC}/cpcwidget/delete_cpcwidget.dspy")
async def delete_cpcwidget(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    component = await components.delete_component(ctx, params)
    return ok("移除算力部件成功", _id_only(component, cpcid=component.cpcid))


@compat(f"{CPCC}/cpcwidget/accrual_price.dspy")
async def accrual_price(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    quote = await components.quote(ctx, params)
    if quote["status"]:
        return ok("获取部件组合价格成功", quote)
    return envelope(False, quote["message"], quote)


@compat(f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy")
async def obtaining_gpuinfo(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    inventory = await buy.live_gpu_inventory(ctx, params.get("cpcid"), params.get("clusterid"))
    return ok("获取集群GPU库存成功", inventory)
