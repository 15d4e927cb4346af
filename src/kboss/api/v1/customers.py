"""A provider's customers, the publication of its centers to them, and their accounts (native API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query

from kboss.api.deps import CtxDep
from kboss.billing import accounts
from kboss.common.listing import MAX_PAGE, MAX_ROWS, Page
from kboss.customers import publication, service
from kboss.instances import quota_check

router = APIRouter(prefix="/api/v1", tags=["customers"])
JsonBody = Body(default_factory=dict)
PageQuery = Query(1, ge=1, le=MAX_PAGE)
RowsQuery = Query(100, ge=1, le=MAX_ROWS)


@router.post("/customers", status_code=201)
async def create_customer(ctx: CtxDep, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """`{"name", "username", "password"}`: a customer org of the caller's org and its first admin."""
    org, user = await service.create_customer(ctx, body)
    return {**service.customer_row(org), "admin": user.username}


@router.get("/customers")
async def list_customers(ctx: CtxDep, page: int = PageQuery, rows: int = RowsQuery) -> dict[str, Any]:
    return await service.list_customers(ctx, Page(page, rows))


@router.get("/customers/{customer_id}")
async def get_customer(ctx: CtxDep, customer_id: str) -> dict[str, Any]:
    service.require_provider_admin(ctx)
    return service.customer_row(await service.get_customer(ctx, customer_id))


@router.get("/customers/{customer_id}/quota")
async def get_quota(ctx: CtxDep, customer_id: str) -> dict[str, Any]:
    """`{"orgid", "limits": {"cpu": 8, "gpu:A100": 2, ...}, "used": {...}}`: a provider admin's customer's, or the
    caller's own (a customer)."""
    return await quota_check.quota(ctx, customer_id)


@router.put("/customers/{customer_id}/quota")
async def put_quota(ctx: CtxDep, customer_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """`{"limits": {resource: whole number | null}}` replaces the customer's limits (a provider admin's)."""
    return await quota_check.replace(ctx, customer_id, body)


@router.get("/centers/{center_id}/publication")
async def get_publication(ctx: CtxDep, center_id: str) -> dict[str, Any]:
    return await publication.publication(ctx, center_id)


@router.post("/centers/{center_id}/publish")
async def publish(ctx: CtxDep, center_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """`{"customers": "all"}` or `{"customers": [orgid, ...]}`; what the center is published to afterwards."""
    return await publication.publish(ctx, center_id, body)


@router.post("/centers/{center_id}/unpublish")
async def unpublish(ctx: CtxDep, center_id: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    return await publication.unpublish(ctx, center_id, body)


@router.get("/accounts")
async def list_accounts(ctx: CtxDep) -> dict[str, Any]:
    """A provider admin's customers with their balances."""
    return await accounts.list_accounts(ctx)


@router.get("/accounts/{orgid}")
async def get_account(ctx: CtxDep, orgid: str) -> dict[str, Any]:
    """`{"orgid", "name", "balance": "12.50", "unit": "元"}`: a customer's own, or a provider admin's customer's."""
    return await accounts.account(ctx, orgid)


@router.post("/accounts/{orgid}/credit")
async def credit_account(ctx: CtxDep, orgid: str, body: dict[str, Any] = JsonBody) -> dict[str, Any]:
    """A provider admin tops up a customer: `{"amount": "100.00", "note": "..."}`; the account afterwards."""
    return await accounts.top_up(ctx, orgid, body)


@router.get("/accounts/{orgid}/ledger")
async def get_ledger(ctx: CtxDep, orgid: str, page: int = PageQuery, rows: int = RowsQuery) -> dict[str, Any]:
    """Credits, charges and refunds, newest first; their sum is the balance."""
    return await accounts.ledger_rows(ctx, orgid, Page(page, rows))
