"""Quotas per customer: a provider's limits on what one of its customers may hold at once — cores (`cpu`), memory
in GiB (`memory`), instances (`instances`) and cards of one GPU model (`gpu:<model>`). A resource without a limit
is unlimited.

An order beyond a limit is refused with `QuotaExceeded`, naming the quota. What a customer holds is counted from
its instances (`kboss.instances.quota_check`, which also serialises the check with the customer's other orders):
this module only knows the limits, so that customers stay below instances in the layers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.common.context import Ctx
from kboss.customers.service import get_customer, require_provider_admin
from kboss.db.models import Org
from kboss.db.models_billing import CustomerQuota
from kboss.errors import Conflict, InvalidParameter, NotFound

CPU, MEMORY, INSTANCES, GPU_PREFIX = "cpu", "memory", "instances", "gpu:"
UNIT_TEXT = {CPU: "核", MEMORY: "GiB", INSTANCES: "个"}  # gpu:<model>: 卡
# A component model as the catalog takes it (`kboss.common.validation.Text`): at most 128 characters, no control
# characters; here also no surrounding blanks, since a quota's model must match a component's model exactly.
MODEL_MAX = 128
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
# Far above any cluster, far below BIGINT and JSON's exact integers.
LIMIT_MAX = 10**12
Amounts = Mapping[str, int]


class QuotaExceeded(Conflict, code="quota_exceeded", message="超出客户配额"):
    """An order would take a customer beyond one of its provider's limits; the message names the quota."""


def unit_of(resource: str) -> str:
    return UNIT_TEXT.get(resource, "卡")


def resource_problem(resource: str) -> str | None:
    """Why `resource` is not a quota's name, or None."""
    if resource in UNIT_TEXT:
        return None
    if not resource.startswith(GPU_PREFIX):
        return "未知的配额资源 (应为 cpu、memory、instances 或 gpu:<型号>)"
    model = resource.removeprefix(GPU_PREFIX)
    if not model or model != model.strip() or len(model) > MODEL_MAX or _CONTROL_CHARS.search(model):
        return f"GPU 型号应为 1 到 {MODEL_MAX} 个字符,首尾无空白,不含控制字符"
    return None


def parse_limits(body: Mapping[str, Any]) -> dict[str, int]:
    """`{"limits": {resource: whole number ≥ 0 | null}}` → the limits to keep (null: no limit)."""
    limits = body.get("limits")
    if not isinstance(limits, Mapping):
        raise InvalidParameter("limits", '应为对象,如 {"cpu": 8, "gpu:A100": 2}')
    parsed: dict[str, int] = {}
    for resource, value in limits.items():
        name = f"limits.{resource}"
        problem = resource_problem(str(resource))
        if problem:
            raise InvalidParameter(name, problem)
        if value is None:
            continue
        # bool is an int to Python, and 2.0 is not a whole number to a client that meant 2.5: refuse both.
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= LIMIT_MAX:
            raise InvalidParameter(name, f"应为 0 到 {LIMIT_MAX} 之间的整数,或 null (不限)")
        parsed[str(resource)] = value
    return parsed


async def readable_customer(ctx: Ctx, orgid: str) -> Org:
    """A customer reads its own quotas, a provider admin its customers'; anyone else's do not exist for it."""
    if ctx.principal.is_customer:
        org = await ctx.session.get(Org, orgid) if orgid == ctx.orgid else None
        if org is None:
            raise NotFound(f"客户不存在: {orgid}")
        return org
    require_provider_admin(ctx)
    return await get_customer(ctx, orgid)


async def limits(session: AsyncSession, orgid: str) -> dict[str, int]:
    query = select(CustomerQuota.resource, CustomerQuota.amount).where(CustomerQuota.orgid == orgid)
    return {resource: int(amount) for resource, amount in (await session.execute(query)).all()}


async def replace_limits(ctx: Ctx, orgid: str, body: Mapping[str, Any]) -> Org:
    """A provider admin replaces a customer's whole set of limits (committed). Lowering a limit below what the
    customer holds takes nothing away: it refuses the orders that would grow beyond it."""
    require_provider_admin(ctx)
    customer = await get_customer(ctx, orgid)
    wanted = parse_limits(body)
    await ctx.session.execute(delete(CustomerQuota).where(CustomerQuota.orgid == customer.id))
    ctx.session.add_all(CustomerQuota(orgid=customer.id, resource=r, amount=n) for r, n in sorted(wanted.items()))
    await ctx.session.commit()
    return customer


def _order_key(resource: str) -> tuple[int, str]:
    """The order quotas are checked (and the first exceeded one named) in: cpu, memory, GPUs, instances."""
    return ({CPU: 0, MEMORY: 1, INSTANCES: 3}.get(resource, 2), resource)


async def check(session: AsyncSession, customer_orgid: str, holding_now: Amounts, adding: Amounts) -> None:
    """Raise QuotaExceeded for the first limit `holding_now + adding` goes beyond. Only what an order adds is
    judged: a customer already above a lowered limit may still shrink, or grow something else."""
    found = await limits(session, customer_orgid)
    for resource in sorted((r for r, n in adding.items() if n > 0 and r in found), key=_order_key):
        held, more, limit = holding_now.get(resource, 0), adding[resource], found[resource]
        if held + more > limit:
            unit = unit_of(resource)
            raise QuotaExceeded(
                f"超出客户配额 {resource}: 上限 {limit} {unit},已用 {held} {unit},本次 {more} {unit}",
                data={"resource": resource, "limit": limit, "used": held, "adding": more},
            )
