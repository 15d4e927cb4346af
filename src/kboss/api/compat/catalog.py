"""Compat routes for the catalog: centers, devices, labels, cluster records, components, quotes, GPU stock.

Each handler only parses and calls a service; `registry` authenticates and dispatches (GET, POST or DELETE alike,
since the spec's front end uses either). The endpoints that save or delete one record differ only in their service,
message and answer: they are built from the table `SAVES` and `DELETES`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi.responses import JSONResponse

from kboss.api.audit import note_center_reveals
from kboss.api.compat.registry import Handler, compat
from kboss.catalog import centers, clusters, components, devices, labels
from kboss.common.context import Ctx
from kboss.common.listing import page_from_params
from kboss.db.models import Cluster, Label
from kboss.instances import buy
from kboss.pricing import price_books
from kboss.wire.errors import envelope, ok
from kboss.wire.params import flag

CPCC = "/dev/cpcc"
Saved = TypeVar("Saved")


class Record(Protocol):
    @property
    def id(self) -> str: ...


def saving(
    save: Callable[[Ctx, dict[str, Any]], Awaitable[Saved]], message: str, row: Callable[[Saved, Ctx], Any]
) -> Handler:
    """A handler that saves one record from the parameters and answers with its row."""

    async def handler(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
        return ok(message, row(await save(ctx, params), ctx))

    return handler


def deleting(delete: Callable[[Ctx, str | None], Awaitable[Record]], message: str, *shown: str) -> Handler:
    """A handler that deletes the record named by `id` and answers with its id and the `shown` fields."""

    async def handler(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
        record = await delete(ctx, params.get("id"))
        return ok(message, {"id": record.id, **{name: getattr(record, name) for name in shown}})

    return handler


def _label_row(label: Label, _ctx: Ctx) -> dict[str, Any]:
    return labels.label_row(label)


def _cluster_row(cluster: Cluster, ctx: Ctx) -> dict[str, Any]:
    return clusters.cluster_row(cluster, ctx, None)


SAVES: dict[str, Handler] = {
    "cpclist/add_cpclist.dspy": saving(centers.add_center, "新建算力中心成功", centers.center_row),
    "cpclist/update_cpclist.dspy": saving(centers.update_center, "更新算力中心成功", centers.center_row),
    "cpcnode/add_cpcnode.dspy": saving(devices.add_device, "新增算力设备成功", devices.device_row),
    "cpcnode/update_cpcnode.dspy": saving(devices.update_device, "更新算力设备成功", devices.device_row),
    "cpclabel/add_cpclabel.dspy": saving(labels.add_label, "新增资源标签成功", _label_row),
    "cpccluster/update_cpccluster.dspy": saving(clusters.update_cluster, "更新算力集群成功", _cluster_row),
}
DELETES: dict[str, Handler] = {
    "cpclist/delete_cpclist.dspy": deleting(centers.delete_center, "删除算力中心成功", "orgid"),
    "cpcnode/delete_cpcnode.dspy": deleting(devices.delete_device, "删除算力设备成功"),
    "cpclabel/delete_cpclabel.dspy": deleting(labels.delete_label, "删除资源标签成功"),
}
for _path, _handler in {**SAVES, **DELETES}.items():
    compat(f"{CPCC}/{_path}")(_handler)


@compat(f"{CPCC}/cpclist/get_cpclist.dspy")
async def get_cpclist(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await centers.list_centers(ctx, page_from_params(params), flag(params, "reveal"))
    note_center_reveals(ctx, flag(params, "reveal"), data["rows"])
    return ok("算力中心数据查询成功", data)


@compat(f"{CPCC}/cpcnode/get_cpcnode.dspy")
async def get_cpcnode(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await devices.list_devices(ctx, params["cpcid"], page_from_params(params), flag(params, "reveal"))
    return ok("获取算力设备成功", data)


@compat(f"{CPCC}/cpcnode/get_cpcidle_device.dspy")
async def get_cpcidle_device(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    found = await devices.idle_devices(ctx, params.get("cpcid"))
    reveal = flag(params, "reveal")
    return ok("获取空闲设备成功", [devices.device_row(d, ctx, reveal) for d in found])


@compat(f"{CPCC}/cpclabel/get_cpclabel.dspy")
async def get_cpclabel(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    labeltype = params.get("labeltype")
    data = await labels.list_labels(
        ctx, page_from_params(params), int(labeltype) if labeltype in ("0", "1", 0, 1) else None
    )
    return ok("获取资源标签成功", data)


@compat(f"{CPCC}/cpccluster/get_cpccluster.dspy")
async def get_cpccluster(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    data = await clusters.list_clusters(ctx, params.get("cpcid"), page_from_params(params), flag(params, "reveal"))
    return ok("获取算力集群成功", data)


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
    return ok("移除算力部件成功", {"id": component.id, "cpcid": component.cpcid})


@compat(f"{CPCC}/cpcwidget/accrual_price.dspy")
async def accrual_price(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    quote = await price_books.quote(ctx, params)
    if quote.ok:
        return ok("获取部件组合价格成功", quote.data)
    return envelope(False, quote.message, quote.data)


@compat(f"{CPCC}/cpcwidget/obtaining_gpuinfo.dspy")
async def obtaining_gpuinfo(ctx: Ctx, params: dict[str, Any]) -> JSONResponse:
    inventory = await buy.live_gpu_inventory(ctx, params.get("cpcid"), params.get("clusterid"))
    return ok("获取集群GPU库存成功", inventory)
