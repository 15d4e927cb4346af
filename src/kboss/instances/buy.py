"""The buy page: products that cannot be deployed now (determine_accommodat), and GPU cards left to sell.

A product can be deployed when the catalog still has the stock it asks for AND (when the cluster answers) some
node can host it now, by the scheduler's rules (the site agent's capacity check, DESIGN §7). Orders in progress
(instances created or changed a moment ago) hold stock but may not have pods yet, so live data does not show
them: their requests are added to every product's, as if they all landed on the node the product would use.
That is pessimistic for the second or two an apply takes, and never sells what an order already holds.

When the cluster cannot be reached the answer comes from the catalog alone, and says so (`reason`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import select

from kboss import messages
from kboss.common.context import Ctx
from kboss.common.published import buyable_center, buyable_cluster, visible_centers
from kboss.db.models import Center, Cluster, Component, ComponentStock
from kboss.db.models_instances import Instance
from kboss.errors import Conflict, InvalidParameter, KbossError, MissingParameter, UpstreamError
from kboss.instances.boards import free_amount, gpu_model_of
from kboss.instances.records import end_reads, find_cluster, kubeconfig_of, needs_of, site_for
from kboss.instances.states import APPLYING, UPDATING
from kboss.kube.capacity import GPU_RESOURCE, normalize_gpu_model, parse_products
from kboss.kube.labels import parse_selector
from kboss.pricing import stock
from kboss.pricing.stock import Need

REASON_LIVE = "dynamic"
REASON_CATALOG = "catalog"
IN_PROGRESS = (APPLYING, UPDATING)
# The buy page waits this long for live data, then answers from the catalog: a slow site must not stall it.
LIVE_SECONDS = 10.0
_HARD_TAINTS = frozenset({"NoSchedule", "NoExecute"})


@dataclass
class Holds:
    """What orders in progress hold in a cluster, in request units (cores, Mi, cards by normalized model)."""

    cpu: Fraction = Fraction(0)
    memory: Fraction = Fraction(0)
    gpu: dict[str, Fraction] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    id: str
    live: dict[str, Any] | None  # the agent's fit: fits, nodes_fitting, nodes_total, reasons, message
    stock: list[str]  # the catalog's objections, in the quote's words
    draws: list[Need]  # the component each line would draw on

    @property
    def deployable(self) -> bool:
        return not self.stock and (self.live is None or bool(self.live.get("fits")))

    def as_dict(self) -> dict[str, Any]:
        reasons = list(self.stock)
        if self.live is not None and not self.live.get("fits"):
            reasons.insert(0, str(self.live.get("message", "")))
        return {
            "id": self.id,
            "deployable": self.deployable,
            "reasons": reasons,
            "live": self.live,
            "stock": self.stock,
            "components": [
                {"type": need.type, "model": need.model, "amount": need.amount, "unit": need.unit}
                for need in self.draws
            ],
        }


@dataclass(frozen=True)
class Assessment:
    reason: str  # REASON_LIVE or REASON_CATALOG
    detail: str  # why the cluster's live data could not be used, when it could not
    verdicts: list[Verdict]

    @property
    def unplaceable(self) -> list[str]:
        return [verdict.id for verdict in self.verdicts if not verdict.deployable]


# ---------------------------------------------------------------------------------------------
# Products


def _json(value: Any, param: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidParameter(param, messages.json_problem(exc)) from None


def _extra_labels(kyylabels: Any) -> list[str]:
    """`kyylabels`: node labels every product needs, as a JSON list or comma-separated `key=value` text."""
    if kyylabels is None or kyylabels == "":
        return []
    value = _json(kyylabels, "kyylabels") if str(kyylabels).lstrip().startswith("[") else kyylabels
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidParameter("kyylabels", "应为 key=value 标签的数组")
    selector = parse_selector(",".join(value), "kyylabels")
    return [f"{key}={val}" for key, val in selector.items()]


def products_of(resources: Any, kyylabels: Any) -> list[dict[str, Any]]:
    """The products as JSON objects, `kyylabels` added to each one's labels, validated as the agent will."""
    if resources is None or resources == "":
        raise MissingParameter("resources")
    items = _json(resources, "resources")
    items = [items] if isinstance(items, dict) else items
    if not isinstance(items, list):
        raise InvalidParameter("resources", "应为产品对象的数组")
    extra = _extra_labels(kyylabels)
    products = []
    for item in items:
        product = dict(item) if isinstance(item, dict) else item
        if extra and isinstance(product, dict):
            labels = product.get("labels") or []
            labels = labels.split(",") if isinstance(labels, str) else labels
            product["labels"] = [*labels, *extra] if isinstance(labels, list) else labels
        products.append(product)
    parse_products(products)  # names the first bad field: resources[1].resources[0].amount
    return products


