"""Cluster records (the spec's cpccluster). Building clusters is the operations' work; here are the records."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import yaml
from sqlalchemy import select

from kboss import messages
from kboss.audit import trail
from kboss.catalog.centers import get_center
from kboss.catalog.cluster_states import cluster_state
from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.published import buyable_center
from kboss.common.records import date_text, get_owned
from kboss.common.validation import Input, OptionalDate, Text, check_date_order, parse
from kboss.crypto import mask
from kboss.db.models import Cluster, Device
from kboss.errors import InvalidParameter

CLUSTERTYPE_TEXT = {0: "kubernetes", 1: "slurm"}
SORTABLE = {"name": Cluster.name, "enable_date": Cluster.enable_date, "export_date": Cluster.export_date}
# Fields the spec says an update must not change: they belong to the cluster's build.
_FIXED_ON_UPDATE = {"controllerid": "controllerid", "cluster_type": "clustertype", "clusterjoin": "clusterjoin"}


class ClusterUpdate(Input):
    name: Text
    enable_date: OptionalDate = None
    export_date: OptionalDate = None


class ClusterImport(Input):
    cpcid: Text
    name: Text
    kubeconfig: str
    enable_date: OptionalDate = None
    export_date: OptionalDate = None


def cluster_row(cluster: Cluster, ctx: Ctx, controller_ip: str | None, reveal: bool = False) -> dict[str, Any]:
    show_secret = reveal and ctx.principal.is_admin
    if show_secret and (cluster.clusterjoin or cluster.kubeconfig):
        trail.note_reveal("cluster", cluster.id, [n for n in ("clusterjoin", "kubeconfig") if getattr(cluster, n)])
    return {
        "id": cluster.id,
        "name": cluster.name,
        "cpcid": cluster.cpcid,
        "clustertype": str(cluster.clustertype),
        "controllerid": cluster.controllerid,
        "enable_date": date_text(cluster.enable_date),
        "export_date": date_text(cluster.export_date),
        "clusterjoin": ctx.box.open(cluster.clusterjoin) if show_secret else mask(cluster.clusterjoin),
        "kubeconfig": ctx.box.open(cluster.kubeconfig) if show_secret else mask(cluster.kubeconfig),
        "ready": cluster.ready,
        "state": cluster_state(cluster),
        "state_reason": cluster.state_reason or "",
        "origin": cluster.origin,
        "clustertype_text": CLUSTERTYPE_TEXT.get(cluster.clustertype, str(cluster.clustertype)),
        "controllerid_text": controller_ip or "",
    }


def published_cluster_row(cluster: Cluster) -> dict[str, Any]:
    """A cluster as a customer sees it, to buy on: what it is and whether it runs, no secret, no machine."""
    return {
        "id": cluster.id, "name": cluster.name, "cpcid": cluster.cpcid, "clustertype": str(cluster.clustertype),
        "controllerid": None, "enable_date": date_text(cluster.enable_date),
        "export_date": date_text(cluster.export_date), "clusterjoin": "", "kubeconfig": "", "ready": cluster.ready,
        "state": cluster_state(cluster), "state_reason": "", "origin": cluster.origin,
        "clustertype_text": CLUSTERTYPE_TEXT.get(cluster.clustertype, str(cluster.clustertype)),
        "controllerid_text": "",
    }  # fmt: skip


async def list_clusters(ctx: Ctx, center_id: str | None, page: Page, reveal: bool = False) -> dict[str, Any]:
    """A center's clusters; a customer gets those of a center published to it, as `published_cluster_row`."""
    center = await buyable_center(ctx, center_id)
    query = select(Cluster).where(Cluster.orgid == center.orgid, Cluster.cpcid == center.id)
    query = query.order_by(*order_by(SORTABLE, page.sort, [Cluster.created_at, Cluster.id]))
    if ctx.principal.is_customer:
        return await paged_rows(ctx.session, query, page, published_cluster_row)
    ips = dict((await ctx.session.execute(select(Device.id, Device.ip).where(Device.cpcid == center.id))).all())
    return await paged_rows(
        ctx.session, query, page, lambda c: cluster_row(c, ctx, ips.get(c.controllerid or ""), reveal)
    )


async def get_cluster(ctx: Ctx, cluster_id: str | None, param: str = "clusterid") -> Cluster:
    return await get_owned(ctx, Cluster, cluster_id, param, "算力集群")


