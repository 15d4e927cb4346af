"""The operation state machine: the allowed transitions as data, and the one function that applies them.

`transition` is a compare-and-set on the stored state (and, for workers, on the claim), so two processes
racing to move the same operation never both succeed. It writes the history row, releases the cluster lock
when the operation ends (re-takes it when a retry makes it pending again) and commits: the new state is
durable before any work that depends on it starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from kboss.db.cas import compare_and_set
from kboss.db.models_ops import ClusterLock, Operation, OperationHistory, OperationStep, now
from kboss.db.notify import publish
from kboss.errors import Conflict
from kboss.redaction import redact

PENDING: Final = "pending"
RUNNING: Final = "running"
SUCCEEDED: Final = "succeeded"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
TIMED_OUT: Final = "timed_out"
STATES: Final = (PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED, TIMED_OUT)
TERMINAL: Final = frozenset({SUCCEEDED, FAILED, CANCELLED, TIMED_OUT})
# Notes published on commit (`kboss.db.notify`): an operation ended (waiters wake), one can be claimed (workers).
ENDED_TOPIC: Final = "operation_ended"
CLAIMABLE_TOPIC: Final = "operation_claimable"

# The whole state machine. Anything not listed here is refused by `transition`.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    PENDING: frozenset({RUNNING, CANCELLED, TIMED_OUT}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, TIMED_OUT}),
    SUCCEEDED: frozenset(),
    # Retry is an explicit request: it makes the operation pending again and re-runs what did not succeed.
    FAILED: frozenset({PENDING}),
    CANCELLED: frozenset({PENDING}),
    TIMED_OUT: frozenset({PENDING}),
}

STEP_PENDING: Final = "pending"
STEP_RUNNING: Final = "running"
STEP_SUCCEEDED: Final = "succeeded"
STEP_FAILED: Final = "failed"
STEP_SKIPPED: Final = "skipped"
STEP_DONE: Final = frozenset({STEP_SUCCEEDED, STEP_SKIPPED})

KINDS: Final = ("create_cluster", "join_worker", "remove_worker", "remove_cluster", "drain_node")
# Whole-operation deadlines when the caller gives none: generous multiples of what a healthy run takes.
DEFAULT_TIMEOUTS: Final[dict[str, int]] = {
    "create_cluster": 1800,
    "join_worker": 1200,
    "remove_worker": 1200,
    "remove_cluster": 1800,
    # A drain's own deadline (the wait for evictions) is its parameter; the start adds it to this.
    "drain_node": 600,
}


class OperationConflict(Conflict):
    """A transition the state table refuses, a lost race, or a busy cluster (HTTP 409)."""

    code = "operation_conflict"


class _Unset:
    pass


UNSET: Final = _Unset()


def check_transition(op_id: str, from_state: str, to_state: str) -> None:
    if to_state not in TRANSITIONS.get(from_state, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(from_state, ()))) or "无"
        raise OperationConflict(
            f"操作 {op_id} 当前状态为 {from_state},不能变为 {to_state} (允许: {allowed})",
            data={"operation_id": op_id, "state": from_state, "requested": to_state},
        )


def _entry_values(to_state: str, reason: str) -> dict[str, Any]:
    """What changes on the operation row when it enters `to_state`."""
    at = now()
    if to_state == RUNNING:
        return {"state": to_state, "started_at": at, "finished_at": None}
    if to_state == PENDING:
        return {
            "state": to_state,
            "finished_at": None,
            "cancel_requested": False,
            "last_error": "",
            "claimed_by": None,
            "heartbeat_at": None,
        }
    values: dict[str, Any] = {"state": to_state, "finished_at": at, "claimed_by": None, "heartbeat_at": None}
    if to_state != SUCCEEDED:
        values["last_error"] = redact(reason)
    return values


async def transition(
    session: AsyncSession,
    op: Operation,
    to_state: str,
    reason: str,
    actor: str,
    *,
    claimed_by: str | _Unset | None = UNSET,
    extra: Sequence[ColumnElement[bool]] = (),
    also: Mapping[str, Any] | None = None,
) -> None:
    """Move `op` to `to_state` or raise OperationConflict; commits. `claimed_by`/`extra` narrow the CAS,
    `also` sets more columns in the same UPDATE.

    On a conflict the session is rolled back (and `op` expired): reload it before using it again.
    """
    op_id, from_state = op.id, op.state
    check_transition(op_id, from_state, to_state)
    values = {**_entry_values(to_state, reason), **(also or {})}
    stmt = update(Operation).where(Operation.id == op_id, Operation.state == from_state, *extra)
    if not isinstance(claimed_by, _Unset):
        stmt = stmt.where(Operation.claimed_by.is_(None) if claimed_by is None else Operation.claimed_by == claimed_by)
    if not await compare_and_set(session, stmt.values(**values).execution_options(synchronize_session=False)):
        await session.rollback()
        raise OperationConflict(f"操作 {op_id} 的状态已被其他请求改变 (原为 {from_state}),请刷新后重试")
    session.add(
        OperationHistory(
            operation_id=op_id, from_state=from_state, to_state=to_state, reason=redact(reason)[:4000], actor=actor
        )
    )
    if to_state in TERMINAL:
        await _close_steps(session, op_id, to_state, reason)
        await release_lock(session, op_id)
        await publish(session, ENDED_TOPIC, op_id)
    elif to_state == PENDING:
        if op.cluster_id:
            await acquire_lock(session, op_id, op.cluster_id)
        await publish(session, CLAIMABLE_TOPIC, op_id)
    await session.commit()
    for key, value in values.items():
        set_committed_value(op, key, value)


async def _close_steps(session: AsyncSession, op_id: str, to_state: str, reason: str) -> None:
    """Steps still marked running when the operation ends were interrupted: say so on the step."""
    await session.execute(
        update(OperationStep)
        .where(OperationStep.operation_id == op_id, OperationStep.state == STEP_RUNNING)
        .values(state=STEP_FAILED, finished_at=now(), error=redact(f"中断: 操作已变为 {to_state}: {reason}")[:4000])
        .execution_options(synchronize_session=False)
    )


async def note(session: AsyncSession, op: Operation, reason: str, actor: str) -> None:
    """A history row without a state change (claim taken or released); the caller commits."""
    session.add(
        OperationHistory(operation_id=op.id, from_state=op.state, to_state=op.state, reason=redact(reason), actor=actor)
    )


async def acquire_lock(session: AsyncSession, op_id: str, cluster_id: str) -> None:
    """Take the cluster's lock inside the caller's transaction, or roll back and name the holder."""
    session.add(ClusterLock(cluster_id=cluster_id, operation_id=op_id))
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        holder = await lock_holder(session, cluster_id)
        raise OperationConflict(
            f"集群 {cluster_id} 正在执行操作 {holder[0]} ({holder[1]}, {holder[2]}),请等待其结束或取消后再试",
            data={"cluster_id": cluster_id, "operation_id": holder[0], "kind": holder[1], "state": holder[2]},
        ) from None


async def lock_holder(session: AsyncSession, cluster_id: str) -> tuple[str, str, str]:
    row = (
        await session.execute(
            select(Operation.id, Operation.kind, Operation.state)
            .join(ClusterLock, ClusterLock.operation_id == Operation.id)
            .where(ClusterLock.cluster_id == cluster_id)
        )
    ).first()
    # The holder may have finished between our failed insert and this read: still a refusal, just vaguer.
    return (row[0], row[1], row[2]) if row else ("?", "?", "刚刚结束")


async def release_lock(session: AsyncSession, op_id: str) -> None:
    """By operation, not by cluster: covers a lock taken late by a step that learnt the cluster id."""
    await session.execute(
        delete(ClusterLock).where(ClusterLock.operation_id == op_id).execution_options(synchronize_session=False)
    )
