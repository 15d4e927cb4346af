"""Customer accounts as callers see them: a provider's admin tops up its customers' accounts and reads them all; a
customer reads its own (balance and ledger). Anyone else's account does not exist for the caller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select

from kboss.billing import ledger
from kboss.billing.money import from_fen, parse_amount, text
from kboss.common.context import Ctx
from kboss.common.listing import Page
from kboss.common.records import time_text
from kboss.customers.service import get_customer, require_provider_admin
from kboss.db.models import ORG_CUSTOMER, Org
from kboss.db.models_billing import LedgerEntry
from kboss.errors import InvalidParameter, NotFound

NOTE_MAX = 200


async def top_up(ctx: Ctx, orgid: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """A provider admin's credit to one of its customers: `{"amount": "100.00", "note": "..."}`."""
    require_provider_admin(ctx)
    customer = await get_customer(ctx, orgid)
    amount = parse_amount(params.get("amount"))
    note = params.get("note") or ""
    if not isinstance(note, str) or len(note) > NOTE_MAX:
        raise InvalidParameter("note", f"应为不超过 {NOTE_MAX} 个字符的文字")
    await ledger.credit(ctx.session, customer.id, amount, ledger.Ref(note=note.strip(), actor=ctx.principal.username))
    await ctx.session.commit()
    return await account(ctx, customer.id)


async def account(ctx: Ctx, orgid: str) -> dict[str, Any]:
    org = await _readable(ctx, orgid)
    return {"orgid": org.id, "name": org.name, "balance": text(await ledger.balance(ctx.session, org.id)), "unit": "元"}


async def list_accounts(ctx: Ctx) -> dict[str, Any]:
    """Every customer of the caller (a provider admin) with its balance, in one query."""
    require_provider_admin(ctx)
    total = select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(LedgerEntry.orgid == Org.id)
    query = select(Org.id, Org.name, total.scalar_subquery()).where(
        Org.provider_id == ctx.orgid, Org.kind == ORG_CUSTOMER
    )
    rows = (await ctx.session.execute(query.order_by(Org.name))).all()
    listed = [{"orgid": i, "name": n, "balance": text(from_fen(int(fen))), "unit": "元"} for i, n, fen in rows]
    return {"total": len(listed), "rows": listed}


async def ledger_rows(ctx: Ctx, orgid: str, page: Page) -> dict[str, Any]:
    org = await _readable(ctx, orgid)
    total, found = await ledger.entries(ctx.session, org.id, (page.number - 1) * page.size, page.size)
    return {"total": total, "rows": [entry_row(entry) for entry in found]}


def entry_row(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": time_text(entry.at),
        "kind": entry.kind,
        "amount": text(from_fen(entry.amount_fen)),
        "instance_id": entry.instance_id,
        "order_id": entry.order_id,
        "note": entry.note,
    }


async def _readable(ctx: Ctx, orgid: str) -> Org:
    """The caller's own org when it is a customer, or a customer of the caller's (provider) org, admin only."""
    if ctx.principal.is_customer:
        if orgid != ctx.orgid:
            raise NotFound(f"账户不存在: {orgid}")
        org = await ctx.session.get(Org, orgid)
        assert org is not None
        return org
    require_provider_admin(ctx)
    return await get_customer(ctx, orgid)
