"""Container instances (the spec's cpcpodyaml): a row, the stock it holds, and its objects in the cluster.

The invariant: an instance row exists exactly while its objects may exist in the cluster, and holds its stock
all that time. So every change is: validate everything; write the row and take the stock in one transaction;
call the cluster's site agent; then either confirm, or undo both (deleting whatever the agent may have
created). The agent is never called inside a transaction: a slow cluster must not hold database locks.

States (`kboss.instances.states`) make concurrent changes of one instance safe: a change claims the row with a
compare-and-set of its state, so two deletes can never both release the stock. Every change of state goes through
`states.transition`, which writes its history row. (Instances a crashed process left half-changed:
`kboss.instances.sweeper`.)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kboss.billing import orders
from kboss.catalog.centers import keeps_secret
from kboss.common.context import Ctx
from kboss.db.models import Cluster, User
from kboss.db.models_instances import Instance
from kboss.errors import Conflict, InvalidParameter, KbossError, MissingParameter
from kboss.ids import new_id
from kboss.instances import nodeports, quota_check
from kboss.instances.records import (
    IMMUTABLE,
    SPEC_FIELDS,
    agent_params,
    find_cluster,
    get_instance,
    instance_cluster,
    kubeconfig_of,
    needs_of,
    site_for,
    spec_columns,
)
from kboss.instances.states import APPLYING, DELETING, FAILED, GONE, NEW, READY, UPDATING, record, transition
from kboss.instances.sweeper import sweep_abandoned as sweep_abandoned  # app.py still starts it from here
from kboss.kube.instance_spec import InstanceSpec
from kboss.kube.manifests import object_refs
from kboss.pricing import stock
from kboss.sites import SiteUnreachable
from kboss.sites.protocol import Site

log = logging.getLogger("kboss.instances")


def _clear_offers(ctx: Ctx) -> None:
    if ctx.offers:  # quotes must not show stock from before this change
        ctx.offers.clear()


def _actor(ctx: Ctx) -> str:
    return ctx.principal.username


# ---------------------------------------------------------------------------------------------
# Parameters


def _fields(params: Mapping[str, Any], *, keep_masked_password: bool) -> dict[str, str]:
    fields = {name: str(params[name]) for name in SPEC_FIELDS if params.get(name) is not None}
    if keep_masked_password and keeps_secret(fields.get("source_authpasswd")):
        fields.pop("source_authpasswd", None)  # "******" sent back from a listing keeps the stored password
    return fields


def _names(instance_id: str, cluster: Cluster, orgid: str) -> dict[str, str]:
    return {"id": instance_id, "clusterid": cluster.id, "cpcid": cluster.cpcid, "orgid": orgid}


def _models(params: Mapping[str, Any], spec: InstanceSpec, previous: Sequence[stock.Need] = ()) -> dict[str, str]:
    """The component model per role: the request's, else the one the instance already draws on."""
    before = {need.role: need.model for need in previous}
    models = {role: str(params.get(param) or before.get(role) or "") for role, param in stock.ROLE_PARAM.items()}
    models["gpu"] = spec.gpu_model
    return models


async def _needs(ctx: Ctx, cluster: Cluster, spec: InstanceSpec, models: Mapping[str, str]) -> list[stock.Need]:
    offers = await stock.cluster_offers(ctx.session, cluster.orgid, cluster.cpcid, cluster.id)
    return stock.needs_for(offers, stock.instance_requests(spec), models)


async def _owner(ctx: Ctx, userid: Any) -> str:
    """The caller, or (admins only) another user of the org, as the spec's optional `userid` allows."""
    if not userid or str(userid) == ctx.principal.user_id:
        return ctx.principal.user_id
    ctx.require_admin()
    found = await ctx.session.scalar(select(User.id).where(User.id == str(userid), User.orgid == ctx.orgid))
    if found is None:
        raise InvalidParameter("userid", "该组织没有此用户")
    return found


# ---------------------------------------------------------------------------------------------
# Create


