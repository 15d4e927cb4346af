"""A short-lived, per-process cache of each center's priced components, for quotes.

A quote is an estimate: orders check and consume stock in their own transaction, so a quote may read stock that
is a second or two old. Writes made through this process clear the cache at once; the TTL bounds what other
replicas' writes can leave stale. `KBOSS_QUOTE_CACHE_SECONDS=0` turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")
MAX_ENTRIES = 10_000


class TtlCache(Generic[V]):
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[Hashable, tuple[float, V]] = {}

    def get(self, key: Hashable) -> V | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, key: Hashable, value: V) -> None:
        if self.ttl <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def clear(self) -> None:
        self._entries.clear()
