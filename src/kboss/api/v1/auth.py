"""Login, logout, the caller, and changing one's password. The bearer token is also set as the console's cookie
(HttpOnly, SameSite=Strict, Secure over HTTPS)."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from kboss.accounts import login as logins
from kboss.api.deps import SESSION_COOKIE, CurrentUser, State, bearer_token, client_address
from kboss.audit import trail
from kboss.errors import KbossError
from kboss.wire.errors import TOO_MANY_ATTEMPTS

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordBody(BaseModel):
    old_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"


def _set_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    # Strict: the console's own fetches are same-site; a link from elsewhere loads the page, which then asks.
    secure = request.url.scheme == "https"
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, httponly=True, samesite="strict", secure=secure)


@router.post("/login", responses=TOO_MANY_ATTEMPTS)
async def login(body: LoginBody, request: Request, state: State, response: Response) -> TokenOut:
    _audited(trail.AUTH_LOGIN, actor=body.username)  # a failure names the account tried, never the password
    address = client_address(request)
    token = await logins.login(state.sessions, state.logins, state.tokens, body.username, body.password, address)
    trail.note_principal(await state.tokens.principal(token))  # cached: the next request costs no more
    _set_cookie(request, response, token, state.settings.token_ttl_seconds)
    return TokenOut(access_token=token)


def _audited(action: str, actor: str = "") -> None:
    """Record this request as `action` rather than as a plain write."""
    note = trail.current()
    if note is not None:
        note.action, note.actor = action, actor[:128]


@router.post("/logout", status_code=204)
async def logout(request: Request, state: State, response: Response) -> None:
    """Revokes the token of the request (header or cookie) on every process, and drops the cookie."""
    _audited(trail.AUTH_LOGOUT)
    token = bearer_token(request)
    if token:
        with contextlib.suppress(KbossError):
            trail.note_principal(await state.tokens.principal(token))
        await state.tokens.revoke(token)
    secure = request.url.scheme == "https"
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="strict", secure=secure)


@router.post("/password", responses=TOO_MANY_ATTEMPTS)
async def change_password(
    body: PasswordBody, principal: CurrentUser, request: Request, state: State, response: Response
) -> TokenOut:
    """Every token of the caller is revoked; the answer (and the cookie) is this session's new one."""
    _audited(trail.AUTH_PASSWORD)
    passwords = (body.old_password, body.new_password)
    address = client_address(request)
    token = await logins.change_password(state.sessions, state.logins, state.tokens, principal, passwords, address)
    _set_cookie(request, response, token, state.settings.token_ttl_seconds)
    return TokenOut(access_token=token)


@router.get("/me")
async def me(principal: CurrentUser) -> dict[str, Any]:
    return {
        "user_id": principal.user_id,
        "username": principal.username,
        "orgid": principal.orgid,
        "role": principal.role,
        # The console shows a customer the buying pages and a provider the machines.
        "org_kind": principal.org_kind,
        "provider_id": principal.provider_id,
    }
