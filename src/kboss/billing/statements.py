"""Monthly statements of customer accounts and a provider's revenue (docs/billing.md, "Statements").

A statement covers one UTC calendar month of one customer org: its ledger entries of the month grouped per
instance (with the order's price lines and each line's share of the money), its credits listed apart, and totals
that are sums of the entries themselves, so they equal the ledger to the 分. Amounts are signed as the ledger signs
them (charges negative, refunds and credits positive): the month's net is the sum of its entries, and the opening
balance plus the net is the closing balance.

An instance row goes when the instance is deleted, so where an instance ran is taken from what outlives it: the
row while it exists, else the center of the order's components and the one cluster they are stocked on. The
schema stays as it is.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.billing import ledger
from kboss.billing.money import from_fen, text
from kboss.common.context import Ctx
from kboss.common.records import time_text
from kboss.customers.service import get_customer, require_provider_admin
from kboss.db.models import ORG_CUSTOMER, Center, Cluster, Component, ComponentStock, Org
from kboss.db.models_billing import LedgerEntry, Order
from kboss.db.models_instances import Instance
from kboss.errors import InvalidParameter, MissingParameter, NotFound
from kboss.pricing import units

# ASCII digits only: `\d` would take other scripts' digits too.
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_FIRST_YEAR, _LAST_YEAR = 1970, 9998  # the last one's December still has a following month


@dataclass(frozen=True)
class Month:
    name: str  # "2026-01"
    start: dt.datetime
    end: dt.datetime  # the next month's start: entries are `start <= at < end`


def parse_month(value: Any) -> Month:
    if value in (None, ""):
        raise MissingParameter("month")
    found = _MONTH.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidParameter("month", "应为 YYYY-MM 格式的月份,例如 2026-01")
    year, month = int(found[1]), int(found[2])
    if not (1 <= month <= 12 and _FIRST_YEAR <= year <= _LAST_YEAR):
        raise InvalidParameter("month", f"月份应为 01 到 12,年份 {_FIRST_YEAR} 到 {_LAST_YEAR}")
    start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
    return Month(value, start, end)


@dataclass
class Usage:
    """One instance's (non-credit) entries of the month, summed per kind."""

    orgid: str
    instance_id: str | None
    order_id: str | None
    fen: dict[str, int] = field(default_factory=dict)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    entries: int = 0

    @property
    def net(self) -> int:
        return sum(self.fen.values())

    def add(self, kind: str, fen: int, first: dt.datetime, last: dt.datetime, count: int) -> None:
        self.fen[kind] = self.fen.get(kind, 0) + fen
        self.first = min(self.first, first) if self.first else first
        self.last = max(self.last, last) if self.last else last
        self.entries += count


@dataclass(frozen=True)
class Place:
    name: str = ""
    cpcid: str | None = None
    center: str = ""
    clusterid: str | None = None
    cluster: str = ""


def _in_month(orgids: Sequence[str], month: Month) -> Any:
    return (LedgerEntry.orgid.in_(orgids), LedgerEntry.at >= month.start, LedgerEntry.at < month.end)


async def usages(session: AsyncSession, orgids: Sequence[str], month: Month) -> list[Usage]:
    """Grouped in the database: a metered instance has an entry per metering round, tens of thousands a month."""
    key = (LedgerEntry.orgid, LedgerEntry.instance_id, LedgerEntry.order_id, LedgerEntry.kind)
    sums = (func.sum(LedgerEntry.amount_fen), func.min(LedgerEntry.at), func.max(LedgerEntry.at), func.count())
    query = select(*key, *sums).where(*_in_month(orgids, month), LedgerEntry.kind != ledger.CREDIT).group_by(*key)
    found: dict[tuple[str, str | None, str | None], Usage] = {}
    for orgid, instance_id, order_id, kind, fen, first, last, count in (await session.execute(query)).all():
        usage = found.setdefault((orgid, instance_id, order_id), Usage(orgid, instance_id, order_id))
        usage.add(kind, int(fen), _utc(first), _utc(last), int(count))
    return sorted(found.values(), key=lambda u: (u.first or month.start, u.instance_id or ""))