async def update_cluster(ctx: Ctx, params: Mapping[str, Any]) -> Cluster:
    ctx.require_admin()
    cluster = await get_cluster(ctx, params.get("id"), "id")
    if params.get("cpcid") and params["cpcid"] != cluster.cpcid:
        raise InvalidParameter("cpcid", "集群不属于该算力中心")
    for param, field in _FIXED_ON_UPDATE.items():
        sent = params.get(param)
        if sent not in (None, "") and str(sent) != str(getattr(cluster, field) or ""):
            raise InvalidParameter(param, "只能修改集群名称和启用/停止时间")
    current = {"name": cluster.name, "enable_date": cluster.enable_date, "export_date": cluster.export_date}
    data = parse(ClusterUpdate, {**current, **{k: v for k, v in params.items() if v is not None}})
    check_date_order(data.enable_date, data.export_date, "enable_date", "export_date")
    cluster.name, cluster.enable_date, cluster.export_date = data.name, data.enable_date, data.export_date
    await ctx.session.commit()
    return cluster


async def import_cluster(ctx: Ctx, params: Mapping[str, Any]) -> tuple[Cluster, dict[str, Any]]:
    """Record an existing cluster so that components and stock can be attached to it."""
    ctx.require_admin()
    data = parse(ClusterImport, params)
    check_date_order(data.enable_date, data.export_date, "enable_date", "export_date")
    await get_center(ctx, data.cpcid)
    server = kubeconfig_server(data.kubeconfig)
    cluster = Cluster(
        orgid=ctx.orgid,
        cpcid=data.cpcid,
        name=data.name,
        clustertype=0,
        enable_date=data.enable_date,
        export_date=data.export_date,
        kubeconfig=ctx.box.seal(data.kubeconfig),
        ready=1,
        origin="imported",
    )
    ctx.session.add(cluster)
    await ctx.session.commit()
    return cluster, await probe_reachability(server)


def kubeconfig_server(text: str) -> str:
    """The API server URL of the kubeconfig's current context; refuses text that is not a kubeconfig.

    Messages name the key that is wrong, never a value: the text holds credentials."""
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidParameter("kubeconfig", messages.yaml_problem(exc)) from None
    if not isinstance(config, dict) or config.get("kind", "Config") != "Config":
        raise InvalidParameter("kubeconfig", "不是 kubeconfig 文件")
    contexts, clusters = _entries(config, "contexts", "context"), _entries(config, "clusters", "cluster")
    current = contexts.get(str(config.get("current-context"))) or next(iter(contexts.values()), None)
    if not current:
        raise InvalidParameter("kubeconfig", "没有可用的 context")
    server = (clusters.get(str(current.get("cluster"))) or {}).get("server")
    try:
        parts = urlsplit(server) if isinstance(server, str) else None
        hostname = parts.hostname if parts else None
    except ValueError:  # e.g. an unclosed `[`: the address is quoted nowhere, only the key named
        parts, hostname = None, None
    if not parts or not hostname or parts.scheme not in ("http", "https"):
        raise InvalidParameter("kubeconfig", "context 指向的集群没有合法的 server 地址 (应为 http(s) 地址)")
    if parts.username is not None or parts.password is not None:
        # The address is shown in answers (reachability): credentials have no place in it.
        raise InvalidParameter("kubeconfig", "集群的 server 地址不应包含用户名或密码")
    return str(server)


def _entries(config: dict[str, Any], section: str, key: str) -> dict[str, dict[str, Any]]:
    """`contexts` or `clusters` by name; an entry whose body is not a mapping is refused by its key's name."""
    found: dict[str, dict[str, Any]] = {}
    listed = config.get(section) or []
    if not isinstance(listed, list):
        raise InvalidParameter("kubeconfig", f"'{section}' 应为列表")
    for index, entry in enumerate(listed, start=1):
        body = entry.get(key, {}) if isinstance(entry, dict) else None
        if not isinstance(body, dict):
            raise InvalidParameter("kubeconfig", f"'{section}' 第 {index} 项的 '{key}' 应为映射")
        found[str(entry.get("name"))] = body  # str: a list as a name must not crash the lookup
    return found


CONNECT_TIMEOUT = 3.0


async def probe_reachability(server: str) -> dict[str, Any]:
    parts = urlsplit(server)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, port), CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return {"server": server, "reachable": False, "detail": f"无法连接 {parts.hostname}:{port}: {exc!r}"}
    writer.close()
    await writer.wait_closed()
    return {"server": server, "reachable": True, "detail": f"{parts.hostname}:{port} 可连接"}