async def create_instance(ctx: Ctx, params: Mapping[str, Any]) -> Instance:
    center, cluster = await find_cluster(ctx, params.get("cpcid"), params.get("clusterid"))
    owner = await _owner(ctx, params.get("userid"))
    terms = orders.terms_of(params)  # a customer's: prepaid for a duration, or metered
    fields = _fields(params, keep_masked_password=False)
    instance_id = new_id()
    spec = InstanceSpec.from_params({**fields, **_names(instance_id, cluster, ctx.orgid)})
    if not spec.display_name:
        raise MissingParameter("source_name")
    if not str(params.get("cpu_model") or "").strip():
        raise MissingParameter("cpu_model")
    if spec.gpu and not spec.gpu_model:
        raise MissingParameter("gpu_model")
    needs = await _needs(ctx, cluster, spec, _models(params, spec))
    await nodeports.ensure_free(ctx.session, cluster.id, spec.outside_port)
    kubeconfig = kubeconfig_of(ctx, cluster)
    async with site_for(ctx, center, cluster) as site:  # a real center: its agent; a simulated one: the in-memory site
        instance = Instance(
            id=instance_id,
            orgid=ctx.orgid,
            userid=owner,
            cpcid=cluster.cpcid,
            clusterid=cluster.id,
            source_authpasswd=ctx.box.seal(spec.auth_password.get_secret_value()),
            cpu_model=next(n.model for n in needs if n.role == "cpu"),
            state=APPLYING,
            stock=[need.as_json() for need in needs],
            **spec_columns(spec, fields),
        )
        await _insert_holding_stock(ctx, instance, needs, terms)
        await _apply_new(ctx, site, kubeconfig, instance)
    return instance


async def _insert_holding_stock(ctx: Ctx, instance: Instance, needs: Sequence[stock.Need], terms: orders.Terms) -> None:
    """One transaction: the stock is taken, the order paid (a customer's) and the row written, or none of them."""
    cluster_id, port = instance.clusterid, instance.source_outsideport
    try:
        await stock.consume(ctx.session, needs)
        await quota_check.enforce(ctx, quota_check.Change(needs))
        await orders.place(ctx.session, ctx.principal, instance.id, needs, terms)
        ctx.session.add(instance)
        record(ctx.session, instance.id, NEW, APPLYING, "创建", _actor(ctx))
        await ctx.session.commit()
    except IntegrityError:
        await ctx.session.rollback()
        await nodeports.ensure_free(ctx.session, cluster_id, port)  # lost a race for the port: name the winner
        raise Conflict("实例名称冲突,请重试") from None
    except BaseException:
        await ctx.session.rollback()
        raise
    _clear_offers(ctx)


async def _apply_new(ctx: Ctx, site: Site, kubeconfig: str, instance: Instance) -> None:
    try:
        await site.apply_instance(kubeconfig, agent_params(instance, ctx))
    except KbossError as err:
        await _undo_create(ctx, site, kubeconfig, instance, err)
        raise
    await transition(ctx.session, instance, READY, "已在集群中创建", _actor(ctx))
    await ctx.session.commit()


async def _undo_create(ctx: Ctx, site: Site, kubeconfig: str, instance: Instance, err: KbossError) -> None:
    """Remove what the failed apply may have created, then the row and its stock. When the objects cannot be
    removed, the row stays (state failed, stock held) so that a later delete can finish the job."""
    cleaned = isinstance(err, SiteUnreachable) and not err.sent  # the request never left: nothing to remove
    if not cleaned:
        try:
            await site.delete_instance(kubeconfig, agent_params(instance, ctx))
            cleaned = True
        except KbossError as cleanup:
            log.warning("instance %s: cleanup after a failed apply failed: %s", instance.id, cleanup.message)
    if cleaned:
        await _remove_row(ctx, instance, f"创建失败,已清理: {err.message}", refund_all=True)
        return
    await transition(ctx.session, instance, FAILED, err.message, _actor(ctx), also={"last_error": err.message})
    await ctx.session.commit()
    err.message = f"{err.message} (集群中可能残留部分对象,实例 {instance.id} 已标记为失败并保留库存,请稍后删除)"