def stock_check(offers: Sequence[stock.Offer], product: Mapping[str, Any]) -> tuple[list[str], list[stock.Need]]:
    """The catalog's objections to a product, in the quote's words, and the components its lines would draw on
    (a line without a model: by `stock.lookup`'s rule, which the answer shows)."""
    problems, needs = [], []
    taken: stock.Taken = {}
    for line in product.get("resources") or []:
        kind = str(line.get("type", "")).strip().lower()
        role = "datadisk" if kind == "disk" else kind
        wanted = Fraction(str(line.get("amount")))
        offer, problem = stock.lookup(offers, role, str(line.get("model") or "").strip() or None, wanted, taken)
        if offer is None:
            problems.append(problem)
            continue
        amount = stock.in_unit(kind, wanted, offer.unit)
        taken[offer.component_id] = taken.get(offer.component_id, 0) + amount
        needs.append(stock.Need(role, kind, offer.model, offer.unit, offer.component_id, offer.stock_id, amount))
    return problems + stock.shortfalls(offers, needs), needs


# ---------------------------------------------------------------------------------------------
# Holds of orders in progress


async def holds_in(ctx: Ctx, clusterid: str) -> Holds:
    # Every org's orders in progress on the cluster: its nodes are shared by the provider and its customers.
    query = select(Instance).where(Instance.clusterid == clusterid, Instance.state.in_(IN_PROGRESS))
    holds = Holds()
    for instance in (await ctx.session.scalars(query)).all():
        for need in needs_of(instance):
            if need.type == "cpu":
                holds.cpu += need.request_amount
            elif need.type == "memory":
                holds.memory += need.request_amount
            elif need.type == "gpu":
                model = normalize_gpu_model(need.model)
                holds.gpu[model] = holds.gpu.get(model, Fraction(0)) + need.request_amount
    return holds


def _number(amount: Fraction) -> str:
    return str(Decimal(amount.numerator) / Decimal(amount.denominator))


def with_holds(product: Mapping[str, Any], holds: Holds) -> dict[str, Any]:
    """The product as the live check must see it: plus what orders in progress hold (disks are volumes or
    ephemeral storage the scheduler counts differently, and are left to the catalog check)."""
    lines = list(product.get("resources") or [])
    extra = [
        {"type": kind, "amount": _number(amount)}
        for kind, amount in (("cpu", holds.cpu), ("memory", holds.memory))
        if amount > 0
    ]
    for line in lines:
        model = str(line.get("model") or "") if str(line.get("type", "")).lower() == "gpu" else ""
        held = holds.gpu.get(normalize_gpu_model(model)) if model else None
        if held:
            extra.append({"type": "gpu", "model": model, "amount": _number(held)})
    return {**product, "resources": lines + extra}


# ---------------------------------------------------------------------------------------------
# Assessment


async def assess(ctx: Ctx, params: Mapping[str, Any]) -> Assessment:
    """`clusterid` (and `cpcid`, which must then be its center), `resources` (products), `kyylabels`."""
    center, cluster = await find_cluster(ctx, params.get("cpcid"), params.get("clusterid"))
    products = products_of(params.get("resources"), params.get("kyylabels"))
    offers = await stock.cluster_offers(ctx.session, cluster.orgid, cluster.cpcid, cluster.id)
    holds = await holds_in(ctx, cluster.id)
    await end_reads(ctx)
    live, detail = await _live_fits(ctx, center, cluster, [with_holds(p, holds) for p in products])
    verdicts = [
        Verdict(str(product["id"]).strip(), live[index] if live else None, *stock_check(offers, product))
        for index, product in enumerate(products)
    ]
    return Assessment(REASON_LIVE if live is not None else REASON_CATALOG, detail, verdicts)