def _utc(value: Any) -> dt.datetime:
    """An aggregate's time: SQLite may hand back the stored text, and it is UTC either way."""
    when = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(when, dt.datetime)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def shares(lines: Sequence[Mapping[str, Any]], fen: int) -> list[int]:
    """`fen` split over the lines in proportion to what each costs over the same time (amount × unit price per
    second of its charge unit), each share rounded down and the remaining 分 on the largest line: the shares sum
    to `fen` exactly. A negative amount (a refund) is split likewise, negative."""
    if not lines:
        return []
    weights = [
        Fraction(int(line["amount"])) * Fraction(Decimal(str(line["unit_price"])))
        / units.PERIOD_SECONDS[str(line["charge_unit"])]
        for line in lines
    ]  # fmt: skip
    total, whole = sum(weights, Fraction(0)), abs(fen)
    parts = [int(whole * weight / total) for weight in weights] if total > 0 else [0] * len(lines)
    largest = max(range(len(lines)), key=lambda i: weights[i])
    parts[largest] += whole - sum(parts)
    return [-part if fen < 0 else part for part in parts]


def line_amounts(lines: Sequence[Mapping[str, Any]], usage: Usage) -> list[int]:
    """Charges and refunds split apart (each as the rule says), then added per line."""
    charged = shares(lines, usage.fen.get(ledger.CHARGE, 0))
    refunded = shares(lines, usage.net - usage.fen.get(ledger.CHARGE, 0))
    return [a + b for a, b in zip(charged, refunded, strict=True)]


async def orders_of(session: AsyncSession, found: Iterable[Usage]) -> dict[str, Order]:
    ids = {usage.order_id for usage in found if usage.order_id}
    if not ids:
        return {}
    return {order.id: order for order in (await session.scalars(select(Order).where(Order.id.in_(ids)))).all()}


async def places(session: AsyncSession, found: Sequence[Usage], orders: Mapping[str, Order]) -> dict[str, Place]:
    """Where each instance of `found` runs (ran): its row, or what its order's components tell."""
    ids = {usage.instance_id for usage in found if usage.instance_id}
    rows = await session.execute(
        select(Instance.id, Instance.source_name, Instance.cpcid, Instance.clusterid).where(Instance.id.in_(ids))
    )
    live = {row[0]: row[1:] for row in rows.all()}
    components = {str(line["component_id"]) for order in orders.values() for line in order.lines}
    homes = dict(
        (await session.execute(select(Component.id, Component.cpcid).where(Component.id.in_(components)))).all()
    )
    stocked: dict[str, set[str]] = defaultdict(set)
    stock = select(ComponentStock.component_id, ComponentStock.clusterid).where(
        ComponentStock.component_id.in_(components)
    )
    for component_id, clusterid in (await session.execute(stock)).all():
        stocked[component_id].add(clusterid)
    where: dict[str, tuple[str, str | None, str | None]] = {}
    for usage in found:
        if usage.instance_id in live:
            name, cpcid, clusterid = live[usage.instance_id]
            where[usage.instance_id] = (name, cpcid, clusterid)
        elif usage.instance_id:
            order = orders.get(usage.order_id or "")
            where[usage.instance_id] = ("", *_gone_place(order, homes, stocked))
    return await _named(session, where)


def _gone_place(
    order: Order | None, homes: Mapping[str, str], stocked: Mapping[str, set[str]]
) -> tuple[str | None, str | None]:
    """A deleted instance's center (its components') and cluster (the only one stocking all of them), or None."""
    lines = order.lines if order else []
    centers = {homes.get(str(line["component_id"])) for line in lines}
    clusters = [stocked.get(str(line["component_id"]), set()) for line in lines]
    common = set.intersection(*clusters) if clusters else set()
    cpcid = centers.pop() if len(centers) == 1 else None
    return cpcid, (common.pop() if len(common) == 1 else None)


async def _named(session: AsyncSession, where: Mapping[str, tuple[str, str | None, str | None]]) -> dict[str, Place]:
    cpcids = {cpcid for _, cpcid, _ in where.values() if cpcid}
    clusterids = {clusterid for _, _, clusterid in where.values() if clusterid}
    centers = dict((await session.execute(select(Center.id, Center.name).where(Center.id.in_(cpcids)))).all())
    clusters = dict((await session.execute(select(Cluster.id, Cluster.name).where(Cluster.id.in_(clusterids)))).all())
    return {
        iid: Place(name, cpcid, centers.get(cpcid or "", ""), clusterid, clusters.get(clusterid or "", ""))
        for iid, (name, cpcid, clusterid) in where.items()
    }


