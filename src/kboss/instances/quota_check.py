"""What a customer holds, counted against its provider's quotas (`kboss.customers.quotas`).

A customer holds what its instance rows hold: every row in a state that holds stock (`states.STATES`: a row
holds its stock from its creation to its removal, a failed one included), in whole cores, whole GiB, cards per
GPU model, and one instance each. Each instance's amounts are rounded up on their own, as the stock counts
them: an instance of 512Mi holds a whole GiB.

The check runs in the transaction that takes the stock and writes the row, after the stock is taken and after
the customer's account row is locked (`ledger.lock_account`, the lock every charge of the customer takes):
the second of two concurrent orders waits there until the first commits, then counts the first one's row, so
no two orders can both pass a quota that fits only one. The account is locked after the stock, not before, in
the order every other path takes them (an order's charge, a deletion's refund), so that two transactions of one
customer never wait on each other in a cycle.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.billing import ledger
from kboss.common.context import Ctx
from kboss.customers import quotas
from kboss.db.models_instances import Instance
from kboss.instances.states import STATES
from kboss.pricing import stock, units


@dataclass(frozen=True)
class Change:
    """What an order makes one instance hold: `after` instead of `before` (nothing, for a new instance);
    `instance_id` names the instance changed, whose row is counted as `before`."""

    after: Sequence[stock.Need]
    before: Sequence[stock.Need] = ()
    instance_id: str | None = None


def usage(needs: Iterable[stock.Need]) -> dict[str, int]:
    """One instance's holding in quota units (disks are not limited)."""
    used = {quotas.INSTANCES: 1}
    for need in needs:
        if need.unit not in units.RESOURCE_UNITS.get(need.type, {}):
            continue  # a unit no price book accepts: never sold, so never counted
        if need.type == "cpu":
            key, amount = quotas.CPU, units.request_amount_in("cpu", need.request_amount, "核")
        elif need.type == "memory":
            key, amount = quotas.MEMORY, units.request_amount_in("memory", need.request_amount, "Gi")
        elif need.type == "gpu":
            key, amount = f"{quotas.GPU_PREFIX}{need.model}", need.request_amount
        else:
            continue
        used[key] = used.get(key, 0) + math.ceil(amount)
    return used


def _add(total: dict[str, int], more: dict[str, int]) -> None:
    for key, amount in more.items():
        total[key] = total.get(key, 0) + amount


async def holdings(session: AsyncSession, orgid: str, exclude: str | None = None) -> dict[str, int]:
    """What the org's instances hold (`exclude`: but that one), with cpu, memory and instances always present."""
    query = select(Instance.stock).where(Instance.orgid == orgid, Instance.state.in_(STATES))
    if exclude:
        query = query.where(Instance.id != exclude)
    total = {quotas.CPU: 0, quotas.MEMORY: 0, quotas.INSTANCES: 0}
    for held in (await session.scalars(query)).all():
        _add(total, usage(stock.Need.from_json(item) for item in held or []))
    return total


def _growth(change: Change) -> dict[str, int]:
    """What the change adds, per resource (what it gives back is not a credit toward another resource)."""
    before = usage(change.before) if change.instance_id else {}
    after = usage(change.after)
    return {key: after[key] - before.get(key, 0) for key in after if after[key] > before.get(key, 0)}


async def enforce(ctx: Ctx, change: Change | None) -> None:
    """Refuse (QuotaExceeded) a customer's order that would go beyond a quota; nothing for a provider's own, nor
    for a change that grows nothing. Runs inside the order's transaction, after its stock is taken."""
    if change is None or not ctx.principal.is_customer:
        return
    adding = _growth(change)
    if not set(adding) & set(await quotas.limits(ctx.session, ctx.orgid)):
        return  # no limit on what it adds: no lock, no count
    await ledger.lock_account(ctx.session, ctx.orgid)
    held = await holdings(ctx.session, ctx.orgid, exclude=change.instance_id)
    if change.instance_id:
        _add(held, usage(change.before))
    await quotas.check(ctx.session, ctx.orgid, held, adding)


async def quota(ctx: Ctx, orgid: str) -> dict[str, Any]:
    """`{"orgid", "limits", "used"}` of a customer the caller may read (`quotas.readable_customer`)."""
    customer = await quotas.readable_customer(ctx, orgid)
    limits = await quotas.limits(ctx.session, customer.id)
    used = await holdings(ctx.session, customer.id)
    for resource in limits:  # a limited GPU model the customer holds none of reads 0
        used.setdefault(resource, 0)
    return {"orgid": customer.id, "limits": dict(sorted(limits.items())), "used": dict(sorted(used.items()))}


async def replace(ctx: Ctx, orgid: str, body: dict[str, Any]) -> dict[str, Any]:
    """A provider admin's new set of limits for a customer; the quota afterwards."""
    customer = await quotas.replace_limits(ctx, orgid, body)
    return await quota(ctx, customer.id)
