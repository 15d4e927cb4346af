"""Login throttling: backoff doubling from the third failure, a lockout at the tenth, a new window after the old
one, and claims that stay exact when many attempts race (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.accounts import throttle
from kboss.accounts.throttle import Limits
from kboss.db.engine import make_engine, make_sessionmaker
from kboss.errors import TooManyAttempts

LIMITS = Limits(
    backoff_after=3, lockout_after=10, backoff_seconds=1, backoff_max_seconds=300, lockout_seconds=900,
    window_seconds=900,
)  # fmt: skip
T0 = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _waits(failures: int) -> list[float | None]:
    counter, waits = None, []
    for _ in range(failures):
        counter = throttle.after_failure(counter, LIMITS, T0)
        waits.append((counter.blocked_until - T0).total_seconds() if counter.blocked_until else None)
    return waits


def test_backoff_doubles_from_the_third_failure_and_the_tenth_locks() -> None:
    assert _waits(10) == [None, None, 1, 2, 4, 8, 16, 32, 64, 900]
    counter = None
    for _ in range(10):
        counter = throttle.after_failure(counter, LIMITS, T0)
    assert counter is not None and counter.locked


def test_a_failure_after_the_window_starts_counting_again() -> None:
    counter = None
    for _ in range(5):
        counter = throttle.after_failure(counter, LIMITS, T0)
    later = throttle.after_failure(counter, LIMITS, T0 + dt.timedelta(seconds=901))
    assert later.failures == 1 and later.blocked_until is None


def test_refusals_say_how_long_to_wait_and_until_when() -> None:
    backoff = throttle.Counter(4, T0, T0 + dt.timedelta(seconds=2.2), False)
    refused = throttle.refusal("account:alice", backoff, T0)
    assert refused is not None and refused.retry_after == 3 and "请 3 秒后再试" in refused.message
    locked = throttle.Counter(10, T0, T0 + dt.timedelta(minutes=15), True)
    refused = throttle.refusal("address:10.0.0.1", locked, T0)
    assert refused is not None and "该地址" in refused.message and "锁定至 2026-12-03 12:15:00 (UTC)" in refused.message
    assert refused.retry_after == 900 and refused.locked_until == T0 + dt.timedelta(minutes=15)
    assert throttle.refusal("account:alice", locked, T0 + dt.timedelta(minutes=16)) is None


async def test_the_fourth_claim_in_a_row_is_refused(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = [(throttle.account_key("alice"), LIMITS)]
    for _ in range(3):
        await throttle.claim(sessions, keys, T0)
    with pytest.raises(TooManyAttempts) as refused:
        await throttle.claim(sessions, keys, T0)
    assert refused.value.retry_after == 1
    await throttle.claim(sessions, keys, T0 + dt.timedelta(seconds=1))  # the backoff passed: one more attempt


async def test_racing_claims_pass_only_as_many_as_the_threshold(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = [(throttle.account_key("alice"), LIMITS), (throttle.address_key("10.0.0.1"), LIMITS)]
    results = await asyncio.gather(*(throttle.claim(sessions, keys, T0) for _ in range(12)), return_exceptions=True)
    passed = [r for r in results if not isinstance(r, BaseException)]
    assert len(passed) == 3, results
    assert all(isinstance(r, TooManyAttempts) for r in results if isinstance(r, BaseException))


async def test_giving_back_a_claim_restores_the_counter(sessions: async_sessionmaker[AsyncSession]) -> None:
    keys = [(throttle.address_key("10.0.0.1"), LIMITS)]
    for _ in range(2):
        await throttle.claim(sessions, keys, T0)
    [third] = await throttle.claim(sessions, keys, T0)  # would back off, but the login succeeded
    await throttle.give_back(sessions, third, LIMITS)
    [again] = await throttle.claim(sessions, keys, T0)
    assert again.before is not None and again.before.failures == 2 and again.before.blocked_until is None
    async with sessions() as session:
        assert await throttle.clear(session, keys[0][0])
        assert not await throttle.clear(session, keys[0][0])
    [fresh] = await throttle.claim(sessions, keys, T0)
    assert fresh.before is None
