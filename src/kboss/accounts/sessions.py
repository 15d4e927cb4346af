"""Revocable sessions: HS256 tokens naming a `user_sessions` row (`jti`) and the user's `token_version` (`ver`).

A request's token is checked against the database (one primary-key join of the session and its user) at most
every `session_check_seconds` per process; role, org and username always come from that user row, never from the
token. Logout revokes the one session; bumping the user's version (password, role, disable, "sign out
everywhere") revokes them all. A process that revokes forgets its cached checks at once; the others see it within
`session_check_seconds`. See docs/security.md, "Logins and sessions".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.common.context import Principal
from kboss.crypto import KeyRing
from kboss.db.models import Org, User
from kboss.db.models_accounts import UserSession
from kboss.errors import Unauthenticated

# Checked tokens kept per process; beyond this the cache starts over (a flood of tokens costs lookups, not memory).
_CACHE_MAX = 10_000
_NOT_DECODED = jwt.PyJWT(
    options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "verify_sub": False, "verify_jti": False}
)


@dataclass(frozen=True)
class Claims:
    sub: str
    jti: str
    ver: int
    exp: float


def _signing_key(deployment_key: str) -> bytes:
    return hashlib.sha256(b"kboss-tokens-v1:" + deployment_key.encode()).digest()


def parse_claims(claims: dict[str, Any], now: float) -> Claims:
    """Every claim present with its type, else a clear 401 (never a 500): a token signed with our key but shaped
    otherwise (e.g. issued before sessions were revocable) is not a login."""
    for name in ("sub", "jti"):
        value = claims.get(name)
        if not isinstance(value, str) or not value or len(value) > 64:
            raise Unauthenticated(f"无效的登录凭证: {name} 缺失或不是字符串,请重新登录")
    for name in ("ver", "iat", "exp"):
        value = claims.get(name)
        wanted = int if name == "ver" else int | float
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise Unauthenticated(f"无效的登录凭证: {name} 缺失或不是数字,请重新登录")
    if float(claims["exp"]) <= now:
        raise Unauthenticated("登录已过期,请重新登录")
    return Claims(str(claims["sub"]), str(claims["jti"]), int(claims["ver"]), float(claims["exp"]))


def decode(token: str, keys: KeyRing | str, now: float) -> Claims:
    """Claims of a token signed with any key of the ring: a rotation (`kboss keys rotate`) signs nobody out, and
    processes that have not seen the new key yet accept the tokens of those that have."""
    ring = keys if isinstance(keys, KeyRing) else KeyRing([keys])
    for deployment_key in ring.current():
        try:
            claims = _NOT_DECODED.decode(token, _signing_key(deployment_key), algorithms=["HS256"])
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError:
            break
        return parse_claims(claims, now)
    raise Unauthenticated("无效的登录凭证")


def encode(claims: Claims, issued_at: float, keys: KeyRing | str) -> str:
    """A token signed with the ring's first key."""
    deployment_key = keys.primary if isinstance(keys, KeyRing) else keys
    payload = {"sub": claims.sub, "jti": claims.jti, "ver": claims.ver, "iat": int(issued_at), "exp": int(claims.exp)}
    return jwt.encode(payload, _signing_key(deployment_key), algorithm="HS256")


@dataclass
class _Checked:
    claims: Claims
    principal: Principal
    at: float  # time.monotonic() of the database check


class Tokens:
    """Issues, checks and revokes the tokens of one application (one per process, in its AppState)."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], keys: KeyRing | str, ttl_seconds: int, check_seconds: float
    ) -> None:
        self.sessions = sessions
        self.keys = keys if isinstance(keys, KeyRing) else KeyRing([keys])
        self._ring_seen = self.keys.current()
        self.ttl_seconds = ttl_seconds
        self.check_seconds = check_seconds
        self._checked: dict[str, _Checked] = {}

    async def issue(self, session: AsyncSession, user: User, address: str = "") -> str:
        """A new session row for `user` (in the caller's transaction, committed here) and its token."""
        now = time.time()
        claims = Claims(user.id, secrets.token_urlsafe(16), user.token_version, now + self.ttl_seconds)
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        # Expired sessions of the user go as a new one comes: the table holds live sessions, not a history.
        await session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at < at))
        expires = dt.datetime.fromtimestamp(claims.exp, dt.UTC)
        session.add(UserSession(id=claims.jti, user_id=user.id, issued_at=at, expires_at=expires, address=address))
        await session.commit()
        return encode(claims, now, self.keys)

    async def principal(self, token: str) -> Principal:
        """The caller a token stands for, as the database says now (or said less than `check_seconds` ago)."""
        now = time.time()
        if self.keys.current() != self._ring_seen:
            # A key left the ring (`kboss keys prune`): tokens it signed must be checked against the ring again.
            self._checked.clear()
            self._ring_seen = self.keys.current()
        checked = self._checked.get(token)
        if checked is not None and time.monotonic() - checked.at < self.check_seconds and checked.claims.exp > now:
            return checked.principal
        fresh = checked is not None and checked.claims.exp > now
        claims = checked.claims if checked is not None and fresh else decode(token, self.keys, now)
        self._checked.pop(token, None)
        principal = await self._lookup(claims)
        if len(self._checked) >= _CACHE_MAX:
            self._checked.clear()
        self._checked[token] = _Checked(claims, principal, time.monotonic())
        return principal

    async def _lookup(self, claims: Claims) -> Principal:
        query = (
            select(User.id, User.username, User.orgid, User.role, User.token_version, User.disabled)
            .add_columns(UserSession.revoked_at, Org.kind, Org.provider_id)
            .join(UserSession, UserSession.user_id == User.id)
            .join(Org, Org.id == User.orgid)
            .where(UserSession.id == claims.jti, User.id == claims.sub)
        )
        async with self.sessions() as session:
            row = (await session.execute(query)).first()
        if row is None:
            raise Unauthenticated("登录已失效(会话不存在或账号已删除),请重新登录")
        # The most telling reason first: a disabled account, then a change that revoked everything, then a logout.
        if row.disabled:
            raise Unauthenticated("账号已停用,请联系管理员")
        if row.token_version != claims.ver:
            raise Unauthenticated("登录已失效(密码、角色或账号状态已变更),请重新登录")
        if row.revoked_at is not None:
            raise Unauthenticated("登录已注销,请重新登录")
        return Principal(row.id, row.username, row.orgid, row.role, row.kind, row.provider_id)

    async def revoke(self, token: str) -> bool:
        """Logout: the token's session revoked on every process; whether the token named one."""
        try:
            claims = decode(token, self.keys, time.time())
        except Unauthenticated:
            return False
        self._checked.pop(token, None)
        async with self.sessions() as session:
            stmt = update(UserSession).where(UserSession.id == claims.jti, UserSession.revoked_at.is_(None))
            await session.execute(stmt.values(revoked_at=dt.datetime.now(dt.UTC)))
            await session.commit()
        return True

    def forget_user(self, user_id: str) -> None:
        """After `revoke_all` through this process: its cached checks of that user go at once."""
        for token in [t for t, c in self._checked.items() if c.principal.user_id == user_id]:
            self._checked.pop(token, None)


async def revoke_all(session: AsyncSession, user_id: str) -> None:
    """Every token of the user revoked (in the caller's transaction): the version bumped in SQL, so two racing
    bumps both count, and the live session rows marked."""
    await session.execute(update(User).where(User.id == user_id).values(token_version=User.token_version + 1))
    live = update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
    await session.execute(live.values(revoked_at=dt.datetime.now(dt.UTC)))
