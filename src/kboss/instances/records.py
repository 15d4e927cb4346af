"""Instance records: where an instance lives, how it is found, and how it reads in answers.

Shared by the instance flows (`kboss.instances.service`), the live boards and the buy page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, or_, select

from kboss.audit import trail
from kboss.catalog.centers import get_center
from kboss.catalog.clusters import get_cluster
from kboss.common.context import Ctx
from kboss.common.listing import Page, order_by, paged_rows
from kboss.common.published import buyable_center, buyable_cluster
from kboss.common.records import time_text
from kboss.crypto import SecretBox
from kboss.db.models import Center, Cluster, Org, User
from kboss.db.models_instances import Instance
from kboss.errors import Conflict, InvalidParameter, KbossError, MissingParameter, NotFound
from kboss.instances.health import HEALTH_TEXT, Health, health_of
from kboss.instances.states import READY, STATE_TEXT
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.labels import format_selector
from kboss.kube.quantity import format_bytes
from kboss.pricing import stock
from kboss.redaction import MASK
from kboss.sites.protocol import Site
from kboss.sites.simulated.site import site_for_center

# The only request parameters that shape an instance. Names (namespace, controller...) are never taken from a
# caller: they derive from the ids, so nobody can point an instance at another organisation's namespace.
SPEC_FIELDS = (
    "source_name",
    "instance_type",
    "source_podengine",
    "source_replicasetnum",
    "pod_imagepath",
    "source_authuser",
    "source_authpasswd",
    "source_cpurate",
    "source_memrate",
    "source_gpu",
    "gpu_model",
    "disk_sys_limit",
    "source_storagelimits",
    "source_mountpath",
    "source_selflabel",
    "source_nodeselector",
    "source_portmode",
    "source_restartpolicy",
    "source_apiport",
    "source_insideport",
    "source_outsideport",
    "source_schedule",
    "source_ingresshost",
)
IMMUTABLE = ("instance_type", "source_podengine")  # another controller kind is another instance
SORTABLE = {"source_name": Instance.source_name, "created_at": Instance.created_at, "state": Instance.state}
# A read of instances waits this long for the cluster's pods, then says `unknown` rather than hang the page.
HEALTH_READ_SECONDS = 5.0


# ---------------------------------------------------------------------------------------------
# Where an instance lives


async def find_cluster(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> tuple[Center, Cluster]:
    """A cluster the caller buys on (its org's own; for a customer, one of a center published to it), and its
    center; `cpcid`, when given, must be that center."""
    cluster = await buyable_cluster(ctx, clusterid)
    if cpcid and cpcid != cluster.cpcid:
        raise InvalidParameter("cpcid", "集群不属于该算力中心")
    return await buyable_center(ctx, cluster.cpcid), cluster


async def instance_cluster(ctx: Ctx, instance: Instance, cpcid: str | None = None) -> tuple[Center, Cluster]:
    """Where an instance the caller may see (`get_instance`) runs: its cluster and center, even once the center
    is no longer published to the customer (an unpublished center takes no new orders; what runs stays theirs)."""
    cluster = await ctx.session.get_one(Cluster, instance.clusterid)
    if cpcid and cpcid != cluster.cpcid:
        raise InvalidParameter("cpcid", "集群不属于该算力中心")
    return await ctx.session.get_one(Center, cluster.cpcid), cluster


async def find_owned_cluster(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> tuple[Center, Cluster]:
    """The caller's org's own cluster and its center (boards, drains: the provider's views of its machines)."""
    cluster = await get_cluster(ctx, clusterid)
    if cpcid and cpcid != cluster.cpcid:
        raise InvalidParameter("cpcid", "集群不属于该算力中心")
    return await get_center(ctx, cluster.cpcid), cluster


def kubeconfig_of(ctx: Ctx, cluster: Cluster) -> str:
    if not cluster.kubeconfig:
        raise Conflict(f"集群 {cluster.name} 还没有 kubeconfig (尚未建成或未导入),不能操作")
    return ctx.box.open(cluster.kubeconfig)


async def end_reads(ctx: Ctx) -> None:
    """End the read transaction before a call to a site: no connection is held idle across the network.
    (A commit, not a rollback: a rollback would expire the rows read, which async code cannot reload lazily.)"""
    await ctx.session.commit()


def site_for(ctx: Ctx, center: Center, cluster: Cluster | None = None) -> Site:
    """The center's site agent; for a center marked simulated (only), its in-memory simulated site."""
    return site_for_center(center, ctx.box, ctx.session, cluster.id if cluster is not None else None)


def needs_of(instance: Instance) -> list[stock.Need]:
    return [stock.Need.from_json(item) for item in instance.stock or []]


def agent_params(instance: Instance, ctx: Ctx) -> dict[str, str]:
    """What the site agent's yaml_apply_delete needs to rebuild this instance's objects."""
    return spec_params(instance, ctx.box)


def spec_params(instance: Instance, box: SecretBox) -> dict[str, str]:
    """`agent_params` with the deployment's box (steps have no request context)."""
    values = {name: getattr(instance, name) for name in SPEC_FIELDS if name != "source_authpasswd"}
    values["source_authpasswd"] = box.open(instance.source_authpasswd)
    values.update(
        id=instance.id,
        clusterid=instance.clusterid,
        cpcid=instance.cpcid,
        orgid=instance.orgid,
        namespace_name=instance.namespace_name,
        serviceaccount_name=instance.serviceaccount_name,
        podcd_name=instance.podcd_name,
        service_name=instance.service_name,
    )
    return {key: "" if value is None else str(value) for key, value in values.items()}


def spec_columns(spec: InstanceSpec, fields: Mapping[str, str]) -> dict[str, Any]:
    """Row values of an instance (the inverse of `spec_params`): the spec's validated values (defaults filled
    in), quantities as the caller wrote them."""
    return {
        "namespace_name": spec.namespace,
        "serviceaccount_name": spec.service_account,
        "podcd_name": spec.controller,
        "service_name": spec.service,
        "source_name": spec.display_name,
        "instance_type": spec.instance_type,
        "source_podengine": spec.engine,
        "source_replicasetnum": spec.replicas,
        "pod_imagepath": spec.image,
        "source_authuser": spec.auth_user,
        "source_cpurate": fields["source_cpurate"].strip(),
        "source_memrate": fields["source_memrate"].strip(),
        "source_gpu": spec.gpu,
        "gpu_model": spec.gpu_model,
        "disk_sys_limit": format_bytes(spec.ephemeral_bytes) if spec.ephemeral_bytes else "0",
        "source_storagelimits": format_bytes(spec.storage_bytes) if spec.storage_bytes else "0",
        "source_mountpath": spec.mount_path,
        "source_selflabel": ":".join(spec.self_label) if spec.self_label else "",
        "source_nodeselector": format_selector(spec.node_selector),
        "source_portmode": spec.port_mode,
        "source_restartpolicy": spec.restart_policy,
        "source_apiport": spec.api_port,
        "source_insideport": spec.inside_port,
        "source_outsideport": spec.outside_port,
        "source_schedule": spec.schedule if spec.engine == "CronJob" else "",
        "source_ingresshost": spec.ingress_host,
    }


async def get_instance(ctx: Ctx, instance_id: str | None, param: str = "id") -> Instance:
    """The instance, when the caller may see it: its owner, an admin of its org, or an admin of the provider whose
    cluster it runs on."""
    if not instance_id:
        raise MissingParameter(param)
    query = select(Instance).where(Instance.id == str(instance_id), _visible_instances(ctx))
    if not ctx.principal.is_admin:
        query = query.where(Instance.userid == ctx.principal.user_id)
    found = await ctx.session.scalar(query)
    if found is None:
        raise NotFound(f"资源实例不存在: {instance_id}")
    return found


# ---------------------------------------------------------------------------------------------
# Reading


async def list_instances(
    ctx: Ctx, cpcid: str | None, clusterid: str | None, page: Page, reveal: bool = False
) -> dict[str, Any]:
    center, cluster = await find_cluster(ctx, cpcid, clusterid)
    query = select(Instance).where(_visible_instances(ctx), Instance.clusterid == cluster.id)
    if not ctx.principal.is_admin:
        query = query.where(Instance.userid == ctx.principal.user_id)
    query = query.order_by(*order_by(SORTABLE, page.sort, [Instance.created_at, Instance.id]))
    result = await paged_rows(ctx.session, query, page, lambda i: {"instance": i})
    found = [row["instance"] for row in result["rows"]]
    names = await usernames(ctx, {instance.userid for instance in found})
    pods = await cluster_pods(ctx, center, cluster) if found else []
    result["rows"] = [
        {
            **instance_row(row["instance"], ctx, names, health_of(row["instance"], pods), reveal),
            "row_num_": row["row_num_"],
        }
        for row in result["rows"]
    ]
    return result


async def cluster_pods(ctx: Ctx, center: Center, cluster: Cluster) -> list[dict[str, Any]] | None:
    """The cluster's pod rows for the instances' health, or None when it does not answer (a read does not fail
    for that: the health says `unknown`)."""
    try:
        kubeconfig = kubeconfig_of(ctx, cluster)
        await end_reads(ctx)
        async with site_for(ctx, center, cluster) as site:
            return await site.cluster_pods(kubeconfig, HEALTH_READ_SECONDS)
    except KbossError:
        return None


async def instance_health(ctx: Ctx, instance: Instance) -> Health:
    center, cluster = await instance_cluster(ctx, instance)
    return health_of(instance, await cluster_pods(ctx, center, cluster))


def state_text(instance: Instance, health: Health) -> str:
    """就绪 only for a ready instance whose pods all run; otherwise what its pods do."""
    if instance.state == READY:
        return HEALTH_TEXT[health.state]
    return STATE_TEXT.get(instance.state, instance.state)


def _visible_instances(ctx: Ctx) -> ColumnElement[bool]:
    """A customer's instances are its own; a provider's, every instance on its clusters (its customers' too)."""
    if ctx.principal.is_customer:
        return Instance.orgid == ctx.orgid
    own_clusters = select(Cluster.id).where(Cluster.orgid == ctx.orgid)
    return or_(Instance.orgid == ctx.orgid, Instance.clusterid.in_(own_clusters))


async def instances_in_cluster(ctx: Ctx, clusterid: str, *, mine_only: bool) -> list[Instance]:
    query = select(Instance).where(_visible_instances(ctx), Instance.clusterid == clusterid)
    if mine_only:
        query = query.where(Instance.userid == ctx.principal.user_id)
    return list((await ctx.session.scalars(query.order_by(Instance.created_at, Instance.id))).all())


async def usernames(ctx: Ctx, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    # A provider names its customers' users too (their instances run on its clusters).
    customers = select(Org.id).where(Org.provider_id == ctx.orgid)
    query = select(User.id, User.username).where(
        User.id.in_(user_ids), or_(User.orgid == ctx.orgid, User.orgid.in_(customers))
    )
    return {uid: name for uid, name in (await ctx.session.execute(query)).all()}


def _password(instance: Instance, ctx: Ctx, reveal: bool) -> str:
    if not (reveal and ctx.principal.is_admin):
        return MASK
    if instance.source_authpasswd:
        trail.note_reveal("instance", instance.id, ["source_authpasswd"])
    return ctx.box.open(instance.source_authpasswd)


def instance_row(
    instance: Instance, ctx: Ctx, names: Mapping[str, str], health: Health, reveal: bool = False
) -> dict[str, Any]:
    """A row of get_cpcpodyaml: the spec's fields (numbers as numbers), then kboss's own."""
    row: dict[str, Any] = {"id": instance.id}
    row.update({name: getattr(instance, name) for name in ("namespace_name", "serviceaccount_name", "podcd_name")})
    row.update(service_name=instance.service_name, clusterid=instance.clusterid, cpcid=instance.cpcid)
    row.update({name: getattr(instance, name) for name in SPEC_FIELDS})
    row["source_authpasswd"] = _password(instance, ctx, reveal)
    row.update(
        username=names.get(instance.userid, instance.userid),
        userid=instance.userid,
        orgid=instance.orgid,
        cpu_model=instance.cpu_model,
        state=instance.state,
        state_text=state_text(instance, health),
        health=health.state,
        health_reason=health.reason,
        last_error=instance.last_error,
        stock=stock_lines(instance),
        created_at=time_text(instance.created_at),
        updated_at=time_text(instance.updated_at),
    )
    return row


def stock_lines(instance: Instance) -> list[dict[str, Any]]:
    """The components the instance draws on (a line without a model: the one `stock.lookup`'s rule chose)."""
    keys = ("role", "type", "model", "unit", "amount")
    return [{key: value for key, value in item.items() if key in keys} for item in instance.stock or []]


def instance_echo(instance: Instance, ctx: Ctx, action: str | None = None) -> dict[str, Any]:
    """The answer of new/update_cpcpodyaml: the parameters echoed as strings, names and ids, password masked."""
    echo: dict[str, Any] = {k: "" if v is None else str(v) for k, v in agent_params(instance, ctx).items()}
    echo["source_authpasswd"] = MASK
    echo.update(cpu_model=instance.cpu_model, state=instance.state, stock=stock_lines(instance))
    return {"action": action, **echo} if action else echo
