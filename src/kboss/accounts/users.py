"""What an administrator changes on a user (the CLI's `kboss user ...`, an org admin's "sign out everywhere"):
each change that alters what a token stands for revokes all of the user's tokens (`sessions.revoke_all`)."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.accounts import auth, throttle
from kboss.accounts.sessions import revoke_all
from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER, ROLES, Ctx
from kboss.db.models import User
from kboss.db.models_instances import Instance
from kboss.errors import Conflict, InvalidParameter, NotFound


async def by_username(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"用户 {username} 不存在")
    return user


async def set_password(session: AsyncSession, username: str, password: str) -> User:
    user = await by_username(session, username)
    user.password_hash = await asyncio.to_thread(auth.hash_password, password)
    return await _revoked(session, user)


async def set_role(session: AsyncSession, username: str, role: str) -> User:
    if role not in ROLES:
        raise InvalidParameter("role", f"应为 {ROLE_ADMIN} 或 {ROLE_MEMBER}")
    user = await by_username(session, username)
    user.role = role
    return await _revoked(session, user)


async def set_disabled(session: AsyncSession, username: str, disabled: bool) -> User:
    user = await by_username(session, username)
    user.disabled = disabled
    return await _revoked(session, user)


async def sign_out(session: AsyncSession, username: str) -> User:
    return await _revoked(session, await by_username(session, username))


async def sign_out_member(ctx: Ctx, user_id: str) -> str:
    """An org admin signs a user of the org out everywhere; a user of another org does not exist for them."""
    ctx.require_admin()
    user = await ctx.session.scalar(select(User).where(User.id == user_id, User.orgid == ctx.orgid))
    if user is None:
        raise NotFound(f"用户不存在: {user_id}")
    await _revoked(ctx.session, user)
    return user.id


async def remove(session: AsyncSession, username: str) -> User:
    """Delete a user; its sessions go with it, so its tokens stand for no one on every process at once. A user
    who still owns instances is kept (their instances would have no owner): delete or hand those over first."""
    user = await by_username(session, username)
    await _refuse_owner(session, user)
    await session.delete(user)
    await session.commit()
    return user


async def remove_member(ctx: Ctx, user_id: str) -> User:
    """An org admin removes another user of the org (never themselves: an org keeps someone to administer it)."""
    ctx.require_admin()
    user = await ctx.session.scalar(select(User).where(User.id == user_id, User.orgid == ctx.orgid))
    if user is None:
        raise NotFound(f"用户不存在: {user_id}")
    if user.id == ctx.principal.user_id:
        raise Conflict("不能删除自己的账号")
    return await remove(ctx.session, user.username)


async def _refuse_owner(session: AsyncSession, user: User) -> None:
    owned = await session.scalar(select(func.count(Instance.id)).where(Instance.userid == user.id))
    if owned:
        raise Conflict(f"用户 {user.username} 还拥有 {owned} 个资源实例,请先删除这些实例")


async def unlock(session: AsyncSession, username: str, address: str = "") -> list[str]:
    """Lift the throttling of a username (and of a client address when given); the keys that had any."""
    keys = [throttle.account_key(username)] + ([throttle.address_key(address)] if address else [])
    return [key for key in keys if await throttle.clear(session, key)]


async def _revoked(session: AsyncSession, user: User) -> User:
    await session.flush()
    await revoke_all(session, user.id)
    await session.commit()
    await session.refresh(user)
    return user
