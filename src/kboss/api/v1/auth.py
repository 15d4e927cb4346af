"""Login: a bearer token for API clients, also set as an HttpOnly cookie for the console."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from kboss.accounts import auth
from kboss.api.deps import SESSION_COOKIE, CurrentUser, Session, State

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


@router.post("/login")
async def login(body: LoginBody, state: State, session: Session, response: Response) -> TokenOut:
    user = await auth.authenticate(session, body.username, body.password)
    token = auth.issue_token(user, state.deployment_key, state.settings.token_ttl_seconds)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=state.settings.token_ttl_seconds, httponly=True, samesite="strict"
    )
    return TokenOut(access_token=token)


@router.post("/logout", status_code=204)
async def logout(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE)


@router.get("/me")
async def me(principal: CurrentUser) -> dict[str, Any]:
    return {
        "user_id": principal.user_id,
        "username": principal.username,
        "orgid": principal.orgid,
        "role": principal.role,
    }
