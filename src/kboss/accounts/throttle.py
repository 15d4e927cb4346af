"""Login throttling per account (the username given) and per client address, stored in `login_throttle`.

Every attempt first *claims* a failure on both keys in one transaction (a compare-and-set on each row's version):
a key that is backing off or locked refuses the attempt before any password is hashed, and of many parallel
attempts only as many pass as the thresholds allow. A successful login then deletes the account's row and gives
back the address's claim. Rows are keyed by the username given, not the user, so an unknown username is throttled
exactly like a real one. See docs/security.md, "Logins and sessions".
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.cas import compare_and_set
from kboss.db.models_accounts import LoginThrottle
from kboss.errors import TooManyAttempts
from kboss.settings import Settings

# Claims racing on one key retry this often before the attempt is refused as too frequent.
_CLAIM_TRIES = 8


@dataclass(frozen=True)
class Limits:
    backoff_after: int
    lockout_after: int
    backoff_seconds: float
    backoff_max_seconds: float
    lockout_seconds: float
    window_seconds: float


@dataclass(frozen=True)
class Policy:
    account: Limits
    address: Limits

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        def limits(backoff_after: int, lockout_after: int) -> Limits:
            return Limits(
                backoff_after,
                lockout_after,
                settings.login_backoff_seconds,
                settings.login_backoff_max_seconds,
                settings.login_lockout_seconds,
                settings.login_window_seconds,
            )

        return cls(
            account=limits(settings.login_backoff_after, settings.login_lockout_after),
            address=limits(settings.login_address_backoff_after, settings.login_address_lockout_after),
        )


@dataclass(frozen=True)
class Counter:
    """A key's state: failures in the window begun at `window_started_at`, and no attempt before `blocked_until`."""

    failures: int
    window_started_at: dt.datetime
    blocked_until: dt.datetime | None
    locked: bool

    def expires_at(self, limits: Limits) -> dt.datetime:
        window_end = self.window_started_at + dt.timedelta(seconds=limits.window_seconds)
        return max(window_end, self.blocked_until or window_end)


def account_key(username: str) -> str:
    return f"account:{username}"


def address_key(address: str) -> str:
    return f"address:{address}"


def after_failure(counter: Counter | None, limits: Limits, now: dt.datetime) -> Counter:
    """The state once one more failure is counted: a new window when the last one ended, a backoff doubling per
    failure from `backoff_after` on (capped), a lockout from `lockout_after` on."""
    window = dt.timedelta(seconds=limits.window_seconds)
    if counter is None or now - counter.window_started_at > window:
        counter = Counter(0, now, None, False)
    failures = counter.failures + 1
    if failures >= limits.lockout_after:
        return Counter(failures, counter.window_started_at, now + dt.timedelta(seconds=limits.lockout_seconds), True)
    if failures >= limits.backoff_after:
        wait = min(limits.backoff_max_seconds, limits.backoff_seconds * 2 ** (failures - limits.backoff_after))
        return Counter(failures, counter.window_started_at, now + dt.timedelta(seconds=wait), False)
    return Counter(failures, counter.window_started_at, None, False)


def refusal(key: str, counter: Counter | None, now: dt.datetime) -> TooManyAttempts | None:
    """Why an attempt on `key` is refused now (a clear message with the wait), or None."""
    if counter is None or counter.blocked_until is None or counter.blocked_until <= now:
        return None
    until = counter.blocked_until
    wait = (until - now).total_seconds()
    whom = "该账号" if key.startswith("account:") else "该地址"
    seconds = max(1, math.ceil(wait))  # as the Retry-After header says it
    if counter.locked:
        when = until.strftime("%Y-%m-%d %H:%M:%S")
        text = f"{whom}登录失败次数过多,已临时锁定至 {when} (UTC),请 {seconds} 秒后再试或联系管理员解锁"
        return TooManyAttempts(text, wait, until)
    return TooManyAttempts(f"{whom}登录失败次数过多,请 {seconds} 秒后再试", wait)


@dataclass(frozen=True)
class Claim:
    """What an attempt claimed: per key its state before and after, and the row version it wrote."""

    key: str
    before: Counter | None
    after: Counter
    version: int


def _counter(row: LoginThrottle) -> Counter:
    return Counter(row.failures, row.window_started_at, row.blocked_until, row.locked)


async def claim(
    sessions: async_sessionmaker[AsyncSession], keys: Sequence[tuple[str, Limits]], now: dt.datetime
) -> list[Claim]:
    """Count one failure on every key before the password is checked; TooManyAttempts if any key refuses."""
    for _ in range(_CLAIM_TRIES):
        async with sessions() as session:
            await session.execute(delete(LoginThrottle).where(LoginThrottle.expires_at < now))
            rows = {row.key: row for row in await session.scalars(select(LoginThrottle).where(_keys_in(keys)))}
            for key, _limits in keys:
                refused = refusal(key, _counter(rows[key]) if key in rows else None, now)
                if refused is not None:
                    raise refused
            try:
                claims = [await _write(session, key, rows.get(key), limits, now) for key, limits in keys]
                if all(c is not None for c in claims):
                    await session.commit()
                    return [c for c in claims if c is not None]
            except IntegrityError:
                pass  # another attempt inserted the same key first: read it again
    raise TooManyAttempts("登录请求过于频繁,请稍后再试", 1)


def _keys_in(keys: Sequence[tuple[str, Limits]]) -> ColumnElement[bool]:
    return LoginThrottle.key.in_([key for key, _ in keys])


async def _write(
    session: AsyncSession, key: str, row: LoginThrottle | None, limits: Limits, now: dt.datetime
) -> Claim | None:
    before = _counter(row) if row is not None else None
    after = after_failure(before, limits, now)
    values = _values(after, limits)
    if row is None:
        session.add(LoginThrottle(key=key, version=1, **values))
        await session.flush()
        return Claim(key, None, after, 1)
    version = row.version
    stmt = update(LoginThrottle).where(LoginThrottle.key == key, LoginThrottle.version == version)
    if await compare_and_set(session, stmt.values(version=version + 1, **values)):
        return Claim(key, before, after, version + 1)
    return None


def _values(counter: Counter, limits: Limits) -> dict[str, object]:
    return {
        "failures": counter.failures,
        "window_started_at": counter.window_started_at,
        "blocked_until": counter.blocked_until,
        "locked": counter.locked,
        "expires_at": counter.expires_at(limits),
    }


async def give_back(sessions: async_sessionmaker[AsyncSession], claimed: Claim, limits: Limits) -> None:
    """Undo a claim after a successful login: the row as it was, if no other attempt wrote it since (else one
    failure less, keeping the block others earned)."""
    async with sessions() as session:
        exact = LoginThrottle.key == claimed.key, LoginThrottle.version == claimed.version
        if claimed.before is None:
            await session.execute(delete(LoginThrottle).where(*exact))
        else:
            values = _values(claimed.before, limits)
            restored = update(LoginThrottle).where(*exact).values(version=claimed.version + 1, **values)
            if not await compare_and_set(session, restored):
                await session.execute(
                    update(LoginThrottle)
                    .where(LoginThrottle.key == claimed.key, LoginThrottle.failures > 0)
                    .values(failures=LoginThrottle.failures - 1, version=LoginThrottle.version + 1)
                )
        await session.commit()


async def clear(session: AsyncSession, key: str) -> bool:
    """Forget a key's failures (a successful login, `kboss user unlock`); whether there were any. Commits."""
    found = await compare_and_set(session, delete(LoginThrottle).where(LoginThrottle.key == key))
    await session.commit()
    return found
