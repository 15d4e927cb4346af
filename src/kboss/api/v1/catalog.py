"""Native routes for the catalog nouns. Same services as the compat routes; proper status codes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Body, Path, Query

from kboss.api.audit import note_center_reveals
from kboss.api.deps import CtxDep
from kboss.catalog import centers, clusters, components, devices, labels
from kboss.common.context import Ctx
from kboss.common.listing import MAX_PAGE, MAX_ROWS, Page
from kboss.instances import buy
from kboss.pricing import price_books

router = APIRouter(prefix="/api/v1", tags=["catalog"])
JsonBody = Body(default_factory=dict)


def _page(page: int, rows: int, sort: str) -> Page:
    return Page(number=page, size=rows, sort=sort)


PageQuery = Query(1, ge=1, le=MAX_PAGE)
RowsQuery = Query(100, ge=1, le=MAX_ROWS)


@router.get("/centers")
async def list_centers(
    ctx: CtxDep, page: int = PageQuery, rows: int = RowsQuery, sort: str = "", reveal: bool = False
) -> dict[str, Any]:
    listed = await centers.list_centers(ctx, _page(page, rows, sort), reveal)
    note_center_reveals(ctx, reveal, listed["rows"])
    return listed


class NewCenter(centers.CenterInput):
    """A center; with `simulated: true`, a simulated one (no site agent: leave pcapi_url, api_user, api_pwd out)."""

    # The service checks every field and names the bad one; these types only document the body.
    pcapi_url: Any = None
    api_user: Any = None
    api_pwd: Any = None
    simulated: Any = False


@router.post("/centers", status_code=201)
async def create_center(ctx: CtxDep, body: NewCenter) -> dict[str, Any]:
    return centers.center_row(await centers.create_center(ctx, body.model_dump(exclude_unset=True)), ctx)


@router.get("/centers/{center_id}")
async def get_center(ctx: CtxDep, center_id: str, reveal: bool = False) -> dict[str, Any]:
    row = await centers.read_center(ctx, center_id, reveal)
    note_center_reveals(ctx, reveal, [row])
    return row


@router.patch("/centers/{center_id}")
async def update_center(ctx: CtxDep, center_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return centers.center_row(await centers.update_center(ctx, {**body, "id": center_id}), ctx)


@router.get("/centers/{center_id}/devices")
async def list_devices(
    ctx: CtxDep,
    center_id: str,
    page: int = PageQuery,
    rows: int = RowsQuery,
    sort: str = "",
    idle: bool = False,
    reveal: bool = False,
) -> dict[str, Any]:
    if idle:
        found = await devices.idle_devices(ctx, center_id)
        return {"total": len(found), "rows": [devices.device_row(d, ctx, reveal) for d in found]}
    return await devices.list_devices(ctx, center_id, _page(page, rows, sort), reveal)


@router.post("/devices", status_code=201)
async def create_device(ctx: CtxDep, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return devices.device_row(await devices.add_device(ctx, body), ctx)


@router.get("/devices/{device_id}")
async def get_device(ctx: CtxDep, device_id: str, reveal: bool = False) -> dict[str, Any]:
    return devices.device_row(await devices.get_device(ctx, device_id), ctx, reveal)


@router.patch("/devices/{device_id}")
async def update_device(ctx: CtxDep, device_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return devices.device_row(await devices.update_device(ctx, {**body, "id": device_id}), ctx)


@router.post("/devices/{device_id}/probe")
async def probe_device(ctx: CtxDep, device_id: str) -> dict[str, Any]:
    return await devices.probe_device(ctx, device_id)


@router.get("/labels")
async def list_labels(
    ctx: CtxDep,
    page: int = PageQuery,
    rows: int = RowsQuery,
    sort: str = "",
    labeltype: int | None = Query(None, ge=0, le=1, description="0 instance, 1 node"),
) -> dict[str, Any]:
    return await labels.list_labels(ctx, _page(page, rows, sort), labeltype)


@router.post("/labels", status_code=201)
async def create_label(ctx: CtxDep, body: labels.LabelInput) -> dict[str, Any]:
    return labels.label_row(await labels.add_label(ctx, body.model_dump()))


@router.get("/centers/{center_id}/clusters")
async def list_clusters(
    ctx: CtxDep, center_id: str, page: int = PageQuery, rows: int = RowsQuery, sort: str = "", reveal: bool = False
) -> dict[str, Any]:
    return await clusters.list_clusters(ctx, center_id, _page(page, rows, sort), reveal)


@router.post("/clusters/import", status_code=201)
async def import_cluster(ctx: CtxDep, body: clusters.ClusterImport) -> dict[str, Any]:
    cluster, reachability = await clusters.import_cluster(ctx, body.model_dump())
    return {**clusters.cluster_row(cluster, ctx, None), "reachability": reachability}


@router.get("/clusters/{cluster_id}")
async def get_cluster(ctx: CtxDep, cluster_id: str, reveal: bool = False) -> dict[str, Any]:
    return clusters.cluster_row(await clusters.get_cluster(ctx, cluster_id, "id"), ctx, None, reveal)


@router.patch("/clusters/{cluster_id}")
async def update_cluster(ctx: CtxDep, cluster_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    cluster = await clusters.update_cluster(ctx, {**body, "id": cluster_id})
    return clusters.cluster_row(cluster, ctx, None)


@router.get("/centers/{center_id}/components")
async def list_components(
    ctx: CtxDep, center_id: str, page: int = PageQuery, rows: int = RowsQuery, sort: str = ""
) -> dict[str, Any]:
    return await components.list_components(ctx, center_id, _page(page, rows, sort))


@router.post("/components", status_code=201)
async def create_component(ctx: CtxDep, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await components.component_view(ctx, await components.add_component(ctx, body))


@router.patch("/components/{component_id}")
async def update_component_price(ctx: CtxDep, component_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    component = await components.update_price(ctx, {**body, "id": component_id})
    return await components.component_view(ctx, component)


def delete_route(noun: str, delete: Callable[[Ctx, str], Awaitable[object]]) -> None:
    """`DELETE /api/v1/{noun}s/{{noun}_id}`: 204 once the service has deleted the record (or 404, 409 as it refuses)."""

    async def delete_record(ctx: CtxDep, record_id: str = Path(alias=f"{noun}_id")) -> None:
        await delete(ctx, record_id)

    delete_record.__name__ = f"delete_{noun}"  # the route's name and operation id
    router.delete(f"/{noun}s/{{{noun}_id}}", status_code=204)(delete_record)


async def _delete_component(ctx: Ctx, component_id: str) -> None:
    await components.delete_component(ctx, {"id": component_id})


for _noun, _delete in (
    ("center", centers.delete_center),
    ("device", devices.delete_device),
    ("label", labels.delete_label),
    ("component", _delete_component),
):
    delete_route(_noun, _delete)


@router.post("/quotes")
async def quote(ctx: CtxDep, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return dict((await price_books.quote(ctx, body)).data)


@router.get("/gpu-inventory")
async def gpu_inventory(ctx: CtxDep, cpcid: str | None = None, clusterid: str | None = None) -> dict[str, int]:
    """Cards an order can take now, per GPU model: the figure of `obtaining_gpuinfo` (`buy.live_gpu_inventory`)."""
    return await buy.live_gpu_inventory(ctx, cpcid, clusterid)
