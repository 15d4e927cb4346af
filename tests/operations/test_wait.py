"""Waiting without polling: a waiter wakes when the operation's end is committed, a worker when new work is,
a rolled-back change wakes no one, and on PostgreSQL the note reaches other processes (`kboss.db.notify`)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kboss.db.engine import make_engine, make_sessionmaker, notifier
from kboss.db.notify import publish
from kboss.operations import service as operations
from tests.operations.kit import FAST, SCALE, lab_on
from tests.operations.played import PlayedSite


@contextmanager
def reads_of_operations(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SELECTs of the operations table run on `engine` while the block runs."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM operations" in statement:
            seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)


async def test_a_waiter_wakes_when_the_operation_ends_not_at_its_next_read(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        op_id = await lab.start("create_cluster", lab.devices[:1])  # no worker: it stays pending
        async with lab.ctx() as ctx:
            with reads_of_operations(lab.engine) as reads:
                waiter = asyncio.create_task(operations.wait_operation(ctx, op_id, max_wait=120, reread=120))
                await asyncio.sleep(1.0)  # four reads under the old 0.25 s poll
                assert len(reads) == 1 and not waiter.done()
            async with lab.ctx() as other:
                await operations.cancel_operation(other, op_id)
            async with asyncio.timeout(5):  # far sooner than the 120 s re-read
                ended = await waiter
        assert ended.state == "cancelled"


async def test_a_worker_that_polls_rarely_starts_new_work_at_once(db_url: str) -> None:
    site = PlayedSite(SCALE)
    rare = dataclasses.replace(FAST, poll_seconds=120.0, sweep_seconds=120.0)
    async with lab_on(db_url) as lab, lab.worker(site, config=rare):
        await asyncio.sleep(0.2)  # the worker has looked once, found nothing, and sleeps
        op_id = await lab.start("create_cluster", lab.devices[:1])
        assert (await lab.wait_state(op_id, "succeeded", limit=10)).last_error == ""


async def test_a_rolled_back_change_wakes_no_one(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        notes = notifier(lab.sessions)
        with notes.watch("topic", "k") as woken:
            async with lab.sessions() as session:
                await publish(session, "topic", "k")
                await session.rollback()
            await asyncio.sleep(0.1)
            assert not woken.is_set()
            async with lab.sessions() as session:
                await publish(session, "topic", "k")
                assert not woken.is_set()  # not before the commit
                await session.commit()
            assert woken.is_set()


async def test_another_process_is_woken_through_postgresql_only(db_url: str) -> None:
    """A second engine and session factory stand for another `kboss serve` on the same database."""
    async with lab_on(db_url) as lab:
        postgres = lab.engine.dialect.name == "postgresql"
        other_engine = make_engine(db_url)
        other_notes = notifier(make_sessionmaker(other_engine))
        await other_notes.listen(other_engine)
        try:
            with other_notes.watch("topic", "k") as woken:
                async with lab.sessions() as session:
                    await publish(session, "topic", "k")
                    await session.commit()
                try:
                    async with asyncio.timeout(5 if postgres else 0.5):
                        await woken.wait()
                except TimeoutError:
                    pass
                # SQLite has no NOTIFY: there the other process learns of the change at its next re-read.
                assert woken.is_set() == postgres
        finally:
            await other_notes.close()
            await other_engine.dispose()
