"""The operations service: start, read, retry, cancel, wait for and follow durable operations.

Every call is scoped to the caller's org. Starting, retrying and cancelling need an org admin; any member
may read. Workers (`op_worker`) run what this module records; nothing here waits for a machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.audit import trail
from kboss.common.context import Ctx
from kboss.common.records import get_owned
from kboss.db.cas import compare_and_set
from kboss.db.models import Cluster, Device
from kboss.db.models_ops import Operation, OperationHistory, OperationStep, now
from kboss.db.notify import Notifier, notifier_of, publish
from kboss.errors import InvalidParameter, NotFound
from kboss.operations.logs import LogCursor, labelled_lines, step_label
from kboss.operations.states import (
    CANCELLED,
    CLAIMABLE_TOPIC,
    DEFAULT_TIMEOUTS,
    ENDED_TOPIC,
    KINDS,
    PENDING,
    RUNNING,
    STATES,
    STEP_DONE,
    STEP_PENDING,
    TERMINAL,
    OperationConflict,
    acquire_lock,
    check_transition,
    note,
    transition,
)
from kboss.redaction import is_secret_name

# Parameters are stored in clear and shown to every member of the org: refuse anything that looks secret.
MAX_TIMEOUT_SECONDS = 7 * 24 * 3600


def _validated_params(params: dict[str, Any] | None) -> dict[str, Any]:
    params = dict(params or {})
    for key in params:
        if is_secret_name(str(key)):
            raise InvalidParameter(key, "操作参数不保存机密;机密只从目录记录中读取")
    return params


async def _check_targets(ctx: Ctx, cluster_id: str | None, device_ids: Sequence[str]) -> None:
    if cluster_id:
        await get_owned(ctx, Cluster, cluster_id, "cluster_id", "算力集群")
    if device_ids:
        found = set(
            await ctx.session.scalars(select(Device.id).where(Device.id.in_(device_ids), Device.orgid == ctx.orgid))
        )
        missing = [d for d in device_ids if d not in found]
        if missing:
            raise NotFound(f"算力设备不存在: {', '.join(missing)}")


async def start_operation(
    ctx: Ctx,
    kind: str,
    cluster_id: str | None,
    device_ids: Sequence[str],
    params: dict[str, Any] | None = None,
    timeout_seconds: float | None = None,
    *,
    backend: str = "agent",
) -> Operation:
    """Record a pending operation and take its cluster's lock in one transaction; refused when the cluster is busy."""
    ctx.require_admin()
    if kind not in KINDS:
        raise InvalidParameter("kind", f"应为 {', '.join(KINDS)} 之一")
    seconds = int(timeout_seconds if timeout_seconds is not None else DEFAULT_TIMEOUTS[kind])
    if not 0 < seconds <= MAX_TIMEOUT_SECONDS:
        raise InvalidParameter("timeout_seconds", f"应在 1 到 {MAX_TIMEOUT_SECONDS} 秒之间")
    await _check_targets(ctx, cluster_id, device_ids)
    at = now()
    op = Operation(
        orgid=ctx.orgid, kind=kind, backend=backend, cluster_id=cluster_id, device_ids=list(device_ids),
        params=_validated_params(params), requested_by=ctx.principal.username, state=PENDING, current_step="",
        attempt=1, timeout_seconds=seconds, cancel_requested=False, created_at=at,
        deadline_at=at + dt.timedelta(seconds=seconds), last_error="",
    )  # fmt: skip
    ctx.session.add(op)
    await ctx.session.flush()
    if cluster_id:
        await acquire_lock(ctx.session, op.id, cluster_id)
    who = ctx.principal.username
    reason = f"{who} 请求 {kind}"
    ctx.session.add(OperationHistory(operation_id=op.id, from_state="", to_state=PENDING, reason=reason, actor=who))
    await publish(ctx.session, CLAIMABLE_TOPIC, op.id)  # a worker of any process starts it now
    await ctx.session.commit()
    await _audit(ctx, trail.OPERATION_START, op)
    return op


async def _audit(ctx: Ctx, action: str, op: Operation) -> None:
    """The audit event of a start, retry or cancel (after the caller's commit: SQLite allows one writer)."""
    try:  # a session that expires on commit cannot lazily reload here: the act stands, unrecorded, and is logged
        detail = {"kind": op.kind, "cluster_id": op.cluster_id, "device_ids": list(op.device_ids)}
        event = trail.Event(action, target_type="operation", target_id=op.id, address=trail.current_address(),
                            detail={**detail, "attempt": op.attempt})  # fmt: skip
    except Exception:
        trail.log.exception("could not describe operation for the audit trail (%s)", action)
        return
    await trail.record(ctx.session, event.by(ctx.principal))