def _period(order: Order | None, usage: Usage, month: Month) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The order's time (its start to its end, its closing, or what was metered) within the month; without an
    order, the first and last entry's times."""
    if order is None:
        return usage.first, usage.last
    ends = [when for when in (order.ends_at, order.closed_at) if when is not None]
    end = min(ends) if ends else (order.metered_until or usage.last or month.end)
    start, end = max(order.starts_at, month.start), min(end, month.end)
    return (start, end) if start <= end else (usage.first, usage.last)


def _line_row(line: Mapping[str, Any], fen: int) -> dict[str, Any]:
    return {
        "component_id": line.get("component_id"), "type": line.get("type", ""), "model": line.get("model", ""),
        "quantity": int(line["amount"]), "unit": line.get("unit", ""), "unit_price": str(line["unit_price"]),
        "charge_unit": str(line["charge_unit"]), "amount": _yuan(fen),
    }  # fmt: skip


def instance_row(usage: Usage, order: Order | None, place: Place, month: Month) -> dict[str, Any]:
    lines = order.lines if order else []
    start, end = _period(order, usage, month)
    return {
        "instance_id": usage.instance_id, "name": place.name, "order_id": usage.order_id,
        "mode": order.mode if order else "", "cpcid": place.cpcid, "center": place.center,
        "clusterid": place.clusterid, "cluster": place.cluster,
        "period": {"from": time_text(start), "to": time_text(end)},
        "lines": [_line_row(line, fen) for line, fen in zip(lines, line_amounts(lines, usage), strict=True)],
        "entries": usage.entries, "charges": _yuan(usage.fen.get(ledger.CHARGE, 0)),
        "refunds": _yuan(usage.fen.get(ledger.REFUND, 0)), "net": _yuan(usage.net),
    }  # fmt: skip


def _yuan(fen: int) -> str:
    return text(from_fen(fen))


@dataclass
class Totals:
    """In 分, signed as the ledger: `net` is the sum of every entry of the month, credits included."""

    charges: int = 0
    refunds: int = 0
    credits: int = 0
    net: int = 0
    opening: int = 0

    def add(self, other: Totals) -> None:
        self.charges, self.refunds = self.charges + other.charges, self.refunds + other.refunds
        self.credits, self.net, self.opening = (
            self.credits + other.credits,
            self.net + other.net,
            self.opening + other.opening,
        )

    def row(self) -> dict[str, str]:
        named = {"charges": self.charges, "refunds": self.refunds, "credits": self.credits, "net": self.net}
        return {
            **{k: _yuan(v) for k, v in named.items()},
            "opening": _yuan(self.opening),
            "closing": _yuan(self.opening + self.net),
        }


async def _openings(session: AsyncSession, orgids: Sequence[str], month: Month) -> dict[str, int]:
    query = select(LedgerEntry.orgid, func.sum(LedgerEntry.amount_fen)).where(
        LedgerEntry.orgid.in_(orgids), LedgerEntry.at < month.start
    )
    return {orgid: int(fen) for orgid, fen in (await session.execute(query.group_by(LedgerEntry.orgid))).all()}


async def _credits(session: AsyncSession, orgids: Sequence[str], month: Month) -> dict[str, list[LedgerEntry]]:
    query = select(LedgerEntry).where(*_in_month(orgids, month), LedgerEntry.kind == ledger.CREDIT)
    found: dict[str, list[LedgerEntry]] = defaultdict(list)
    for entry in (await session.scalars(query.order_by(LedgerEntry.id))).all():
        found[entry.orgid].append(entry)
    return found


def _credit_row(entry: LedgerEntry) -> dict[str, Any]:
    return {"id": entry.id, "at": time_text(entry.at), "amount": _yuan(entry.amount_fen), "note": entry.note}


def _head(month: Month) -> dict[str, Any]:
    last = month.end - dt.timedelta(seconds=1)
    return {"month": month.name, "from": time_text(month.start), "to": time_text(last), "timezone": "UTC", "unit": "元"}


