"""Customer organisations. A provider's admin creates one with its first user (an admin of the new org); the new
org is a customer of the provider and of no one else, and sees only what the provider publishes to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from kboss.accounts import auth
from kboss.common.context import ROLE_ADMIN, Ctx
from kboss.common.listing import Page, paged_rows
from kboss.common.records import time_text
from kboss.common.validation import Input, Text, parse
from kboss.db.models import ORG_CUSTOMER, Org, User
from kboss.errors import Conflict, NotFound


class CustomerInput(Input):
    name: Text
    username: Text
    password: str


def require_provider_admin(ctx: Ctx) -> None:
    """Customers' own admins manage their users, never other customers: to them this does not exist."""
    if ctx.principal.is_customer:
        raise NotFound("没有这个接口")
    ctx.require_admin()


async def create_customer(ctx: Ctx, params: Mapping[str, Any]) -> tuple[Org, User]:
    """A customer org of the caller's (provider) org, with its first admin, in one transaction."""
    require_provider_admin(ctx)
    data = parse(CustomerInput, params)
    return await add_customer(ctx.session, ctx.orgid, data.name, data.username, data.password)


async def add_customer(session: Any, provider_id: str, name: str, username: str, password: str) -> tuple[Org, User]:
    """The service's work, shared with `kboss user create --customer-of` (which has no caller's token)."""
    provider = await session.get(Org, provider_id)
    if provider is None or provider.kind == ORG_CUSTOMER:
        raise NotFound(f"服务商组织不存在: {provider_id}")
    if await session.scalar(select(Org.id).where(Org.name == name)):
        raise Conflict(f"组织 {name} 已存在")
    org = Org(name=name, kind=ORG_CUSTOMER, provider_id=provider_id)
    session.add(org)
    await session.flush()
    user = await auth.add_user(session, org, username, password, ROLE_ADMIN)
    await session.commit()
    return org, user


async def list_customers(ctx: Ctx, page: Page) -> dict[str, Any]:
    require_provider_admin(ctx)
    query = select(Org).where(Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER)
    return await paged_rows(ctx.session, query.order_by(Org.name), page, customer_row)


async def get_customer(ctx: Ctx, customer_id: str) -> Org:
    """A customer of the caller's org, or NotFound (another provider's customer does not exist for the caller)."""
    customer = await ctx.session.scalar(
        select(Org).where(Org.id == customer_id, Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER)
    )
    if customer is None:
        raise NotFound(f"客户不存在: {customer_id}")
    return customer


def customer_row(org: Org) -> dict[str, Any]:
    return {"id": org.id, "name": org.name, "kind": org.kind, "created_at": time_text(org.created_at)}
