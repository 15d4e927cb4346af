"""Request dependencies: the app state, a database session, and the caller (bearer token or session cookie)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.api import customer_gate
from kboss.api.state import AppState
from kboss.audit import trail
from kboss.common.context import ROLE_ADMIN, Ctx, Principal
from kboss.common.validation import screen_params
from kboss.db.models import Org
from kboss.errors import Unauthenticated
from kboss.wire.params import Params

SESSION_COOKIE = "kboss_session"
# The application state of the request being served, for handlers that receive only the caller's context (the
# compat table's); set and reset by `open_context`, so it never outlives the request.
_REQUEST_STATE: ContextVar[AppState] = ContextVar("kboss_request_state")


async def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kboss
    return state


State = Annotated[AppState, Depends(app_state)]


async def db_session(state: State) -> AsyncIterator[AsyncSession]:
    async with state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE)


async def authenticate(
    request: Request, state: AppState, session: AsyncSession | None, params: dict[str, Any]
) -> Principal:
    principal = await _authenticated(request, state, session, params)
    trail.note_principal(principal)  # the audit trail names the caller of this request
    return principal


async def _authenticated(
    request: Request, state: AppState, session: AsyncSession | None, params: dict[str, Any]
) -> Principal:
    token = bearer_token(request)
    if token:
        return await state.tokens.principal(token)
    if state.settings.dev_mode and params.get("orgid"):
        if session is not None:
            return await _dev_principal(session, str(params["orgid"]))
        async with state.sessions() as own:
            return await _dev_principal(own, str(params["orgid"]))
    raise Unauthenticated("未登录:请先通过 /api/v1/auth/login 获取令牌")


async def _dev_principal(session: AsyncSession, orgid: str) -> Principal:
    """Development mode only: the spec's `orgid` parameter acts as an admin of that org."""
    if await session.scalar(select(Org.id).where(Org.id == orgid)) is None:
        raise Unauthenticated(f"组织不存在: {orgid}")
    return Principal(user_id="dev", username="dev", orgid=orgid, role=ROLE_ADMIN)


async def caller(request: Request, state: State, session: Session, params: Params) -> Principal:
    return await authenticate(request, state, session, params)


CurrentUser = Annotated[Principal, Depends(caller)]


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: what uvicorn's trusted proxy headers say)."""
    return request.client.host[:64] if request.client and request.client.host else "unknown"


@asynccontextmanager
async def open_context(request: Request, params: dict[str, Any]) -> AsyncIterator[Ctx]:
    """The caller's context for one request: its org, a database session opened on first use, the secret box."""
    state: AppState = request.app.state.kboss
    ctx: Ctx | None = None
    serving = _REQUEST_STATE.set(state)
    try:
        principal = await authenticate(request, state, None, params)
        customer_gate.check(request, principal)
        ctx = Ctx(principal=principal, box=state.box, offers=state.offers, sessions=state.sessions)
        yield ctx
    finally:
        session = ctx.opened_session if ctx else None
        # A session that never touched the database holds nothing; closing it would still cost a greenlet hop.
        if session is not None and session.in_transaction():
            await session.close()
        _REQUEST_STATE.reset(serving)


def request_state() -> AppState:
    """The application state of the request being served (inside `open_context` only)."""
    return _REQUEST_STATE.get()


async def context(request: Request, params: Params) -> AsyncIterator[Ctx]:
    async with open_context(request, params) as ctx:
        yield ctx


CtxDep = Annotated[Ctx, Depends(context)]


async def screen_path(request: Request) -> None:
    """A router dependency: path and query parameters (ids, node names, filters) are encodable, NUL-free and ids
    are short, before any handler reads the database with them."""
    screen_params({**request.query_params, **request.path_params})
