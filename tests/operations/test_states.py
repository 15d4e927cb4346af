"""The state table: every transition not listed is refused, every listed one works and writes history."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import select

from kboss.db.models_ops import ClusterLock, Operation, now
from kboss.operations.logs import LogCursor, append_tail
from kboss.operations.states import (
    PENDING,
    RUNNING,
    STATES,
    SUCCEEDED,
    TERMINAL,
    TRANSITIONS,
    OperationConflict,
    check_transition,
    transition,
)
from kboss.operations.worker import WorkerConfig
from tests.operations.kit import Lab, lab_on

PAIRS = list(itertools.product(STATES, STATES))


@pytest.mark.parametrize(("from_state", "to_state"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_the_table_decides_every_pair(from_state: str, to_state: str) -> None:
    if to_state in TRANSITIONS[from_state]:
        check_transition("op", from_state, to_state)
        return
    with pytest.raises(OperationConflict) as refused:
        check_transition("op", from_state, to_state)
    assert from_state in refused.value.message and to_state in refused.value.message
    assert refused.value.http_status == 409


def test_the_table_is_the_documented_machine() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert TRANSITIONS[PENDING] == {RUNNING, "cancelled", "timed_out"}
    assert TRANSITIONS[RUNNING] == TERMINAL
    assert TRANSITIONS[SUCCEEDED] == set()
    assert all(TRANSITIONS[s] == {PENDING} for s in TERMINAL - {SUCCEEDED})


async def _op_in(lab: Lab, state: str, with_lock: bool) -> Operation:
    async with lab.sessions() as session:
        op = Operation(
            orgid=lab.admin.orgid, kind="join_worker", cluster_id=lab.cluster_id if with_lock else None,
            device_ids=[], params={}, requested_by="t", state=state, timeout_seconds=60,
            deadline_at=now() + dt.timedelta(minutes=1),
        )  # fmt: skip
        session.add(op)
        await session.flush()
        # A live operation holds its cluster's lock; an ended one does not.
        if with_lock and state not in TERMINAL:
            session.add(ClusterLock(cluster_id=lab.cluster_id, operation_id=op.id))
        await session.commit()
        return op


async def _lock_holder(lab: Lab) -> str | None:
    async with lab.sessions() as session:
        return await session.scalar(select(ClusterLock.operation_id).where(ClusterLock.cluster_id == lab.cluster_id))


async def test_every_pair_in_the_database(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        for from_state, to_state in PAIRS:
            op = await _op_in(lab, from_state, with_lock=True)
            async with lab.sessions() as session:
                mine = await session.get_one(Operation, op.id)
                if to_state not in TRANSITIONS[from_state]:
                    with pytest.raises(OperationConflict):
                        await transition(session, mine, to_state, "test", "tester")
                    assert (await lab.op(op.id)).state == from_state
                    assert await lab.history(op.id) == []
                else:
                    await transition(session, mine, to_state, "test", "tester")
                    assert mine.state == to_state
                    assert (await lab.op(op.id)).state == to_state
                    assert await lab.history(op.id) == [(from_state, to_state)]
                    # The lock follows the state: held while pending or running, free once ended.
                    assert (await _lock_holder(lab) == op.id) is (to_state not in TERMINAL)
            await _release_everything(lab)


async def _release_everything(lab: Lab) -> None:
    async with lab.sessions() as session:
        for lock in (await session.scalars(select(ClusterLock))).all():
            await session.delete(lock)
        await session.commit()


async def test_a_stale_view_loses_the_race(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        op = await _op_in(lab, PENDING, with_lock=False)
        async with lab.sessions() as first, lab.sessions() as second:
            a = await first.get_one(Operation, op.id)
            b = await second.get_one(Operation, op.id)
            await transition(first, a, RUNNING, "first", "w1")
            with pytest.raises(OperationConflict, match="已被其他请求改变"):
                await transition(second, b, "cancelled", "second", "api")
        assert await lab.history(op.id) == [(PENDING, RUNNING)]


async def test_retry_retakes_the_lock_or_names_the_holder(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        failed = await _op_in(lab, "failed", with_lock=True)
        busy = await _op_in(lab, RUNNING, with_lock=True)
        async with lab.sessions() as session:
            mine = await session.get_one(Operation, failed.id)
            with pytest.raises(OperationConflict, match=busy.id):
                await transition(session, mine, PENDING, "retry", "tester")
        assert (await lab.op(failed.id)).state == "failed"
        assert await _lock_holder(lab) == busy.id


def test_log_tail_keeps_whole_lines_and_followers_know_what_was_dropped() -> None:
    text = "".join(f"line {i}\n" for i in range(100))
    tail = append_tail("", text, 50)
    assert len(tail) <= 50 and tail.startswith("line ") and tail.endswith("line 99\n")
    cursor = LogCursor()
    assert cursor.advance(text[:20], 20) == (text[:20], 0)
    new, dropped = cursor.advance(tail, len(text))
    assert new == tail and dropped == len(text) - len(tail) - 20
    assert cursor.advance(tail, len(text)) == ("", 0)


def test_worker_config_reads_settings_when_they_exist() -> None:
    class Partial:
        worker_concurrency = 9
        operation_log_tail_chars = 1024

    config = WorkerConfig.from_settings(Partial())
    assert (config.concurrency, config.log_tail_chars, config.poll_seconds) == (9, 1024, WorkerConfig().poll_seconds)
