"""The sweeper: nothing is left hanging. Every worker runs it periodically; concurrent sweeps are harmless
because every change is a compare-and-set on what the sweep saw.

- An operation past its deadline becomes `timed_out` (unless a live worker is still ending it, for a grace).
- A claim whose heartbeat is stale (a crashed or cut-off worker) is released so another worker resumes the
  operation from its first unfinished step; or the operation is failed when its kind must not resume, or
  cancelled when a cancel was requested.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.cas import compare_and_set
from kboss.db.models_ops import Operation, OperationStep, now
from kboss.db.notify import publish
from kboss.operations.states import (
    CANCELLED,
    CLAIMABLE_TOPIC,
    FAILED,
    PENDING,
    RUNNING,
    STEP_PENDING,
    STEP_RUNNING,
    TIMED_OUT,
    OperationConflict,
    note,
    transition,
)
from kboss.operations.steps import Registry

Sessions = async_sessionmaker[AsyncSession]


@dataclass
class SweepReport:
    timed_out: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)


async def sweep(
    sessions: Sessions,
    registry: Registry | None,
    actor: str,
    *,
    stale_seconds: float,
    grace_seconds: float,
    at: dt.datetime | None = None,
) -> SweepReport:
    at = at or now()
    stale_before = at - dt.timedelta(seconds=stale_seconds)
    report = SweepReport()
    await _time_out_overdue(sessions, actor, at, stale_before, at - dt.timedelta(seconds=grace_seconds), report)
    await _handle_stale(sessions, registry, actor, stale_before, report)
    await _cancel_unclaimed(sessions, actor, report)
    return report


async def _rows(sessions: Sessions, *where: ColumnElement[bool]) -> list[Any]:
    async with sessions() as session:
        columns = (Operation.id, Operation.state, Operation.claimed_by, Operation.heartbeat_at, Operation.deadline_at,
                   Operation.kind, Operation.backend, Operation.cancel_requested)  # fmt: skip
        return list((await session.execute(select(*columns).where(*where).order_by(Operation.created_at))).all())


async def _end(
    sessions: Sessions, op_id: str, to_state: str, reason: str, actor: str, claimed_by: str | None,
    extra: tuple[ColumnElement[bool], ...] = (),
) -> bool:  # fmt: skip
    async with sessions() as session:
        op = await session.get_one(Operation, op_id, populate_existing=True)
        try:
            await transition(session, op, to_state, reason, actor, claimed_by=claimed_by, extra=extra)
        except OperationConflict:
            return False  # someone else moved it first: their change stands
    return True


async def _time_out_overdue(
    sessions: Sessions, actor: str, at: dt.datetime, stale_before: dt.datetime, grace_before: dt.datetime,
    report: SweepReport,
) -> None:  # fmt: skip
    for row in await _rows(sessions, Operation.state.in_((PENDING, RUNNING)), Operation.deadline_at < at):
        live = row.state == RUNNING and row.claimed_by and row.heartbeat_at and row.heartbeat_at >= stale_before
        if live and row.deadline_at >= grace_before:
            continue  # its worker enforces the deadline itself and is ending it now
        reason = f"超过截止时间 {row.deadline_at.isoformat(timespec='seconds')} 仍未完成"
        if await _end(sessions, row.id, TIMED_OUT, reason, actor, row.claimed_by):
            report.timed_out.append(row.id)


async def _handle_stale(
    sessions: Sessions, registry: Registry | None, actor: str, stale_before: dt.datetime, report: SweepReport
) -> None:
    stale = or_(Operation.heartbeat_at.is_(None), Operation.heartbeat_at < stale_before)
    for row in await _rows(sessions, Operation.state == RUNNING, Operation.claimed_by.is_not(None), stale):
        seen = row.heartbeat_at.isoformat(timespec="seconds") if row.heartbeat_at else "无"
        why = f"worker {row.claimed_by} 已失联 (最后心跳 {seen})"
        kind = registry.get(row.backend, row.kind) if registry else None
        if row.cancel_requested:
            if await _end(sessions, row.id, CANCELLED, f"{why},按请求取消", actor, row.claimed_by, (stale,)):
                report.cancelled.append(row.id)
        elif kind is not None and not kind.resume_after_crash:
            reason = f"{why};{row.kind} 类操作不自动恢复,请检查机器状态后重试"
            if await _end(sessions, row.id, FAILED, reason, actor, row.claimed_by, (stale,)):
                report.failed.append(row.id)
        else:
            report.released += await release_claims_of(
                sessions, row.claimed_by, f"{why},释放认领以便继续", actor, op_id=row.id, only_if=(stale,)
            )


async def _cancel_unclaimed(sessions: Sessions, actor: str, report: SweepReport) -> None:
    """A cancel requested while no worker held the operation: nobody is running it, so end it here."""
    where = (Operation.state == RUNNING, Operation.claimed_by.is_(None), Operation.cancel_requested.is_(True))
    for row in await _rows(sessions, *where):
        if await _end(sessions, row.id, CANCELLED, "已按请求取消 (无 worker 在执行)", actor, None):
            report.cancelled.append(row.id)


async def release_claims_of(
    sessions: Sessions,
    worker_id: str,
    reason: str,
    actor: str,
    *,
    op_id: str | None = None,
    only_if: tuple[ColumnElement[bool], ...] = (),
) -> list[str]:
    """Release the running operations claimed by `worker_id`; their interrupted steps become pending again."""
    where = [Operation.claimed_by == worker_id, Operation.state == RUNNING, *only_if]
    if op_id:
        where.append(Operation.id == op_id)
    released = []
    for row in await _rows(sessions, *where):
        async with sessions() as session:
            freed = await compare_and_set(
                session,
                update(Operation).where(Operation.id == row.id, *where).values(claimed_by=None, heartbeat_at=None)
                .execution_options(synchronize_session=False),
            )  # fmt: skip
            if not freed:
                continue
            await session.execute(
                update(OperationStep)
                .where(OperationStep.operation_id == row.id, OperationStep.state == STEP_RUNNING)
                .values(state=STEP_PENDING, error=f"中断: {reason}"[:4000])
            )
            op = await session.get_one(Operation, row.id, populate_existing=True)
            await note(session, op, f"释放 worker {worker_id} 的认领: {reason}", actor)
            await publish(session, CLAIMABLE_TOPIC, row.id)  # another process's worker may resume it now
            await session.commit()
            released.append(row.id)
    return released
