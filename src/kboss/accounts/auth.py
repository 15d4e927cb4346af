"""Organisations, users and passwords (argon2id). Tokens are `sessions`; the login itself is `login`."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER, ROLES
from kboss.db.models import Org, User
from kboss.errors import Conflict, InvalidParameter, Unauthenticated

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")
# A hash to verify against when the user does not exist, so that response time does not reveal usernames.
_DUMMY_HASH = _hasher.hash("kboss-no-such-user")


def use_cheap_hashing() -> None:
    """For test suites only: argon2id at its minimum cost, so that creating hundreds of users stays fast."""
    global _hasher, _DUMMY_HASH
    _hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    _DUMMY_HASH = _hasher.hash("kboss-no-such-user")


async def get_or_create_org(session: AsyncSession, name: str) -> Org:
    org = await session.scalar(select(Org).where(Org.name == name))
    if org is None:
        org = Org(name=name)
        session.add(org)
        await session.flush()
    return org


async def create_user(session: AsyncSession, username: str, password: str, org_name: str, role: str) -> User:
    """A user of the org of that name, created (as a provider) when missing; one commit or nothing."""
    if role not in ROLES:
        raise InvalidParameter("role", f"应为 {ROLE_ADMIN} 或 {ROLE_MEMBER}")
    org = await get_or_create_org(session, org_name.strip() or username)
    user = await add_user(session, org, username, password, role)
    await session.commit()
    return user


async def add_user(session: AsyncSession, org: Org, username: str, password: str, role: str) -> User:
    """A new user of `org`, in the caller's transaction (not committed)."""
    if not _USERNAME.fullmatch(username):
        raise InvalidParameter("username", "只能包含字母、数字和 _.@-,长度 2-64")
    check_new_password(password)
    if await session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"用户 {username} 已存在")
    user = User(orgid=org.id, username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    await session.flush()
    return user


def check_password(user: User | None, password: str) -> bool:
    """Whether `password` is the user's. An unknown user is hashed against a dummy hash, so that the time taken
    does not tell whether the username exists."""
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return user is not None


def hash_password(password: str) -> str:
    check_new_password(password)
    return _hasher.hash(password)


def check_new_password(password: str, name: str = "password") -> None:
    if len(password) < 8:
        raise InvalidParameter(name, "至少 8 个字符")
    if len(password) > 1024:
        raise InvalidParameter(name, "最多 1024 个字符")


async def authenticate(session: AsyncSession, username: str, password: str) -> User:
    """The user of a username and password, unthrottled (the CLI and tests); the API logs in through `login`."""
    user = await session.scalar(select(User).where(User.username == username))
    if not check_password(user, password) or user is None:
        raise Unauthenticated("用户名或密码错误")
    return user
