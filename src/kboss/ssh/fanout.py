"""Doing the same thing on many machines at once, with a bound on how many at a time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("kboss.ssh")


@dataclass(frozen=True)
class HostOutcome(Generic[T, R]):
    """The result for one target: exactly one of `value` and `error` is meaningful."""

    target: T
    value: R | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


async def run_many(targets: Sequence[T], fn: Callable[[T], Awaitable[R]], concurrency: int) -> list[HostOutcome[T, R]]:
    """Call `fn(target)` for every target, at most `concurrency` at a time; outcomes in input order.

    One host failing (unreachable, bad password, failed command) never fails the batch: its exception
    is captured in its outcome. Cancellation of the caller still cancels everything.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(target: T) -> HostOutcome[T, R]:
        async with gate:
            try:
                return HostOutcome(target, value=await fn(target))
            except Exception as exc:  # captured per host by design; CancelledError is not caught
                log.info("run_many: %r failed: %s", target, exc)
                return HostOutcome(target, error=exc)

    return list(await asyncio.gather(*(one(t) for t in targets)))
