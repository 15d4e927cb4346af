"""Component stock in a cluster: what an instance needs, consumed and released without ever overselling.

An instance needs cpu cores of `cpu_model`, memory, a system disk (`disk_sys_limit`), a data disk
(`source_storagelimits`) and GPU cards of `gpu_model`. Each need is taken from one component of the cluster's
center (its stock row in that cluster), converted to the component's `resource_unit` as quotes convert
(`kboss.pricing.units`), and rounded up to whole units: stock is counted in whole units, and rounding down would
sell what is not there.

Consuming is one conditional UPDATE per stock row, `consumed = consumed + n WHERE stock - consumed >= n`, whose
row count says whether it held. The database applies it atomically on SQLite (one writer at a time) and on
PostgreSQL (a concurrent writer waits for the row, then re-checks the condition), so no interleaving of orders
can take more than the stock. Rows are updated in id order, so two orders never wait on each other in a cycle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any, Protocol, TypeVar

from sqlalchemy import case, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.db.cas import compare_and_set
from kboss.db.models import Component, ComponentStock
from kboss.errors import Conflict, InvalidParameter
from kboss.kube.instance_spec import InstanceSpec
from kboss.pricing import units

DEFAULT_MODEL = "STANDARD"
# What an instance consumes, by role: the component type, the parameter naming its model, preferred models.
ROLE_TYPE = {"cpu": "cpu", "memory": "memory", "sysdisk": "disk", "datadisk": "disk", "gpu": "gpu"}
ROLE_PARAM = {
    "cpu": "cpu_model",
    "memory": "memory_model",
    "sysdisk": "sysdisk_model",
    "datadisk": "disk_model",
    "gpu": "gpu_model",
}
# The spec's catalog sells disks as models SYS and DATA: each disk of an instance goes to its own when present.
PREFERRED_MODELS = {"sysdisk": "SYS", "datadisk": "DATA"}
# Engines whose pods all run at once, `replicas` of them; the others run one pod at a time.
REPLICATED = frozenset({"StatefulSet", "Deployment", "DaemonSet"})
NO_TYPE = "没有该类型组件"
Taken = dict[str, int]  # whole units an order already draws, per component id


class InsufficientStock(Conflict):
    code = "insufficient_stock"


@dataclass(frozen=True)
class Offer:
    """A component of the center and its stock row in the cluster (`stock_id` None: never stocked there)."""

    component_id: str
    stock_id: str | None
    type: str
    model: str
    unit: str
    stock: int
    consumed: int
    unit_price: Decimal = Decimal(0)
    charge_unit: str = "小时"
    account_unit: str = "元"

    @property
    def available(self) -> int:
        return self.stock - self.consumed

    @property
    def key(self) -> str:
        return self.component_id

    @property
    def resource_unit(self) -> str:
        return self.unit


@dataclass(frozen=True)
class Need:
    """An amount, in the component's unit, to take from one stock row."""

    role: str
    type: str
    model: str
    unit: str
    component_id: str
    stock_id: str | None
    amount: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Need:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__})

    @property
    def request_amount(self) -> Fraction:
        """The amount back in request units (cores, Mi, Gi, cards)."""
        return self.amount * units.RESOURCE_UNITS[self.type][self.unit]


def short_message(type_: str, model: str, available: int, requested: int) -> str:
    """The quote's words for short stock (`kboss.pricing.quotes`)."""
    return f"{type_} {model} 库存不足 (库存: {available}, 请求: {requested})"


async def cluster_offers(session: AsyncSession, orgid: str, cpcid: str, clusterid: str) -> list[Offer]:
    """Every component of the center, with its stock and consumption in the cluster."""
    join = (ComponentStock.component_id == Component.id) & (ComponentStock.clusterid == clusterid)
    query = (
        select(Component, ComponentStock.id, ComponentStock.stock, ComponentStock.consumed)
        .outerjoin(ComponentStock, join)
        .where(Component.orgid == orgid, Component.cpcid == cpcid)
        .order_by(Component.type, Component.model)
    )
    return [
        Offer(
            c.id,
            stock_id,
            c.type,
            c.model,
            c.resource_unit,
            stock or 0,
            consumed or 0,
            c.unit_price,
            c.charge_unit,
            c.account_unit,
        )
        for c, stock_id, stock, consumed in (await session.execute(query)).all()
    ]


