"""Notifications of committed changes: who waits for a change wakes when it is committed, not by polling.

A writer calls `publish(session, topic, key)` inside its transaction. When that transaction commits, waiters in
this process wake at once; on PostgreSQL the same note also travels as a `NOTIFY` (sent by the database on
commit, never for a rolled-back transaction) to every process that `listen`s, so a request served by one
`kboss serve` wakes when another process's worker finishes. A rolled-back transaction notifies no one.

Notes may be lost (a process that was not yet listening), so a waiter always re-reads the database after a
bounded wait as well: notifications make waiting fast, the database stays the truth.

Each session factory has its own notifier (`make_sessionmaker` puts it in the sessions' `info`), so two
applications in one process never wake each other. This module is an adapter: it imports nothing from kboss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

log = logging.getLogger("kboss.db")
CHANNEL = "kboss_changes"
INFO_KEY = "kboss_notifier"
_PENDING_KEY = "kboss_pending_notes"
Note = tuple[str, str]  # (topic, key)


class Notifier:
    """Waiters and subscribers of one database's change notes."""

    def __init__(self) -> None:
        self._waiters: dict[Note, set[asyncio.Event]] = {}
        self._subscribers: dict[str, list[Callable[[str], None]]] = {}
        self._listener: AsyncConnection | None = None

    def deliver(self, topic: str, key: str) -> None:
        for waiter in self._waiters.get((topic, key), ()):
            waiter.set()
        for callback in self._subscribers.get(topic, ()):
            callback(key)

    def subscribe(self, topic: str, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call `callback(key)` for every note of `topic`; returns what unsubscribes it."""
        callbacks = self._subscribers.setdefault(topic, [])
        callbacks.append(callback)
        return lambda: callbacks.remove(callback) if callback in callbacks else None

    @contextlib.contextmanager
    def watch(self, topic: str, key: str) -> Iterator[asyncio.Event]:
        """An event set by the next note of (`topic`, `key`). Watch before reading the state, then wait: a change
        committed between the read and the wait still wakes the waiter."""
        waiter = asyncio.Event()
        waiters = self._waiters.setdefault((topic, key), set())
        waiters.add(waiter)
        try:
            yield waiter
        finally:
            waiters.discard(waiter)
            if not waiters:
                self._waiters.pop((topic, key), None)

    async def listen(self, engine: AsyncEngine) -> None:
        """On PostgreSQL, receive the notes of every process from now on; elsewhere nothing to do."""
        if engine.dialect.name != "postgresql" or self._listener is not None:
            return
        self._listener = await engine.connect()
        raw = await self._listener.get_raw_connection()
        await raw.driver_connection.add_listener(CHANNEL, self._on_notify)  # type: ignore[union-attr]

    async def close(self) -> None:
        """Stop listening. The connection is discarded, not pooled: a pooled one would keep LISTENing for
        whoever checks it out next."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.invalidate()
            await listener.close()

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, key = payload.partition(":")
        self.deliver(topic, key)


def notifier_of(session: AsyncSession) -> Notifier | None:
    found = session.info.get(INFO_KEY)
    return found if isinstance(found, Notifier) else None


def session_info(notifier: Notifier) -> dict[str, Any]:
    """The `info` a session factory gives its sessions so that `publish` finds the notifier."""
    return {INFO_KEY: notifier}


async def publish(session: AsyncSession, topic: str, key: str) -> None:
    """Note that (`topic`, `key`) changed in the current transaction; delivered when it commits."""
    session.info.setdefault(_PENDING_KEY, []).append((topic, key))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        payload = {"channel": CHANNEL, "payload": f"{topic}:{key}"}
        await session.execute(text("SELECT pg_notify(:channel, :payload)"), payload)


@event.listens_for(Session, "after_commit")
def _deliver_committed(session: Session) -> None:
    notes: list[Note] = session.info.pop(_PENDING_KEY, [])
    notifier = session.info.get(INFO_KEY)
    if isinstance(notifier, Notifier):
        for topic, key in notes:
            notifier.deliver(topic, key)


@event.listens_for(Session, "after_rollback")
def _drop_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
