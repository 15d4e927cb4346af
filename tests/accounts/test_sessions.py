"""Revocable tokens: every claim checked (a clear 401, never a 500), role and org read from the user row, logout
and "revoke all" refused at once by the process that revoked and within `check_seconds` by another one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.accounts import auth, sessions
from kboss.accounts.sessions import Tokens
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.db.models import User
from kboss.errors import Unauthenticated

KEY = "sessions-test-key-0123456789"
GOOD = {"sub": "u1", "jti": "j1", "ver": 0, "iat": 1, "exp": 2e9}


@pytest.fixture
async def factory(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def _alice(factory: async_sessionmaker[AsyncSession]) -> User:
    async with factory() as session:
        return await auth.create_user(session, "alice", "pass-word-1", "acme", ROLE_ADMIN)


async def _issue(tokens: Tokens, user: User) -> str:
    async with tokens.sessions() as session:
        return await tokens.issue(session, user, "10.0.0.1")


@pytest.mark.parametrize(
    ("claims", "named"),
    [
        ({"jti": "j1", "ver": 0, "iat": 1, "exp": 2e9}, "sub"),
        ({**GOOD, "jti": 7}, "jti"),
        ({**GOOD, "ver": "0"}, "ver"),
        ({**GOOD, "ver": True}, "ver"),
        ({**GOOD, "exp": "soon"}, "exp"),
        ({k: v for k, v in GOOD.items() if k != "iat"}, "iat"),
    ],
)
def test_a_missing_or_mistyped_claim_is_named(claims: dict[str, Any], named: str) -> None:
    with pytest.raises(Unauthenticated, match=f"无效的登录凭证: {named} "):
        sessions.parse_claims(claims, now=1e9)
    token = jwt.encode(claims, sessions._signing_key(KEY), algorithm="HS256")
    with pytest.raises(Unauthenticated, match=named):
        sessions.decode(token, KEY, now=1e9)


def test_expired_and_foreign_tokens_are_refused() -> None:
    with pytest.raises(Unauthenticated, match="登录已过期"):
        sessions.parse_claims({**GOOD, "exp": 10}, now=11)
    foreign = jwt.encode(GOOD, b"another deployment's key, long enough", algorithm="HS256")
    with pytest.raises(Unauthenticated, match="无效的登录凭证"):
        sessions.decode(foreign, KEY, now=1e9)


async def test_role_and_org_come_from_the_user_row(factory: async_sessionmaker[AsyncSession]) -> None:
    tokens = Tokens(factory, KEY, 3600, check_seconds=0)
    token = await _issue(tokens, await _alice(factory))
    assert (await tokens.principal(token)).role == ROLE_ADMIN
    async with factory() as session:
        await session.execute(update(User).where(User.username == "alice").values(role=ROLE_MEMBER))
        await session.commit()
    assert (await tokens.principal(token)).role == ROLE_MEMBER


async def test_logout_is_refused_here_at_once_and_elsewhere_within_the_check_interval(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    here, elsewhere = Tokens(factory, KEY, 3600, 0.5), Tokens(factory, KEY, 3600, 0.5)
    token = await _issue(here, await _alice(factory))
    assert (await elsewhere.principal(token)).username == "alice"
    assert await here.revoke(token)
    with pytest.raises(Unauthenticated, match="登录已注销"):
        await here.principal(token)
    started = time.monotonic()
    while True:
        try:
            await elsewhere.principal(token)
        except Unauthenticated:
            break
        assert time.monotonic() - started < 1.0, "another process still accepts a revoked token after a second"
        await asyncio.sleep(0.05)


async def test_revoke_all_ends_every_token_of_the_user(factory: async_sessionmaker[AsyncSession]) -> None:
    tokens = Tokens(factory, KEY, 3600, check_seconds=60)
    alice = await _alice(factory)
    first, second = await _issue(tokens, alice), await _issue(tokens, alice)
    assert (await tokens.principal(first)).user_id == (await tokens.principal(second)).user_id == alice.id
    async with factory() as session:
        await sessions.revoke_all(session, alice.id)
        await session.commit()
    tokens.forget_user(alice.id)
    for token in (first, second):
        with pytest.raises(Unauthenticated, match="登录已"):
            await tokens.principal(token)
    async with factory() as session:
        alice = await auth.authenticate(session, "alice", "pass-word-1")
    assert (await tokens.principal(await _issue(tokens, alice))).username == "alice"  # a new login works


async def test_a_login_racing_a_revoke_all_does_not_survive_it(factory: async_sessionmaker[AsyncSession]) -> None:
    tokens = Tokens(factory, KEY, 3600, check_seconds=0)
    read_before = await _alice(factory)  # a login read the user (version 0) ...
    async with factory() as session:
        await sessions.revoke_all(session, read_before.id)  # ... the password changed meanwhile ...
        await session.commit()
    late = await _issue(tokens, read_before)  # ... and its session row was written after the revocation
    with pytest.raises(Unauthenticated, match="密码、角色或账号状态已变更"):
        await tokens.principal(late)


async def test_a_removed_user_has_no_session_left(factory: async_sessionmaker[AsyncSession]) -> None:
    tokens = Tokens(factory, KEY, 3600, check_seconds=0)
    alice = await _alice(factory)
    token = await _issue(tokens, alice)
    async with factory() as session:
        await session.execute(delete(User).where(User.id == alice.id))
        await session.commit()
    with pytest.raises(Unauthenticated, match="账号已删除"):
        await tokens.principal(token)
