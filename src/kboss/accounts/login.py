"""Logging in and changing one's password: throttled (`throttle`), constant-time for unknown users (`auth`), and
answered with a revocable token (`sessions`)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.accounts import auth, throttle
from kboss.accounts.sessions import Tokens, revoke_all
from kboss.common.context import Principal
from kboss.db.models import User
from kboss.errors import KbossError, Unauthenticated


async def login(
    sessions: async_sessionmaker[AsyncSession],
    policy: throttle.Policy,
    tokens: Tokens,
    username: str,
    password: str,
    address: str,
) -> str:
    """A token for the username and password, or 401 (wrong) / 429 (backing off or locked, the real password too)."""
    now = dt.datetime.now(dt.UTC)
    account, at_address = await _claim(sessions, policy, username, address, now)
    async with sessions() as session:
        user = await _checked_user(session, username, password, (account, at_address), now)
        token = await tokens.issue(session, user, address)
    async with sessions() as session:
        await throttle.clear(session, account.key)  # a success resets the account's counter
    await throttle.give_back(sessions, at_address, policy.address)
    return token


async def change_password(
    sessions: async_sessionmaker[AsyncSession],
    policy: throttle.Policy,
    tokens: Tokens,
    principal: Principal,
    passwords: tuple[str, str],
    address: str,
) -> str:
    """The caller's password changed (the old one checked, throttled like a login): every token of the user
    revoked, and a new one for this session."""
    old, new = passwords
    auth.check_new_password(new, "new_password")
    now = dt.datetime.now(dt.UTC)
    account, at_address = await _claim(sessions, policy, principal.username, address, now)
    async with sessions() as session:
        user = await _checked_user(session, principal.username, old, (account, at_address), now)
        user.password_hash = await asyncio.to_thread(auth.hash_password, new)
        await revoke_all(session, user.id)
        await session.commit()
        tokens.forget_user(user.id)
        await session.refresh(user)
        token = await tokens.issue(session, user, address)
    await throttle.give_back(sessions, account, policy.account)
    await throttle.give_back(sessions, at_address, policy.address)
    return token


async def _claim(
    sessions: async_sessionmaker[AsyncSession], policy: throttle.Policy, username: str, address: str, now: dt.datetime
) -> tuple[throttle.Claim, throttle.Claim]:
    keys = [(throttle.account_key(username), policy.account), (throttle.address_key(address), policy.address)]
    account, at_address = await throttle.claim(sessions, keys, now)
    return account, at_address


async def _checked_user(
    session: AsyncSession, username: str, password: str, claims: tuple[throttle.Claim, ...], now: dt.datetime
) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    # argon2 takes tens of milliseconds: off the event loop, and the same work whether the user exists or not.
    if not await asyncio.to_thread(auth.check_password, user, password) or user is None:
        raise _failure(claims, now)
    if user.disabled:
        raise Unauthenticated("账号已停用,请联系管理员")
    return user


def _failure(claims: tuple[throttle.Claim, ...], now: dt.datetime) -> KbossError:
    """Wrong password: 401, or 429 when this very failure locked the account or address (say so now)."""
    for claimed in claims:
        if claimed.after.locked:
            refused = throttle.refusal(claimed.key, claimed.after, now)
            if refused is not None:
                return refused
    return Unauthenticated("用户名或密码错误")