async def _build(session: AsyncSession, orgs: Sequence[Org], month: Month) -> list[tuple[dict[str, Any], Totals]]:
    """The statements of `orgs` (a few queries whatever their number)."""
    ids = [org.id for org in orgs]
    found = await usages(session, ids, month)
    orders = await orders_of(session, found)
    where = await places(session, found, orders)
    openings, credits = await _openings(session, ids, month), await _credits(session, ids, month)
    built = []
    for org in orgs:
        mine = [usage for usage in found if usage.orgid == org.id]
        paid = credits.get(org.id, [])
        totals = Totals(opening=openings.get(org.id, 0), credits=sum(entry.amount_fen for entry in paid))
        totals.charges = sum(usage.fen.get(ledger.CHARGE, 0) for usage in mine)
        totals.refunds = sum(usage.fen.get(ledger.REFUND, 0) for usage in mine)
        totals.net = sum(usage.net for usage in mine) + totals.credits
        rows = [
            instance_row(u, orders.get(u.order_id or ""), where.get(u.instance_id or "", Place()), month) for u in mine
        ]
        answer = {**_head(month), "customer": {"orgid": org.id, "name": org.name}, "instances": rows}
        built.append(({**answer, "credits": [_credit_row(e) for e in paid], "totals": totals.row()}, totals))
    return built


async def _subjects(ctx: Ctx, customer: str) -> list[Org]:
    """Whose statements the caller asks for: a customer only its own; a provider admin one or all of its own."""
    if ctx.principal.is_customer:
        if customer and customer != ctx.orgid:
            raise NotFound(f"客户不存在: {customer}")
        org = await ctx.session.get(Org, ctx.orgid)
        assert org is not None
        return [org]
    require_provider_admin(ctx)
    if customer:
        return [await get_customer(ctx, customer)]
    query = select(Org).where(Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER).order_by(Org.name)
    return list((await ctx.session.scalars(query)).all())


async def statement(ctx: Ctx, params: Mapping[str, Any]) -> dict[str, Any]:
    """`month=YYYY-MM` (and a provider's `customer=<orgid>`): one statement, or a provider's all with their sum."""
    month = parse_month(params.get("month"))
    customer = str(params.get("customer") or "")
    built = await _build(ctx.session, await _subjects(ctx, customer), month)
    if ctx.principal.is_customer or customer:
        return built[0][0]
    grand = Totals()
    for _, totals in built:
        grand.add(totals)
    return {**_head(month), "customers": [answer for answer, _ in built], "totals": grand.row()}


@dataclass
class Revenue:
    """A provider's takings in 分 (charges positive, refunds negative) per center, cluster and component type."""

    centers: dict[tuple[str | None, str], int] = field(default_factory=lambda: defaultdict(int))
    clusters: dict[tuple[str | None, str, str | None], int] = field(default_factory=lambda: defaultdict(int))
    types: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, usage: Usage, place: Place, order: Order | None) -> None:
        self.centers[place.cpcid, place.center] -= usage.net
        self.clusters[place.clusterid, place.cluster, place.cpcid] -= usage.net
        lines = order.lines if order else []
        for line, fen in zip(lines, line_amounts(lines, usage), strict=True):
            self.types[str(line.get("type", ""))] -= fen
        if not lines:  # nothing to split it by: still counted, so that the types sum to the total
            self.types[""] -= usage.net

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        centers = sorted(self.centers.items(), key=lambda kv: (kv[0][1], kv[0][0] or ""))
        clusters = sorted(self.clusters.items(), key=lambda kv: (kv[0][1], kv[0][0] or ""))
        return {
            "by_center": [{"cpcid": k[0], "center": k[1], "amount": _yuan(v)} for k, v in centers],
            "by_cluster": [
                {"clusterid": k[0], "cluster": k[1], "cpcid": k[2], "amount": _yuan(v)} for k, v in clusters
            ],
            "by_type": [{"type": k, "amount": _yuan(v)} for k, v in sorted(self.types.items())],
        }


async def revenue(ctx: Ctx, params: Mapping[str, Any]) -> dict[str, Any]:
    """A provider admin's revenue of a month (its customers' charges less refunds) by center, cluster and type."""
    require_provider_admin(ctx)
    month = parse_month(params.get("month"))
    query = select(Org.id).where(Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER)
    ids = list((await ctx.session.scalars(query)).all())
    found = await usages(ctx.session, ids, month) if ids else []
    orders = await orders_of(ctx.session, found)
    where = await places(ctx.session, found, orders)
    taken = Revenue()
    for usage in found:
        taken.add(usage, where.get(usage.instance_id or "", Place()), orders.get(usage.order_id or ""))
    charges = -sum(usage.fen.get(ledger.CHARGE, 0) for usage in found)
    refunds = -sum(usage.fen.get(ledger.REFUND, 0) for usage in found)
    totals = {"charges": _yuan(charges), "refunds": _yuan(refunds), "net": _yuan(-sum(u.net for u in found))}
    return {**_head(month), "totals": totals, **taken.rows()}