def lookup(
    offers: Sequence[Offer], role: str, model: str | None, amount: Fraction = Fraction(0), taken: Taken | None = None
) -> tuple[Offer | None, str]:
    """The component a need of `role` for `amount` (request units) draws on, or why there is none.

    A named model is that component. Without one (the document names no memory or disk model), any component of
    the type stocked in the cluster may serve: the role's preferred model (SYS, DATA) when it fits, else the
    cheapest that fits (the price of `amount` for an hour; STANDARD, then the model's name, break ties), else the
    one with the most left, whose short stock the caller then reports. `taken` is what earlier needs of the same
    order already draw, per component id, so that a system and a data disk are not both given the last units."""
    kind = ROLE_TYPE[role]
    candidates = [offer for offer in offers if offer.type == kind]
    if not candidates:
        return None, f"{NO_TYPE}: {kind}"
    if model:
        found = next((offer for offer in candidates if offer.model == model), None)
        return found, "" if found else f"无效的 {kind} 部件型号: {model}"
    stocked = [offer for offer in candidates if offer.stock_id is not None] or candidates
    return cheapest_fitting(stocked, role, amount, taken or {}), ""


class Choosable(Protocol):
    """A component as the model rule sees it: this module's offers, and the quotes'."""

    @property
    def key(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def resource_unit(self) -> str: ...
    @property
    def unit_price(self) -> Decimal: ...
    @property
    def charge_unit(self) -> str: ...
    @property
    def account_unit(self) -> str: ...
    @property
    def available(self) -> int: ...


AnyOffer = TypeVar("AnyOffer", bound=Choosable)


def hourly_price(offer: Choosable, request_amount: Fraction) -> Fraction:
    """What `request_amount` (request units) of the component costs for an hour, in 元: the rule's yardstick."""
    whole_units = in_unit(offer.type, request_amount, offer.resource_unit)
    rate = Fraction(offer.unit_price) * units.CURRENCY_IN_YUAN.get(offer.account_unit, Fraction(1))
    return whole_units * rate * units.periods(1, "小时", offer.charge_unit)


def cheapest_fitting(candidates: Sequence[AnyOffer], role: str, amount: Fraction, taken: Taken) -> AnyOffer:
    """The rule for a line without a model (see `lookup`); `candidates` are of one type and not empty."""

    def left(offer: AnyOffer) -> int:
        return offer.available - taken.get(offer.key, 0)

    fitting = [offer for offer in candidates if in_unit(offer.type, amount, offer.resource_unit) <= left(offer)]
    preferred = [offer for offer in fitting if offer.model == PREFERRED_MODELS.get(role)]
    if preferred:
        return preferred[0]
    if fitting:
        return min(fitting, key=lambda offer: (hourly_price(offer, amount), offer.model != DEFAULT_MODEL, offer.model))
    return max(candidates, key=lambda offer: (left(offer), offer.model == DEFAULT_MODEL))


def pick(
    offers: Sequence[Offer], role: str, model: str | None, amount: Fraction = Fraction(0), taken: Taken | None = None
) -> Offer:
    """`lookup`, refusing what it cannot find: a missing type is the catalog's gap, the rest the caller's."""
    offer, problem = lookup(offers, role, model, amount, taken)
    if offer is not None:
        return offer
    if problem.startswith(NO_TYPE):
        raise Conflict(f"{problem} (该算力中心没有此类部件,无法扣减库存)")
    raise InvalidParameter(ROLE_PARAM[role], problem)


def in_unit(kind: str, request_amount: Fraction, unit: str) -> int:
    """A request amount (cores, Mi, Gi, cards) in the component's unit, rounded up to a whole unit."""
    return math.ceil(units.request_amount_in(kind, request_amount, unit))


def instance_requests(spec: InstanceSpec) -> dict[str, Fraction]:
    """What an instance takes, by role, in request units. A StatefulSet has a data disk per replica; the other
    engines share one claim. A DaemonSet counts `replicas` pods: the platform cannot know the nodes it will match."""
    pods = spec.replicas if spec.engine in REPLICATED else 1
    volumes = pods if spec.engine == "StatefulSet" else 1
    return {
        "cpu": Fraction(spec.cpu_millicores, 1000) * pods,
        "memory": Fraction(spec.memory_bytes, 2**20) * pods,
        "sysdisk": Fraction(spec.ephemeral_bytes, 2**30) * pods,
        "datadisk": Fraction(spec.storage_bytes, 2**30) * volumes if spec.storage_bytes else Fraction(0),
        "gpu": Fraction(spec.gpu * pods),
    }


def needs_for(offers: Sequence[Offer], requests: Mapping[str, Fraction], models: Mapping[str, str]) -> list[Need]:
    """One need per role with a positive amount; roles asking for nothing need no component at all."""
    found: list[Need] = []
    taken: Taken = {}
    for role, amount in requests.items():
        if amount <= 0:
            continue
        offer = pick(offers, role, models.get(role) or None, amount, taken)
        need = in_unit(offer.type, amount, offer.unit)
        taken[offer.component_id] = taken.get(offer.component_id, 0) + need
        found.append(Need(role, offer.type, offer.model, offer.unit, offer.component_id, offer.stock_id, need))
    return found


def per_row(needs: Iterable[Need]) -> dict[str, tuple[Need, int]]:
    """Needs summed per stock row (a system and a data disk may share one component), keyed by stock id."""
    totals: dict[str, tuple[Need, int]] = {}
    for need in needs:
        key = need.stock_id or f"unstocked:{need.component_id}"
        first, amount = totals.get(key, (need, 0))
        totals[key] = (first, amount + need.amount)
    return totals


def shortfalls(offers: Sequence[Offer], needs: Iterable[Need]) -> list[str]:
    """Catalog-only check: the quote's message for every stock row that cannot cover what is asked."""
    available = {offer.stock_id: offer.available for offer in offers if offer.stock_id}
    return [
        short_message(need.type, need.model, available.get(need.stock_id or "", 0), amount)
        for need, amount in per_row(needs).values()
        if amount > available.get(need.stock_id or "", 0)
    ]


async def consume(session: AsyncSession, needs: Iterable[Need]) -> None:
    """Take every need, or raise InsufficientStock (the caller rolls the transaction back)."""
    for key, (need, amount) in sorted(per_row(needs).items()):
        if amount <= 0:
            continue
        if need.stock_id is None:
            raise InsufficientStock(short_message(need.type, need.model, 0, amount))
        taken = await compare_and_set(
            session,
            update(ComponentStock)
            .where(ComponentStock.id == key, ComponentStock.stock - ComponentStock.consumed >= amount)
            .values(consumed=ComponentStock.consumed + amount)
            .execution_options(synchronize_session=False),
        )
        if not taken:
            row = (
                await session.execute(
                    select(ComponentStock.stock, ComponentStock.consumed).where(ComponentStock.id == key)
                )
            ).one_or_none()
            left = row.stock - row.consumed if row else 0
            raise InsufficientStock(short_message(need.type, need.model, max(left, 0), amount))


async def release(session: AsyncSession, needs: Iterable[Need]) -> None:
    """Give back what `consume` took; never below zero (stock rows may have been edited by hand)."""
    for key, (need, amount) in sorted(per_row(needs).items()):
        if amount <= 0 or need.stock_id is None:
            continue
        await session.execute(
            update(ComponentStock)
            .where(ComponentStock.id == key)
            .values(
                consumed=case(
                    (ComponentStock.consumed >= amount, ComponentStock.consumed - amount),
                    else_=0,
                )
            )
            .execution_options(synchronize_session=False)
        )


def difference(old: Iterable[Need], new: Iterable[Need]) -> tuple[list[Need], list[Need]]:
    """(what to take more, what to give back) when an instance changes from `old` to `new` needs."""
    before, after = per_row(old), per_row(new)
    more, less = [], []
    for key in sorted(set(before) | set(after)):
        need, amount_after = after.get(key, (before[key][0], 0))
        delta = amount_after - before.get(key, (need, 0))[1]
        if delta > 0:
            more.append(_with_amount(need, delta))
        elif delta < 0:
            less.append(_with_amount(before[key][0], -delta))
    return more, less


def _with_amount(need: Need, amount: int) -> Need:
    return Need(need.role, need.type, need.model, need.unit, need.component_id, need.stock_id, amount)
