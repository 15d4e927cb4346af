"""Devices (the spec's cpcnode): machines of a center, reachable over SSH, idle or occupied (`device_states`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kboss.audit import trail
from kboss.catalog import device_states
from kboss.catalog.centers import get_center, keeps_secret
from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.records import date_text, get_owned
from kboss.common.validation import (
    Flag01,
    Input,
    IpAddress,
    NonNegInt,
    OptionalDate,
    OptionalIp,
    Port,
    Text,
    check_date_order,
    parse,
)
from kboss.crypto import mask
from kboss.db.models import Cluster, Device
from kboss.errors import Conflict, InvalidParameter
from kboss.sites.simulated.site import site_for_center

DEVICETYPE_TEXT = {0: "虚拟机", 1: "物理机"}
SORTABLE = {
    "name": Device.name,
    "ip": Device.ip,
    "node_status": Device.node_status,
    "devicetype": Device.devicetype,
    "enable_date": Device.enable_date,
    "export_date": Device.export_date,
    "role": Device.role,
}


class DeviceInput(Input):
    cpcid: Text
    ip: IpAddress
    name: Text
    devicetype: Flag01
    sshport: Port = 22
    adminuser: Text
    adminpwd: str = ""
    ssh_key: str = ""
    node_status: Flag01 = device_states.IDLE
    external_ip: OptionalIp = ""
    cpu_model: Text = "STANDARD"
    cpu_stock: NonNegInt = 0
    memory_model: Text = "STANDARD"
    memory_stock: NonNegInt = 0
    sysdisk_stock: NonNegInt = 0
    datadisk_stock: NonNegInt = 0
    gpu_model: Text = "STANDARD"
    gpu_stock: NonNegInt = 0
    role: Literal["master", "worker"] = "worker"
    enable_date: OptionalDate = None
    export_date: OptionalDate = None


def device_row(device: Device, ctx: Ctx, reveal: bool = False, cluster_name: str = "") -> dict[str, Any]:
    show_secret = reveal and ctx.principal.is_admin
    if show_secret and (device.adminpwd or device.ssh_key):
        trail.note_reveal("device", device.id, [n for n in ("adminpwd", "ssh_key") if getattr(device, n)])
    return {
        "id": device.id,
        "cpcid": device.cpcid,
        "name": device.name,
        "clusterid": device.clusterid,
        "node_status": str(device.node_status),
        "ip": device.ip,
        "devicetype": str(device.devicetype),
        "sshport": device.sshport,
        "adminuser": device.adminuser,
        "adminpwd": ctx.box.open(device.adminpwd) if show_secret else mask(device.adminpwd),
        "ssh_key": ctx.box.open(device.ssh_key) if show_secret else mask(device.ssh_key),
        "enable_date": date_text(device.enable_date),
        "export_date": date_text(device.export_date),
        "external_ip": device.external_ip or "未设置",
        "cpu_model": device.cpu_model,
        "cpu_stock": device.cpu_stock,
        "memory_model": device.memory_model,
        "memory_stock": device.memory_stock,
        "sysdisk_stock": device.sysdisk_stock,
        "datadisk_stock": device.datadisk_stock,
        "gpu_model": device.gpu_model,
        "gpu_stock": device.gpu_stock,
        "role": device.role,
        "cluster_name": cluster_name,
        "node_status_text": device_states.STATUS_TEXT[device.node_status],
        "devicetype_text": DEVICETYPE_TEXT[device.devicetype],
    }


async def list_devices(ctx: Ctx, center_id: str | None, page: Page, reveal: bool = False) -> dict[str, Any]:
    center = await get_center(ctx, center_id)
    query = select(Device).where(Device.orgid == ctx.orgid, Device.cpcid == center.id)
    query = query.order_by(*order_by(SORTABLE, page.sort, [Device.created_at, Device.id]))
    named = await ctx.session.execute(select(Cluster.id, Cluster.name).where(Cluster.cpcid == center.id))
    names: dict[str, str] = {cluster_id: name for cluster_id, name in named}
    return await paged_rows(
        ctx.session, query, page, lambda d: device_row(d, ctx, reveal, names.get(d.clusterid or "", ""))
    )


async def idle_devices(ctx: Ctx, center_id: str | None) -> list[Device]:
    center = await get_center(ctx, center_id)
    query = select(Device).where(
        Device.orgid == ctx.orgid, Device.cpcid == center.id, Device.node_status == device_states.IDLE
    )
    return list((await ctx.session.scalars(query.order_by(Device.created_at, Device.id))).all())


async def get_device(ctx: Ctx, device_id: str | None, param: str = "id") -> Device:
    return await get_owned(ctx, Device, device_id, param, "算力设备")


async def add_device(ctx: Ctx, params: Mapping[str, Any]) -> Device:
    ctx.require_admin()
    data = _validated(params)
    await get_center(ctx, data.cpcid)
    if not (data.adminpwd or data.ssh_key):
        raise InvalidParameter("adminpwd", "需要管理密码或 SSH 私钥")
    values = data.model_dump()
    values["adminpwd"] = ctx.box.seal(data.adminpwd) if data.adminpwd else ""
    values["ssh_key"] = ctx.box.seal(data.ssh_key) if data.ssh_key else ""
    device = Device(orgid=ctx.orgid, **values)
    ctx.session.add(device)
    await _commit_unique(ctx, data)
    return device


async def update_device(ctx: Ctx, params: Mapping[str, Any]) -> Device:
    ctx.require_admin()
    device = await get_device(ctx, params.get("id"))
    sent = {key: value for key, value in params.items() if value is not None}
    data = _validated({**device_row(device, ctx), **sent})
    if data.cpcid != device.cpcid:
        await get_center(ctx, data.cpcid)
    if device.clusterid and data.node_status == device_states.IDLE:
        raise Conflict(f"设备 {device.name} 仍属于集群 {device.clusterid},不能直接置为空闲")
    for field, value in data.model_dump(exclude={"adminpwd", "ssh_key", "node_status"}).items():
        setattr(device, field, value)
    # Secrets change only when a new value is sent: never re-encrypt what is stored.
    if not keeps_secret(data.adminpwd):
        device.adminpwd = ctx.box.seal(data.adminpwd)
    if not keeps_secret(data.ssh_key):
        device.ssh_key = ctx.box.seal(data.ssh_key)
    await _flush_unique(ctx, data)
    if data.node_status != device.node_status:
        await _set_status_by_hand(ctx, device, data.node_status)
    await ctx.session.commit()
    return device


async def _set_status_by_hand(ctx: Ctx, device: Device, status: int) -> None:
    """An admin marks the device idle or occupied; never idle while a cluster holds (or just reserved) it."""
    who = ctx.principal.username
    not_in_cluster = (Device.clusterid.is_(None),) if status == device_states.IDLE else ()
    try:
        await device_states.transition(ctx.session, device, status, f"{who} 修改设备状态", who, extra=not_in_cluster)
    except Conflict:
        await ctx.session.rollback()
        raise


async def delete_device(ctx: Ctx, device_id: str | None) -> Device:
    ctx.require_admin()
    device = await get_device(ctx, device_id)
    if device.clusterid:
        raise Conflict(f"设备 {device.name} 仍属于集群 {device.clusterid},请先从集群中移除")
    await ctx.session.delete(device)
    await ctx.session.commit()
    return device


def _validated(params: Mapping[str, Any]) -> DeviceInput:
    data = parse(DeviceInput, params)
    check_date_order(data.enable_date, data.export_date, "enable_date", "export_date")
    return data


async def _commit_unique(ctx: Ctx, data: DeviceInput) -> None:
    await _flush_unique(ctx, data)
    await ctx.session.commit()


async def _flush_unique(ctx: Ctx, data: DeviceInput) -> None:
    try:
        await ctx.session.flush()
    except IntegrityError:
        await ctx.session.rollback()
        raise Conflict(f"该算力中心已有地址为 {data.ip}:{data.sshport} 的设备") from None


async def probe_device(ctx: Ctx, device_id: str | None) -> dict[str, Any]:
    """Log into the device through its center's site agent; answer its facts and the catalog fields they suggest."""
    ctx.require_admin()
    device = await get_device(ctx, device_id)
    center = await get_center(ctx, device.cpcid)
    async with site_for_center(center, ctx.box, ctx.session) as site:
        facts = await site.probe(
            device.ip, device.sshport, device.adminuser, ctx.box.open(device.adminpwd), ctx.box.open(device.ssh_key)
        )
    return {"device_id": device.id, "facts": facts, "suggested": suggested_fields(facts)}


def suggested_fields(facts: dict[str, Any]) -> dict[str, Any]:
    """Device fields as the probe sees them (memory in Gi, disks split into the first and the rest)."""
    disks = [int(disk.get("size_gib", 0)) for disk in facts.get("disks", [])]
    gpus = facts.get("gpus", [])
    return {
        "cpu_model": facts.get("cpu_model") or "STANDARD",
        "cpu_stock": int(facts.get("cpu_cores", 0)),
        "memory_stock": int(facts.get("memory_mib", 0)) // 1024,
        "sysdisk_stock": disks[0] if disks else 0,
        "datadisk_stock": sum(disks[1:]),
        "gpu_model": gpus[0]["model"] if gpus else "STANDARD",
        "gpu_stock": sum(int(group.get("count", 0)) for group in gpus),
    }
