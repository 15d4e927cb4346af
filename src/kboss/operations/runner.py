"""Running one claimed operation: its steps in order, the nodes of a per-node step in parallel.

Every write about the operation is fenced: it first re-asserts in the same transaction that this worker
still holds the claim of a running operation, so a worker that lost its claim (paused, cut off, swept as
stale) can never overwrite what its successor does. Only the step code runs in a task that can be
cancelled (step timeout, cancel request, deadline, shutdown); the engine's own writes are never cut midway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.cas import compare_and_set
from kboss.db.models_ops import Operation, OperationStep, now
from kboss.errors import KbossError
from kboss.operations.logs import DEFAULT_TAIL_CHARS, StepLog, step_label
from kboss.operations.states import (
    CANCELLED,
    FAILED,
    RUNNING,
    STEP_DONE,
    STEP_FAILED,
    STEP_RUNNING,
    STEP_SKIPPED,
    STEP_SUCCEEDED,
    SUCCEEDED,
    TIMED_OUT,
)
from kboss.operations.steps import KindDef, OpEnv, OperationInfo, StepContext, StepDef, StepOutcome
from kboss.redaction import Redactor

log = logging.getLogger("kboss.operations")

# Why a run was interrupted; decides what is written about the interrupted step.
CANCEL: Final = "cancel"
DEADLINE: Final = "deadline"
SHUTDOWN: Final = "shutdown"
LOST: Final = "lost"


class LostClaim(Exception):
    """This worker no longer holds the operation (released as stale, or ended by someone else)."""


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str


@dataclass(frozen=True)
class RunLimits:
    log_tail_chars: int = DEFAULT_TAIL_CHARS
    log_flush_seconds: float = 0.5
    node_concurrency: int = 16


class _StepTimedOut(Exception):
    pass


async def fence(session: AsyncSession, op_id: str, worker_id: str) -> bool:
    """Heartbeat-and-check inside the caller's transaction; returns whether a cancel was requested."""
    still_ours = await compare_and_set(
        session,
        update(Operation)
        .where(Operation.id == op_id, Operation.claimed_by == worker_id, Operation.state == RUNNING)
        .values(heartbeat_at=now())
        .execution_options(synchronize_session=False),
    )
    if not still_ours:
        raise LostClaim(op_id)
    return bool(await session.scalar(select(Operation.cancel_requested).where(Operation.id == op_id)))


def plan_steps(kind: KindDef, info: OperationInfo) -> list[OperationStep]:
    """The step rows of an operation: one per step, or one per node for per-node steps."""
    return [
        OperationStep(
            operation_id=info.id,
            ordinal=ordinal,
            name=step.name,
            node=node,
            timeout_seconds=math.ceil(step.timeout_seconds),
            state="pending",
            attempts=0,
            output="",
            output_size=0,
            result={},
            error="",
        )
        for ordinal, step in enumerate(kind.steps)
        for node in step.targets(info)
    ]


@dataclass
class _Row:
    id: str
    ordinal: int
    name: str
    node: str
    state: str
    output: str
    output_size: int