async def get_operation(ctx: Ctx, op_id: str | None) -> Operation:
    return await get_owned(ctx, Operation, op_id, "id", "操作")


async def _fresh(ctx: Ctx, op_id: str) -> Operation:
    op = await ctx.session.scalar(
        select(Operation)
        .where(Operation.id == op_id, Operation.orgid == ctx.orgid)
        .execution_options(populate_existing=True)
    )
    if op is None:
        raise NotFound(f"操作不存在: {op_id}")
    return op


async def list_operations(
    ctx: Ctx, cluster_id: str | None = None, state: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Operation]:
    query = select(Operation).where(Operation.orgid == ctx.orgid)
    if state:
        if state not in STATES:
            raise InvalidParameter("state", f"应为 {', '.join(STATES)} 之一")
        query = query.where(Operation.state == state)
    if cluster_id:
        query = query.where(Operation.cluster_id == cluster_id)
    if kind:
        query = query.where(Operation.kind == kind)
    query = query.order_by(Operation.created_at.desc(), Operation.id).limit(max(1, min(limit, 1000)))
    return list((await ctx.session.scalars(query)).all())


async def retry_operation(ctx: Ctx, op_id: str) -> Operation:
    """Pending again (re-taking the cluster's lock); only steps and nodes that did not succeed run again."""
    ctx.require_admin()
    op = await get_operation(ctx, op_id)
    check_transition(op.id, op.state, PENDING)
    await ctx.session.execute(
        update(OperationStep)
        .where(OperationStep.operation_id == op.id, OperationStep.state.not_in(STEP_DONE))
        .values(state=STEP_PENDING)
        .execution_options(synchronize_session=False)
    )
    also = {
        "attempt": op.attempt + 1,
        "current_step": "",
        "deadline_at": now() + dt.timedelta(seconds=op.timeout_seconds),
    }
    reason = f"{ctx.principal.username} 请求重试 (第 {op.attempt + 1} 次执行)"
    await transition(ctx.session, op, PENDING, reason, ctx.principal.username, also=also)
    await _audit(ctx, trail.OPERATION_RETRY, op)
    return op


async def cancel_operation(ctx: Ctx, op_id: str) -> Operation:
    """Pending: cancelled at once. Running: a request its worker honours within a heartbeat, interrupting the step."""
    ctx.require_admin()
    op = await get_operation(ctx, op_id)
    who = ctx.principal.username
    if op.state == PENDING:
        await transition(ctx.session, op, CANCELLED, f"{who} 在开始前取消", who, claimed_by=None)
        await _audit(ctx, trail.OPERATION_CANCEL, op)
        return op
    if op.state != RUNNING:
        check_transition(op.id, op.state, CANCELLED)
    if not op.cancel_requested:
        requested = await compare_and_set(
            ctx.session,
            update(Operation)
            .where(Operation.id == op.id, Operation.state == RUNNING)
            .values(cancel_requested=True)
            .execution_options(synchronize_session=False),
        )
        if not requested:
            await ctx.session.rollback()
            raise OperationConflict(f"操作 {op_id} 的状态已改变,请刷新后重试")
        await note(ctx.session, op, f"{who} 请求取消", who)
        await ctx.session.commit()
        await _audit(ctx, trail.OPERATION_CANCEL, op)
    return await _fresh(ctx, op_id)


# A waiter re-reads the operation at least this often: a note from a process that cannot notify this one (SQLite
# shared by two processes) is late by this much at most.
REREAD_SECONDS = 5.0


async def wait_operation(ctx: Ctx, op_id: str, max_wait: float, reread: float = REREAD_SECONDS) -> Operation:
    """The operation once it has ended, or as it is after `max_wait` seconds: woken by the note of its end
    (`kboss.db.notify`), re-read every `reread` seconds whatever happens. Commits the session between reads."""
    loop = asyncio.get_running_loop()
    until = loop.time() + max(0.0, max_wait)
    notes = notifier_of(ctx.session) or Notifier()
    while True:
        with notes.watch(ENDED_TOPIC, op_id) as ended:
            op = await _fresh(ctx, op_id)
            if op.state in TERMINAL or loop.time() >= until:
                return op
            await ctx.session.commit()  # do not sit in an open transaction while waiting
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), min(reread, max(0.0, until - loop.time())))


async def read_log(ctx: Ctx, op_id: str) -> str:
    """The whole stored log: each step's (tail of) output in step order, every line labelled `step@node | `."""
    op = await get_operation(ctx, op_id)
    return await render_log(ctx.session, op.id)


async def render_log(session: AsyncSession, op_id: str) -> str:
    """`read_log` without the org check, for operator tools that already hold the database."""
    lines: list[str] = []
    for step in await _steps(session, op_id):
        lines += labelled_lines(step_label(step.name, step.node), step.output, step.output_size - len(step.output))
    return "\n".join(lines) + ("\n" if lines else "")