async def _live_fits(
    ctx: Ctx, center: Center, cluster: Cluster, products: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]] | None, str]:
    """The agent's verdicts, one per product in order; or None and why (the fallback is the catalog)."""
    try:
        kubeconfig = kubeconfig_of(ctx, cluster)
        async with site_for(ctx, center, cluster) as site:
            fits = await site.capacity(kubeconfig, json.dumps(products, ensure_ascii=False), LIVE_SECONDS)
    except (UpstreamError, Conflict) as err:
        return None, err.message
    if len(fits) != len(products):
        return None, "站点服务的容量检查结果与产品数量不一致"
    return fits, ""


# ---------------------------------------------------------------------------------------------
# GPU cards left


async def live_gpu_inventory(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> dict[str, int]:
    """Cards per model: per cluster, the catalog's stock − consumed, capped by what the cluster's nodes have
    free now (minus orders in progress) when it answers; summed over the clusters asked about."""
    catalog = await _gpu_catalog(ctx, cpcid, clusterid)
    clusters = {c.id: c for c in (await ctx.session.scalars(select(Cluster).where(Cluster.id.in_(catalog)))).all()}
    centers = {
        c.id: c
        for c in (
            await ctx.session.scalars(select(Center).where(Center.id.in_({c.cpcid for c in clusters.values()})))
        ).all()
    }
    holds = {cid: await holds_in(ctx, cid) for cid in catalog}
    await end_reads(ctx)
    free = await asyncio.gather(*(_free_gpus(ctx, centers[c.cpcid], c) for c in clusters.values()))
    live = dict(zip(clusters, free, strict=True))
    inventory: dict[str, int] = {}
    for cid, models in catalog.items():
        for model, available in models.items():
            key, free_now = normalize_gpu_model(model), live.get(cid)
            if free_now is not None:
                on_nodes = free_now.get(key, 0) - holds[cid].gpu.get(key, Fraction(0))
                available = min(available, max(int(on_nodes), 0))
            inventory[model] = inventory.get(model, 0) + available
    return inventory


async def _gpu_catalog(ctx: Ctx, cpcid: str | None, clusterid: str | None) -> dict[str, dict[str, int]]:
    """{cluster id: {model: stock − consumed}} for the org's GPU components in scope."""
    query = (
        select(ComponentStock.clusterid, Component.model, ComponentStock.stock, ComponentStock.consumed)
        .join(Component, ComponentStock.component_id == Component.id)
        .where(Component.type == "gpu", Component.cpcid.in_(select(Center.id).where(visible_centers(ctx.principal))))
        .order_by(Component.model)
    )
    if cpcid:
        query = query.where(Component.cpcid == (await buyable_center(ctx, cpcid)).id)
    if clusterid:
        query = query.where(ComponentStock.clusterid == (await buyable_cluster(ctx, clusterid)).id)
    catalog: dict[str, dict[str, int]] = {}
    for cid, model, amount, consumed in (await ctx.session.execute(query)).all():
        models = catalog.setdefault(cid, {})
        models[model] = models.get(model, 0) + max(amount - consumed, 0)
    return catalog


async def _free_gpus(ctx: Ctx, center: Center, cluster: Cluster) -> dict[str, int] | None:
    """Free cards per normalized model on the nodes that can take pods; None when the cluster does not answer."""
    try:
        kubeconfig = kubeconfig_of(ctx, cluster)
        async with site_for(ctx, center, cluster) as site:
            nodes = await site.cluster_nodes(kubeconfig, LIVE_SECONDS)
    except KbossError:
        return None
    if any("requested" not in node for node in nodes):
        return None  # an agent too old to say what pods request: the catalog alone answers
    free: dict[str, int] = {}
    for node in nodes:
        model = gpu_model_of(node.get("labels") or {})
        if not model or not _schedulable(node):
            continue
        _, cards = free_amount(node.get("allocatable") or {}, node["requested"] or {}, GPU_RESOURCE)
        free[normalize_gpu_model(model)] = free.get(normalize_gpu_model(model), 0) + int(cards)
    return free


def _schedulable(node: Mapping[str, Any]) -> bool:
    tainted = any(t.get("effect") in _HARD_TAINTS for t in node.get("taints") or [])
    return bool(node.get("ready")) and not node.get("unschedulable") and not tainted