async def _remove_row(ctx: Ctx, instance: Instance, reason: str, *, refund_all: bool = False) -> None:
    """The stock given back, the order closed (refunding what is left of it) and the row gone, in one transaction."""
    try:
        await stock.release(ctx.session, needs_of(instance))
        await orders.close(ctx.session, instance.id, _actor(ctx), refund_all=refund_all)
        await transition(ctx.session, instance, GONE, reason, _actor(ctx))
        await ctx.session.commit()
    except BaseException:
        await ctx.session.rollback()
        raise
    _clear_offers(ctx)


# ---------------------------------------------------------------------------------------------
# Find, claim


async def _find_for_update(ctx: Ctx, params: Mapping[str, Any]) -> Instance:
    """By `id`; the spec makes it optional, so without it `clusterid` + `source_name` must name exactly one."""
    if params.get("id"):
        return await get_instance(ctx, params["id"])
    name, clusterid = params.get("source_name"), params.get("clusterid")
    if not (name and clusterid):
        raise MissingParameter("id")
    query = select(Instance.id).where(
        Instance.orgid == ctx.orgid, Instance.clusterid == str(clusterid), Instance.source_name == str(name)
    )
    if not ctx.principal.is_admin:
        query = query.where(Instance.userid == ctx.principal.user_id)
    ids = list((await ctx.session.scalars(query.limit(2))).all())
    if len(ids) != 1:
        raise InvalidParameter("id", "请指定实例 id" if ids else f"集群中没有名为 {name} 的资源实例")
    return await get_instance(ctx, ids[0])


async def _claim(
    ctx: Ctx,
    instance: Instance,
    to_state: str,
    reason: str,
    more: Sequence[stock.Need] = (),
    change: quota_check.Change | None = None,
) -> str:
    """Move a ready (or failed) instance to `to_state`, taking `more` stock in the same transaction (and checking
    the customer's quotas against `change`, what the instance will hold)."""
    previous = instance.state
    # The row records the extra stock as soon as it is taken: should kboss die before the change ends, the
    # row (failed by the sweeper) still accounts for all of it and a delete gives it all back.
    held = [*instance.stock, *(need.as_json() for need in more)]
    try:
        await transition(ctx.session, instance, to_state, reason, _actor(ctx), also={"stock": held})
        await stock.consume(ctx.session, more)
        await quota_check.enforce(ctx, change)
        await ctx.session.commit()
    except BaseException:
        await ctx.session.rollback()
        raise
    if more:
        _clear_offers(ctx)
    return previous


# ---------------------------------------------------------------------------------------------
# Update


async def update_instance(ctx: Ctx, params: Mapping[str, Any]) -> Instance:
    """Re-apply with the changed parameters; the stock follows the difference, taken before and given back
    after the apply, so that a failed update leaves both the cluster and the stock as they were."""
    instance = await _find_for_update(ctx, params)
    center, cluster = await instance_cluster(ctx, instance, params.get("cpcid"))
    if params.get("clusterid") and params["clusterid"] != instance.clusterid:
        raise InvalidParameter("clusterid", "实例不属于该集群")
    old_params = agent_params(instance, ctx)
    fields = {**{k: old_params[k] for k in SPEC_FIELDS}, **_fields(params, keep_masked_password=True)}
    for name in IMMUTABLE:
        if fields[name] != old_params[name]:
            raise InvalidParameter(name, "创建后不能修改;请删除实例后重新创建")
    new_params = {**old_params, **fields}
    spec = InstanceSpec.from_params(new_params)
    old_needs = needs_of(instance)
    needs = await _needs(ctx, cluster, spec, _models(params, spec, old_needs))
    more, less = stock.difference(old_needs, needs)
    await nodeports.ensure_free(ctx.session, cluster.id, spec.outside_port, exclude=instance.id)
    kubeconfig = kubeconfig_of(ctx, cluster)
    async with site_for(ctx, center, cluster) as site:
        change = quota_check.Change(needs, old_needs, instance.id)
        previous = await _claim(ctx, instance, UPDATING, "更新", more, change)
        try:
            await site.apply_instance(kubeconfig, new_params)
        except KbossError as err:
            await _undo_update(ctx, site, kubeconfig, instance, (previous, old_params, old_needs, more), err)
            raise
        await _finish_update(ctx, instance, spec, fields, needs, less)
        await _drop_stale(ctx, site, kubeconfig, instance, (old_params, new_params))
    return instance


