"""Request dependencies: the app state, a database session, and the caller (bearer token or session cookie)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.api.params import Params
from kboss.api.state import AppState
from kboss.db.models import Org
from kboss.errors import Unauthenticated
from kboss.services.auth import principal_from_token
from kboss.services.context import ROLE_ADMIN, Ctx, Principal

SESSION_COOKIE = "kboss_session"


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


async def authenticate(request: Request, state: AppState, session: AsyncSession, params: dict[str, Any]) -> Principal:
    token = bearer_token(request)
    if token:
        return principal_from_token(token, state.deployment_key)
    if state.settings.dev_mode and params.get("orgid"):
        return await _dev_principal(session, str(params["orgid"]))
    raise Unauthenticated("未登录:请先通过 /api/v1/auth/login 获取令牌")


async def _dev_principal(session: AsyncSession, orgid: str) -> Principal:
    """Development mode only: the spec's `orgid` parameter acts as an admin of that org."""
    if await session.scalar(select(Org.id).where(Org.id == orgid)) is None:
        raise Unauthenticated(f"组织不存在: {orgid}")
    return Principal(user_id="dev", username="dev", orgid=orgid, role=ROLE_ADMIN)


async def caller(request: Request, state: State, session: Session, params: Params) -> Principal:
    return await authenticate(request, state, session, params)


CurrentUser = Annotated[Principal, Depends(caller)]


async def context(request: Request, params: Params) -> AsyncIterator[Ctx]:
    # One dependency instead of a chain: every platform request goes through here, and each level costs.
    state: AppState = request.app.state.kboss
    async with state.sessions() as session:
        principal = await authenticate(request, state, session, params)
        yield Ctx(session=session, principal=principal, box=state.box, offers=state.offers)


CtxDep = Annotated[Ctx, Depends(context)]
