"""The worker: claims operations, runs them with a heartbeat, ends them; sweeps and recovers on the side.

Claiming is safe with any number of workers in any number of processes: on PostgreSQL candidates are read
with `FOR UPDATE SKIP LOCKED`, and on both databases the claim itself is a conditional UPDATE
(`... WHERE claimed_by IS NULL`) whose row count says who won. The claim and the pending → running
transition are one transaction, committed before the first step starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.db.cas import compare_and_set
from kboss.db.engine import notifier
from kboss.db.models_ops import Operation, OperationStep, now
from kboss.operations.logs import DEFAULT_TAIL_CHARS
from kboss.operations.runner import (
    CANCEL,
    DEADLINE,
    LOST,
    SHUTDOWN,
    LostClaim,
    OperationRun,
    Outcome,
    RunLimits,
    fence,
    plan_steps,
)
from kboss.operations.states import (
    CLAIMABLE_TOPIC,
    FAILED,
    PENDING,
    RUNNING,
    TIMED_OUT,
    OperationConflict,
    note,
    transition,
)
from kboss.operations.steps import OpEnv, OperationInfo, Registry
from kboss.operations.sweeper import SweepReport, release_claims_of, sweep

log = logging.getLogger("kboss.operations")


@dataclass(frozen=True)
class WorkerConfig:
    concurrency: int = 4
    poll_seconds: float = 1.0
    heartbeat_seconds: float = 5.0
    stale_seconds: float = 30.0
    sweep_seconds: float = 10.0
    log_tail_chars: int = DEFAULT_TAIL_CHARS
    log_flush_seconds: float = 0.5
    node_concurrency: int = 16

    @classmethod
    def from_settings(cls, settings: Any) -> WorkerConfig:
        """Reads `worker_*` settings when the settings class has them, the defaults otherwise."""
        names = {
            "concurrency": "worker_concurrency",
            "poll_seconds": "worker_poll_seconds",
            "heartbeat_seconds": "worker_heartbeat_seconds",
            "stale_seconds": "worker_stale_seconds",
            "sweep_seconds": "worker_sweep_seconds",
            "log_tail_chars": "operation_log_tail_chars",
        }
        defaults = cls()
        return cls(**{field: getattr(settings, name, getattr(defaults, field)) for field, name in names.items()})

    @property
    def limits(self) -> RunLimits:
        return RunLimits(self.log_tail_chars, self.log_flush_seconds, self.node_concurrency)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def worker_from_settings(
    settings: Any, sessions: async_sessionmaker[AsyncSession], registry: Registry, env: OpEnv
) -> OperationWorker:
    """The worker of a `kboss serve` process: id from `worker_id` (stable ids recover at once), config likewise."""
    worker_id = str(getattr(settings, "worker_id", "") or default_worker_id())
    return OperationWorker(sessions, worker_id, registry, env, WorkerConfig.from_settings(settings))


class OperationWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        worker_id: str,
        registry: Registry,
        env: OpEnv,
        config: WorkerConfig | None = None,
    ) -> None:
        self.sessions, self.worker_id, self.registry, self.env = sessions, worker_id, registry, env
        self.config = config or WorkerConfig()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self._runners: dict[str, OperationRun] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._unsubscribe: Callable[[], None] = lambda: None

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        # Any process's new or released operation wakes this worker (`kboss.db.notify`); the poll is the backstop.
        # The callback holds the event, not the worker: a worker referenced from the long-lived notifier would sit in
        # a reference cycle, freed only by the garbage collector, sessions and all, at some later moment.
        wake = self._wake
        self._unsubscribe = notifier(self.sessions).subscribe(CLAIMABLE_TOPIC, lambda _op_id: wake.set())
        await self.recover()
        self._loop_task = asyncio.create_task(self._loop(), name=f"kboss-worker-{self.worker_id}")

    async def stop(self) -> None:
        """Stop claiming; interrupt running operations and release their claims so they resume elsewhere.

        Cooperative rather than by cancelling tasks: a database call cut midway leaves its connection to be
        reset by the pool; here every write in flight completes.
        """
        self._stopping = True
        self._unsubscribe()
        self._unsubscribe = lambda: None
        self._wake.set()
        for runner in list(self._runners.values()):
            runner.interrupt(SHUTDOWN)
        tasks = [t for t in (self._loop_task, *self.tasks.values()) if t]
        await asyncio.gather(*tasks, return_exceptions=True)
        self._loop_task = None

    async def __aenter__(self) -> OperationWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def recover(self) -> SweepReport:
        """At start-up: claims of an earlier life of this worker id are released at once, then a normal sweep."""
        await release_claims_of(self.sessions, self.worker_id, "worker 重新启动", self.worker_id)
        return await self.sweep()

    async def sweep(self) -> SweepReport:
        return await sweep(
            self.sessions, self.registry, self.worker_id,
            stale_seconds=self.config.stale_seconds, grace_seconds=self.config.stale_seconds,
        )  # fmt: skip

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time() + self.config.sweep_seconds
        while not self._stopping:
            self._wake.clear()  # before looking: a note arriving while we look is kept for the wait below
            try:
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self.config.sweep_seconds
                    await self.sweep()
                await self.fill()
            except DBAPIError:
                log.warning("operation worker %s: database error, retrying", self.worker_id, exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)

    async def fill(self) -> int:
        """Claim operations up to the free slots and start them; returns how many were claimed."""
        claimed = 0
        while len(self.tasks) < self.config.concurrency and not self._stopping:
            op_id = await self.claim()
            if op_id is None:
                break
            claimed += 1
            task = asyncio.create_task(self._supervise(op_id), name=f"kboss-op-{op_id}")
            self.tasks[op_id] = task
            task.add_done_callback(functools.partial(self._done, op_id))
        return claimed

    def _done(self, op_id: str, _task: object) -> None:
        self.tasks.pop(op_id, None)
        self._wake.set()  # a free slot: look for more work

    async def run_until_idle(self, limit_seconds: float = 60.0) -> None:
        """Claim and run until nothing is claimable and nothing runs (tests, one-shot CLI use)."""
        async with asyncio.timeout(limit_seconds):
            while await self.fill() or self.tasks:
                if self.tasks:
                    await asyncio.wait(list(self.tasks.values()), return_when=asyncio.FIRST_COMPLETED)

    # -- claiming ----------------------------------------------------------------------------------------

    def _handled(self) -> ColumnElement[bool]:
        pairs = [and_(Operation.backend == b, Operation.kind == k) for b, k in self.registry.handled()]
        return or_(*pairs) if pairs else false()

    async def claim(self) -> str | None:
        """Take one claimable operation (pending, or running and released); None when there is none."""
        async with self.sessions() as session:
            query = (
                select(Operation.id)
                .where(self._handled(), Operation.claimed_by.is_(None), Operation.state.in_((PENDING, RUNNING)))
                .order_by(Operation.created_at, Operation.id)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.limit(1).with_for_update(skip_locked=True)
            else:
                query = query.limit(5)
            # Each round that wins nothing saw others take every candidate; look again while there are any.
            for _ in range(20):
                candidates = (await session.scalars(query)).all()
                for op_id in candidates:
                    if await self._try_claim(session, op_id):
                        return op_id
                await session.commit()
                if not candidates:
                    break
        return None

    async def _try_claim(self, session: AsyncSession, op_id: str) -> bool:
        won = await compare_and_set(
            session,
            update(Operation)
            .where(Operation.id == op_id, Operation.claimed_by.is_(None), Operation.state.in_((PENDING, RUNNING)))
            .values(claimed_by=self.worker_id, heartbeat_at=now())
            .execution_options(synchronize_session=False),
        )
        if not won:
            return False
        op = await session.get_one(Operation, op_id, populate_existing=True)
        if op.state == PENDING:
            if not await session.scalar(select(OperationStep.id).where(OperationStep.operation_id == op_id).limit(1)):
                kind = self.registry.get(op.backend, op.kind)
                assert kind is not None  # claimable operations are filtered on the registry
                session.add_all(plan_steps(kind, OperationInfo.of(op)))
            await transition(session, op, RUNNING, f"worker {self.worker_id} 开始执行", self.worker_id,
                             claimed_by=self.worker_id)  # fmt: skip
        else:
            await note(session, op, f"worker {self.worker_id} 接手,从第一个未完成的步骤继续", self.worker_id)
            await session.commit()
        return True

    # -- running -----------------------------------------------------------------------------------------

    async def _supervise(self, op_id: str) -> None:
        try:
            await self._run_claimed(op_id)
        except Exception:  # the claim's heartbeat stops, so the sweeper hands the operation on; say why here
            log.exception("operation %s: worker %s failed to run it", op_id, self.worker_id)
            await self._release(op_id, "worker 内部错误,操作将继续")

    async def _run_claimed(self, op_id: str) -> None:
        async with self.sessions() as session:
            op = await session.get_one(Operation, op_id)
            info, deadline = OperationInfo.of(op), op.deadline_at
        kind = self.registry.get(info.backend, info.kind)
        assert kind is not None
        runner = OperationRun(self.sessions, self.worker_id, kind, info, self.env, self.config.limits)
        self._runners[op_id] = runner
        if self._stopping:
            runner.interrupt(SHUTDOWN)
        run = asyncio.create_task(runner.run())
        ended = asyncio.Event()
        beat = asyncio.create_task(self._heartbeat(op_id, runner, ended))
        try:
            done, _ = await asyncio.wait([run], timeout=max(0.0, (deadline - now()).total_seconds()))
            if not done:
                await self._interrupt(runner, run, DEADLINE)
        except asyncio.CancelledError:
            await self._interrupt(runner, run, SHUTDOWN)
            await asyncio.shield(self._release(op_id, "worker 停止,操作将由其他 worker 继续"))
            raise
        finally:
            ended.set()
            await asyncio.gather(beat, return_exceptions=True)
            self._runners.pop(op_id, None)
        await self._conclude(op_id, run, deadline)

    async def _interrupt(self, runner: OperationRun, run: asyncio.Task[Outcome | None], why: str) -> None:
        runner.interrupt(why)
        # Step code that swallows cancellation is abandoned after a grace period; its later writes are fenced.
        await asyncio.wait([run], timeout=self.config.heartbeat_seconds * 2 + 5)

    async def _conclude(self, op_id: str, run: asyncio.Task[Outcome | None], deadline: dt.datetime) -> None:
        if not run.done():
            outcome: Outcome | None = Outcome(TIMED_OUT, f"操作超过截止时间 {deadline.isoformat()},步骤未能中断")
        elif run.cancelled():
            outcome = None
        elif (exc := run.exception()) is not None:
            if _contains(exc, LostClaim):
                log.info("operation %s: claim lost by %s, leaving it", op_id, self.worker_id)
                return
            if _contains(exc, DBAPIError):
                log.warning("operation %s: database error, releasing it to resume", op_id, exc_info=exc)
                await self._release(op_id, f"数据库错误,稍后继续: {type(exc).__name__}")
                return
            log.error("operation %s failed inside the engine", op_id, exc_info=exc)
            outcome = Outcome(FAILED, f"内部错误: {type(exc).__name__}: {exc}")
        else:
            outcome = run.result()
        if outcome is None:
            await self._release(op_id, "执行被中断,操作将继续")
            return
        await self._finish(op_id, outcome)

    async def _finish(self, op_id: str, outcome: Outcome) -> None:
        async with self.sessions() as session:
            op = await session.get_one(Operation, op_id, populate_existing=True)
            if op.state != RUNNING or op.claimed_by != self.worker_id:
                return
            try:
                await transition(session, op, outcome.state, outcome.reason, self.worker_id, claimed_by=self.worker_id)
            except OperationConflict:
                log.info("operation %s changed while %s was ending it", op_id, self.worker_id)

    async def _release(self, op_id: str, reason: str) -> None:
        try:
            await release_claims_of(self.sessions, self.worker_id, reason, self.worker_id, op_id=op_id)
        except DBAPIError:
            log.warning("operation %s: could not release the claim; the sweeper will", op_id, exc_info=True)

    async def _heartbeat(self, op_id: str, runner: OperationRun, ended: asyncio.Event) -> None:
        while not ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), self.config.heartbeat_seconds)
            if ended.is_set():
                return
            try:
                async with self.sessions() as session:
                    cancel = await fence(session, op_id, self.worker_id)
                    await session.commit()
            except LostClaim:
                runner.interrupt(LOST)
                return
            except DBAPIError:
                log.warning("operation %s: heartbeat failed", op_id, exc_info=True)
                continue
            if cancel:
                runner.interrupt(CANCEL)
                return


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    if isinstance(exc, kind):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return any(_contains(inner, kind) for inner in exc.exceptions)
    return False
