"""Organisations, users, passwords (argon2id) and bearer tokens (HS256 JWT)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kboss.common.context import ROLE_ADMIN, ROLE_MEMBER, ROLES, Principal
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


def _signing_key(deployment_key: str) -> bytes:
    return hashlib.sha256(b"kboss-tokens-v1:" + deployment_key.encode()).digest()


async def get_or_create_org(session: AsyncSession, name: str) -> Org:
    org = await session.scalar(select(Org).where(Org.name == name))
    if org is None:
        org = Org(name=name)
        session.add(org)
        await session.flush()
    return org


async def create_user(session: AsyncSession, username: str, password: str, org_name: str, role: str) -> User:
    if not _USERNAME.fullmatch(username):
        raise InvalidParameter("username", "只能包含字母、数字和 _.@-,长度 2-64")
    if len(password) < 8:
        raise InvalidParameter("password", "至少 8 个字符")
    if role not in ROLES:
        raise InvalidParameter("role", f"应为 {ROLE_ADMIN} 或 {ROLE_MEMBER}")
    if await session.scalar(select(User).where(User.username == username)):
        raise Conflict(f"用户 {username} 已存在")
    org = await get_or_create_org(session, org_name.strip() or username)
    user = User(orgid=org.id, username=username, password_hash=_hasher.hash(password), role=role)
    session.add(user)
    await session.commit()
    return user


async def authenticate(session: AsyncSession, username: str, password: str) -> User:
    user = await session.scalar(select(User).where(User.username == username))
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        raise Unauthenticated("用户名或密码错误") from None
    if user is None:
        raise Unauthenticated("用户名或密码错误")
    return user


def issue_token(user: User, deployment_key: str, ttl_seconds: int) -> str:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "sub": user.id,
        "name": user.username,
        "org": user.orgid,
        "role": user.role,
        "iat": now,
        "exp": now + dt.timedelta(seconds=ttl_seconds),
    }
    return jwt.encode(claims, _signing_key(deployment_key), algorithm="HS256")


# Tokens already verified, with their expiry: verifying a signature costs more than a cached quote.
_verified: dict[tuple[str, str], tuple[Principal, float]] = {}
_VERIFIED_MAX = 10_000


def principal_from_token(token: str, deployment_key: str) -> Principal:
    cached = _verified.get((token, deployment_key))
    if cached is not None and cached[1] > time.time():
        return cached[0]
    principal, expires = _verify(token, deployment_key)
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()
    _verified[(token, deployment_key)] = (principal, expires)
    return principal


def _verify(token: str, deployment_key: str) -> tuple[Principal, float]:
    try:
        claims = jwt.decode(token, _signing_key(deployment_key), algorithms=["HS256"])
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("登录已过期,请重新登录") from None
    except jwt.PyJWTError:
        raise Unauthenticated("无效的登录凭证") from None
    values = [claims.get(name) for name in ("sub", "name", "org", "role")]
    expires = claims.get("exp")
    # A token signed with our key but lacking a claim (or with one of the wrong type) is not a login.
    if not all(isinstance(value, str) and value for value in values) or not isinstance(expires, int | float):
        raise Unauthenticated("无效的登录凭证")
    sub, name, org, role = values
    principal = Principal(user_id=str(sub), username=str(name), orgid=str(org), role=str(role))
    return principal, float(expires)