async def _steps(session: AsyncSession, op_id: str) -> list[OperationStep]:
    query = select(OperationStep).where(OperationStep.operation_id == op_id)
    query = query.order_by(OperationStep.ordinal, OperationStep.node).execution_options(populate_existing=True)
    return list((await session.scalars(query)).all())


@dataclass
class Progress:
    """What changed since the last look: new log lines, and the state of the operation and of each step."""

    state: str
    current_step: str
    last_error: str
    steps: list[dict[str, Any]]
    lines: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL


async def follow(
    sessions: async_sessionmaker[AsyncSession], orgid: str, op_id: str, poll: float = 0.5, keepalive: float = 15.0
) -> AsyncIterator[Progress]:
    """Progress of an operation until it ends; an unchanged Progress every `keepalive` seconds."""
    cursors: dict[str, LogCursor] = {}
    last: tuple[Any, ...] = ()
    quiet_since = asyncio.get_running_loop().time()
    while True:
        progress = await _look(sessions, orgid, op_id, cursors)
        signature = (progress.state, progress.current_step, [(s["state"], s["attempts"]) for s in progress.steps])
        now_t = asyncio.get_running_loop().time()
        if progress.lines or signature != last or progress.finished or now_t - quiet_since >= keepalive:
            last, quiet_since = signature, now_t
            yield progress
        if progress.finished:
            return
        await asyncio.sleep(poll)


async def _look(
    sessions: async_sessionmaker[AsyncSession], orgid: str, op_id: str, cursors: dict[str, LogCursor]
) -> Progress:
    async with sessions() as session:
        # The operation first: once it reads as ended, every step's output was flushed before it ended.
        op = await session.scalar(select(Operation).where(Operation.id == op_id, Operation.orgid == orgid))
        if op is None:
            raise NotFound(f"操作不存在: {op_id}")
        steps = await _steps(session, op_id)
    progress = Progress(op.state, op.current_step, op.last_error, [step_view(s) for s in steps])
    for step in steps:
        text, dropped = cursors.setdefault(step.id, LogCursor()).advance(step.output, step.output_size)
        progress.lines += labelled_lines(step_label(step.name, step.node), text, dropped)
    return progress


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def operation_summary(op: Operation) -> dict[str, Any]:
    return {
        "id": op.id, "kind": op.kind, "backend": op.backend, "state": op.state, "cluster_id": op.cluster_id,
        "device_ids": list(op.device_ids), "params": dict(op.params), "requested_by": op.requested_by,
        "current_step": op.current_step, "attempt": op.attempt, "timeout_seconds": op.timeout_seconds,
        "cancel_requested": op.cancel_requested, "created_at": _iso(op.created_at), "started_at": _iso(op.started_at),
        "finished_at": _iso(op.finished_at), "deadline_at": _iso(op.deadline_at), "last_error": op.last_error,
        "claimed_by": op.claimed_by, "heartbeat_at": _iso(op.heartbeat_at),
    }  # fmt: skip


def step_view(step: OperationStep) -> dict[str, Any]:
    duration = (step.finished_at - step.started_at).total_seconds() if step.started_at and step.finished_at else None
    return {
        "ordinal": step.ordinal, "name": step.name, "node": step.node, "state": step.state,
        "attempts": step.attempts, "started_at": _iso(step.started_at), "finished_at": _iso(step.finished_at),
        "duration_seconds": duration, "timeout_seconds": step.timeout_seconds, "error": step.error,
        "result": dict(step.result or {}),
    }  # fmt: skip


async def operation_detail(session: AsyncSession, op: Operation) -> dict[str, Any]:
    steps = await _steps(session, op.id)
    history = await session.scalars(
        select(OperationHistory).where(OperationHistory.operation_id == op.id).order_by(OperationHistory.id)
    )
    done = sum(1 for s in steps if s.state in STEP_DONE)
    return {
        **operation_summary(op),
        "progress": {"done": done, "total": len(steps)},
        "steps": [step_view(s) for s in steps],
        "device_names": await _device_names(session, op),
        "history": [
            {"at": _iso(h.at), "from_state": h.from_state, "to_state": h.to_state, "reason": h.reason, "actor": h.actor}
            for h in history
        ],
    }


async def _device_names(session: AsyncSession, op: Operation) -> dict[str, str]:
    """`name (ip)` of the operation's devices by id: steps name their machine by id. A device deleted since is
    left out (its id is all there is)."""
    if not op.device_ids:
        return {}
    rows = await session.execute(
        select(Device.id, Device.name, Device.ip).where(Device.orgid == op.orgid, Device.id.in_(op.device_ids))
    )
    return {row.id: f"{row.name} ({row.ip})" for row in rows}