class OperationRun:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        worker_id: str,
        kind: KindDef,
        info: OperationInfo,
        env: OpEnv,
        limits: RunLimits,
    ) -> None:
        self.sessions, self.worker_id, self.kind, self.info, self.env = sessions, worker_id, kind, info, env
        self.limits = limits
        self.interrupted: str | None = None
        self._active: set[asyncio.Task[StepOutcome]] = set()
        self._nodes = asyncio.Semaphore(limits.node_concurrency)

    def interrupt(self, why: str) -> None:
        """Stop the step code now (its engine bookkeeping still completes); the run then ends."""
        if self.interrupted is None:
            self.interrupted = why
        for task in self._active:
            task.cancel()

    async def run(self) -> Outcome | None:
        """Run every step not yet done. None: interrupted without an end state (shutdown or lost claim)."""
        rows = await self._load_rows()
        for ordinal, group in groupby(rows, key=lambda r: r.ordinal):
            todo = [r for r in group if r.state not in STEP_DONE]
            if not todo:
                continue
            if ordinal >= len(self.kind.steps) or self.kind.steps[ordinal].name != todo[0].name:
                return Outcome(FAILED, f"步骤定义已变化 (第 {ordinal} 步应为 {todo[0].name}),无法继续此操作")
            step = self.kind.steps[ordinal]
            if self.interrupted or await self._begin(step.name):
                return self._interrupted_outcome(CANCEL)
            errors = await self._run_nodes(step, todo)
            if self.interrupted:
                return self._interrupted_outcome()
            if errors:
                return Outcome(FAILED, "; ".join(errors))
        return Outcome(SUCCEEDED, "全部步骤已完成")

    def _interrupted_outcome(self, default: str | None = None) -> Outcome | None:
        why = self.interrupted or default
        if why == CANCEL:
            return Outcome(CANCELLED, "已按请求取消")
        if why == DEADLINE:
            return Outcome(TIMED_OUT, "操作超过截止时间,已中断")
        return None

    async def _load_rows(self) -> list[_Row]:
        async with self.sessions() as session:
            result = await session.execute(
                select(
                    OperationStep.id,
                    OperationStep.ordinal,
                    OperationStep.name,
                    OperationStep.node,
                    OperationStep.state,
                    OperationStep.output,
                    OperationStep.output_size,
                )
                .where(OperationStep.operation_id == self.info.id)
                .order_by(OperationStep.ordinal, OperationStep.node)
            )
            return [_Row(*row) for row in result.all()]

    async def _begin(self, name: str) -> bool:
        async with self.sessions() as session:
            cancel = await fence(session, self.info.id, self.worker_id)
            await session.execute(update(Operation).where(Operation.id == self.info.id).values(current_step=name))
            await session.commit()
        return cancel

    async def _run_nodes(self, step: StepDef, rows: Sequence[_Row]) -> list[str]:
        """Run the rows of one step concurrently; siblings of a failed node finish (so retry skips them)."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._run_row(step, row)) for row in rows]
        return [error for task in tasks if (error := task.result())]

    async def _run_row(self, step: StepDef, row: _Row) -> str | None:
        async with self._nodes:
            for attempt in range(step.retries + 1):
                if attempt:
                    await asyncio.sleep(step.retry_delay)
                error = await self._attempt(step, row)
                if error is None or self.interrupted:
                    return error
            return error

    async def _attempt(self, step: StepDef, row: _Row) -> str | None:
        attempts = await self._mark_running(row)
        mask = Redactor(shapes=True)
        out = StepLog(self.sessions, row.id, row.output, row.output_size, mask,
                      self.limits.log_tail_chars, self.limits.log_flush_seconds)  # fmt: skip
        async with out:
            out.write(f"--- {step_label(row.name, row.node)}: 第 {attempts} 次执行 (worker {self.worker_id}) ---")
            ctx = StepContext(self.info, row.name, row.node or None, attempts, self.sessions, self.env, out, mask)
            outcome, error = await self._call(step, ctx)
            if error:
                out.write(f"失败: {error}")
        row.output, row.output_size = out.text, out.size
        if self.interrupted in (SHUTDOWN, LOST):
            return error  # the step resumes elsewhere; its row is released by the claim's release
        await self._mark_done(row, outcome, mask(error) if error else None)
        return f"{step_label(row.name, row.node)}: {mask(error)}" if error else None

    async def _call(self, step: StepDef, ctx: StepContext) -> tuple[StepOutcome | None, str | None]:
        task = asyncio.create_task(_with_timeout(step, ctx))
        self._active.add(task)
        if self.interrupted:  # interrupted while this attempt was being recorded: do not let it run
            task.cancel()
        try:
            await asyncio.wait([task])
        finally:
            self._active.discard(task)
        if task.cancelled():
            return None, {CANCEL: "已取消", DEADLINE: "操作超时,已中断"}.get(self.interrupted or "", "已中断")
        exc = task.exception()
        if exc is None:
            return _checked(task.result())
        if isinstance(exc, _StepTimedOut):
            return None, f"超时 (超过 {step.timeout_seconds:g} 秒)"
        if isinstance(exc, KbossError):
            return None, exc.message
        log.error("step %s of operation %s raised", step.name, self.info.id, exc_info=exc)
        return None, f"{type(exc).__name__}: {exc}"

    async def _mark_running(self, row: _Row) -> int:
        async with self.sessions() as session:
            await fence(session, self.info.id, self.worker_id)
            attempts = (await session.scalar(select(OperationStep.attempts).where(OperationStep.id == row.id)) or 0) + 1
            await session.execute(
                update(OperationStep)
                .where(OperationStep.id == row.id)
                .values(state=STEP_RUNNING, attempts=attempts, started_at=now(), finished_at=None, error="")
            )
            await session.commit()
        return attempts

    async def _mark_done(self, row: _Row, outcome: StepOutcome | None, error: str | None) -> None:
        values: dict[str, Any] = {"finished_at": now(), "error": (error or "")[:4000]}
        if error is not None or outcome is None:
            values["state"] = STEP_FAILED
        else:
            values.update(state=STEP_SKIPPED if outcome.skipped else STEP_SUCCEEDED, result=outcome.result)
        async with self.sessions() as session:
            await fence(session, self.info.id, self.worker_id)
            await session.execute(update(OperationStep).where(OperationStep.id == row.id).values(**values))
            await session.commit()


async def _with_timeout(step: StepDef, ctx: StepContext) -> StepOutcome:
    timeout = asyncio.timeout(step.timeout_seconds)
    try:
        async with timeout:
            return await step.run(ctx)
    except TimeoutError:
        # Only our own deadline is a step timeout; a TimeoutError raised by the step's code is its failure.
        if timeout.expired():
            raise _StepTimedOut() from None
        raise


def _checked(outcome: StepOutcome) -> tuple[StepOutcome | None, str | None]:
    if not isinstance(outcome, StepOutcome):
        return None, f"步骤返回了 {type(outcome).__name__},应返回 StepOutcome"
    try:
        json.dumps(outcome.result)
    except (TypeError, ValueError) as exc:
        return None, f"步骤结果不能保存为 JSON: {exc}"
    return outcome, None
