"""Native routes for operations: list, show, log (whole, or followed as server-sent events), retry, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sse_starlette import EventSourceResponse, ServerSentEvent

from kboss.api.deps import CtxDep
from kboss.operations import service as operations
from kboss.operations.states import TERMINAL

router = APIRouter(prefix="/api/v1/operations", tags=["operations"])
# How often a followed log looks for news; settings may override it (`operation_follow_seconds`).
FOLLOW_POLL_SECONDS = 0.5


@router.get("")
async def list_operations(
    ctx: CtxDep,
    cluster_id: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    found = await operations.list_operations(ctx, cluster_id, state, kind, limit)
    return {"total": len(found), "rows": [operations.operation_summary(op) for op in found]}


@router.get("/{op_id}")
async def show_operation(ctx: CtxDep, op_id: str) -> dict[str, Any]:
    return await operations.operation_detail(ctx.session, await operations.get_operation(ctx, op_id))


@router.get("/{op_id}/log", response_model=None)
async def operation_log(ctx: CtxDep, request: Request, op_id: str, follow: bool = False) -> Response:
    """The whole log as text; `?follow=1`: server-sent events (`log`, `progress`, then `end`) until it ends."""
    if not follow:
        return PlainTextResponse(await operations.read_log(ctx, op_id))
    op = await operations.get_operation(ctx, op_id)
    state = request.app.state.kboss
    poll = float(getattr(state.settings, "operation_follow_seconds", FOLLOW_POLL_SECONDS))
    return EventSourceResponse(_events(state.sessions, ctx.orgid, op.id, poll), sep="\n")


async def _events(
    sessions: async_sessionmaker[AsyncSession], orgid: str, op_id: str, poll: float
) -> AsyncIterator[ServerSentEvent]:
    # The stream opens its own short sessions: the request's session is not meant to outlive the handler.
    async for progress in operations.follow(sessions, orgid, op_id, poll):
        for line in progress.lines:
            yield ServerSentEvent(line, event="log")
        summary = {
            "state": progress.state,
            "current_step": progress.current_step,
            "steps": [{k: s[k] for k in ("name", "node", "state", "attempts", "error")} for s in progress.steps],
        }
        yield ServerSentEvent(json.dumps(summary, ensure_ascii=False), event="progress")
        if progress.finished:
            end = {"state": progress.state, "last_error": progress.last_error}
            yield ServerSentEvent(json.dumps(end, ensure_ascii=False), event="end")


@router.post("/{op_id}/retry")
async def retry_operation(ctx: CtxDep, op_id: str) -> dict[str, Any]:
    return await operations.operation_detail(ctx.session, await operations.retry_operation(ctx, op_id))


@router.post("/{op_id}/cancel")
async def cancel_operation(ctx: CtxDep, op_id: str, response: Response) -> dict[str, Any]:
    """200 when cancelled at once; 202 when the running step is being interrupted (follow the operation)."""
    op = await operations.cancel_operation(ctx, op_id)
    if op.state not in TERMINAL:
        response.status_code = 202
    return await operations.operation_detail(ctx.session, op)