async def _finish_update(
    ctx: Ctx,
    instance: Instance,
    spec: InstanceSpec,
    fields: Mapping[str, str],
    needs: Sequence[stock.Need],
    less: Sequence[stock.Need],
) -> None:
    try:
        await stock.release(ctx.session, less)
        for column, value in spec_columns(spec, fields).items():
            setattr(instance, column, value)
        instance.source_authpasswd = ctx.box.seal(spec.auth_password.get_secret_value())
        instance.cpu_model = next(n.model for n in needs if n.role == "cpu")
        instance.health, instance.health_reason = "", ""  # re-applied: its pods are placed afresh
        held = [need.as_json() for need in needs]
        await transition(ctx.session, instance, READY, "更新完成", _actor(ctx), also={"stock": held, "last_error": ""})
        await ctx.session.commit()
    except BaseException:
        await ctx.session.rollback()
        raise
    _clear_offers(ctx)


async def _undo_update(
    ctx: Ctx,
    site: Site,
    kubeconfig: str,
    instance: Instance,
    before: tuple[str, dict[str, str], Sequence[stock.Need], Sequence[stock.Need]],
    err: KbossError,
) -> None:
    """Put the old objects back; if even that fails, keep the extra stock too (the cluster may run either)."""
    previous, old_params, old_needs, more = before
    try:
        await site.apply_instance(kubeconfig, old_params)
        restored = True
    except KbossError as again:
        log.warning("instance %s: re-applying after a failed update failed: %s", instance.id, again.message)
        restored = False
    also: dict[str, Any] = {"last_error": err.message}
    try:
        if restored:  # else the row keeps the extra stock `_claim` recorded: the cluster may run either
            await stock.release(ctx.session, more)
            also["stock"] = [need.as_json() for need in old_needs]
        reason = f"更新失败{',已恢复' if restored else ''}: {err.message}"
        await transition(ctx.session, instance, previous if restored else FAILED, reason, _actor(ctx), also=also)
        await ctx.session.commit()
    except BaseException:
        await ctx.session.rollback()
        raise
    _clear_offers(ctx)


async def _drop_stale(
    ctx: Ctx, site: Site, kubeconfig: str, instance: Instance, versions: tuple[dict[str, str], dict[str, str]]
) -> None:
    """Delete objects the old parameters had and the new ones do not (an Ingress, a claim, removed replicas'
    volumes: their stock was just given back). Failing here leaves a note, not a failed update."""
    try:
        old, new = (object_refs(InstanceSpec.from_params(p)) for p in versions)
        kept = {(r["kind"], r["metadata"]["name"]) for r in new}
        stale = [ref for ref in old if (ref["kind"], ref["metadata"]["name"]) not in kept]
        if stale:
            await site.delete_manifests(kubeconfig, yaml.safe_dump_all(stale))
    except KbossError as err:
        instance.last_error = f"旧对象未能删除: {err.message}"
        await ctx.session.commit()


# ---------------------------------------------------------------------------------------------
# Delete


async def delete_instance(ctx: Ctx, instance_id: str | None, *, force: bool = False) -> Instance:
    """Delete the objects through the agent, then give the stock back and delete the row. `force` (admins
    only) skips the cluster, for a cluster that is gone for good: its objects are then not removed."""
    instance = await get_instance(ctx, instance_id)
    center, cluster = await instance_cluster(ctx, instance)
    if force:
        ctx.require_admin()
        await _claim(ctx, instance, DELETING, "强制删除 (不经集群)")
        await _remove_row(ctx, instance, "强制删除: 集群中的对象未删除")
        return instance
    kubeconfig = kubeconfig_of(ctx, cluster)
    async with site_for(ctx, center, cluster) as site:
        previous = await _claim(ctx, instance, DELETING, "删除")
        try:
            await site.delete_instance(kubeconfig, agent_params(instance, ctx))
        except KbossError as err:
            also = {"last_error": err.message}
            await transition(ctx.session, instance, previous, f"删除失败: {err.message}", _actor(ctx), also=also)
            await ctx.session.commit()
            raise
    await _remove_row(ctx, instance, "已删除 (集群中的对象与库存一并删除)")
    return instance
