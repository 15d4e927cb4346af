"""The audit trail of the caller's org, for its admins: `GET /api/v1/audit`, filtered, newest first, paged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from kboss.api.deps import CtxDep
from kboss.audit import reads
from kboss.common.listing import MAX_PAGE, MAX_ROWS, Page

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
async def list_audit(
    ctx: CtxDep,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    rows: int = Query(100, ge=1, le=MAX_ROWS),
    actor: str = Query("", max_length=128),
    action: str = Query("", max_length=128, description="a prefix: `auth.` matches logins, logouts, passwords"),
    target_id: str = Query("", max_length=128),
    outcome: str = Query("", max_length=16, description="ok, refused or failed"),
    since: str = Query("", max_length=40, description="ISO date or time (UTC unless it says)"),
    until: str = Query("", max_length=40),
) -> dict[str, Any]:
    """`{"total", "rows"}`: the org's events, each with who, what, target, when, address and outcome."""
    ctx.require_admin()
    filters = reads.Filters(
        actor=actor, action=action, target_id=target_id, outcome=outcome,
        since=reads.parse_time("since", since), until=reads.parse_time("until", until),
    )  # fmt: skip
    return await reads.list_events(ctx.session, ctx.orgid, filters, Page(number=page, size=rows))
