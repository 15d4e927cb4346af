"""Workers: claims are exclusive, crashes are recovered, shutdowns hand over; output is redacted and bounded."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import Counter

from sqlalchemy import update

from kboss.db.models_ops import Operation, OperationStep, now
from kboss.operations import service as operations
from kboss.operations.runner import plan_steps
from kboss.operations.states import transition
from kboss.operations.steps import OpEnv, OperationInfo, Registry, StepContext, StepDef, StepFailed, StepOutcome
from kboss.operations.worker import OperationWorker
from kboss.sites.simulated.machines import Effect
from tests.operations.kit import DEVICE_PASSWORD, FAST, SCALE, Lab, lab_on
from tests.operations.played import BACKEND, PlayedSite


async def _start_unbound(lab: Lab, count: int) -> list[str]:
    """Operations without a cluster (so without a lock): many of them may be claimable at once."""
    ids = []
    async with lab.ctx() as ctx:
        for i in range(count):
            device = lab.devices[i % 3]
            ids.append((await operations.start_operation(ctx, "join_worker", None, [device], backend=BACKEND)).id)
    return ids


async def test_two_workers_never_run_one_operation_twice(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab:
        ids = await _start_unbound(lab, 6)
        first, second = lab.worker(site, "wa"), lab.worker(site, "wb")
        await asyncio.gather(first.run_until_idle(30), second.run_until_idle(30))
        for op_id in ids:
            assert (await lab.op(op_id)).state == "succeeded"
            assert (await lab.history(op_id)).count(("pending", "running")) == 1
        runs = Counter((e.operation_id, e.step, e.node) for e in site.effects.all())
        assert len(runs) == 6 * 6 and set(runs.values()) == {1}


async def test_a_claim_has_exactly_one_winner(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab:
        ids = await _start_unbound(lab, 6)
        workers = [lab.worker(site, f"w{i}") for i in range(3)]
        claims = await asyncio.gather(*(w.claim() for w in workers for _ in range(3)))
        won = [c for c in claims if c]
        assert sorted(won) == sorted(ids)  # each operation claimed exactly once, by one of the racers
        for op_id in ids:
            assert (await lab.op(op_id)).claimed_by in {"w0", "w1", "w2"}


async def _crashed_midway(lab: Lab, site: PlayedSite) -> str:
    """A join whose worker died during `join_command` after acting: three steps done, one left running."""
    op_id = (await _start_unbound(lab, 1))[0]
    kind = site.registry().get(BACKEND, "join_worker")
    assert kind
    async with lab.sessions() as session:
        op = await session.get_one(Operation, op_id)
        session.add_all(plan_steps(kind, OperationInfo.of(op)))
        await session.execute(update(Operation).where(Operation.id == op_id).values(claimed_by="dead"))
        await transition(session, op, "running", "claimed", "dead", claimed_by="dead")
        old = now() - dt.timedelta(hours=1)
        await session.execute(update(Operation).where(Operation.id == op_id).values(heartbeat_at=old))
        for ordinal, state in enumerate(["succeeded", "succeeded", "succeeded", "running"]):
            await session.execute(
                update(OperationStep)
                .where(OperationStep.operation_id == op_id, OperationStep.ordinal == ordinal)
                .values(state=state, attempts=1, started_at=old, finished_at=old if state != "running" else None)
            )
        await session.commit()
    for step in ("preflight", "container_runtime", "kubernetes_packages", "join_command"):
        site.effects.record(Effect(op_id, step, "" if step == "join_command" else op.device_ids[0], op_id, 1))
    return op_id


async def test_a_crashed_worker_is_resumed_from_its_unfinished_step(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab:
        op_id = await _crashed_midway(lab, site)
        async with lab.worker(site, "rescuer"):
            await lab.wait_state(op_id, "succeeded")
        steps = {s.name: s for s in await lab.steps(op_id)}
        assert [steps[n].attempts for n in ("preflight", "container_runtime", "kubernetes_packages")] == [1, 1, 1]
        assert steps["join_command"].state == "skipped" and steps["join_command"].attempts == 2
        assert set(Counter(e.key for e in site.effects.all()).values()) == {1}
        async with lab.ctx() as ctx:
            detail = await operations.operation_detail(ctx.session, await operations.get_operation(ctx, op_id))
        reasons = " ".join(h["reason"] for h in detail["history"])
        assert "dead" in reasons and "rescuer 接手" in reasons


async def test_a_kind_that_must_not_resume_is_failed_with_a_reason(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab:
        op_id = await _crashed_midway(lab, site)
        worker = lab.worker(site, "rescuer", registry=site.registry(no_resume=frozenset({"join_worker"})))
        report = await worker.recover()
        assert report.failed == [op_id]
        op = await lab.op(op_id)
        assert op.state == "failed" and "dead" in op.last_error and "不自动恢复" in op.last_error


async def test_a_stopping_worker_hands_its_operation_over(db_url: str) -> None:
    site = PlayedSite(SCALE)
    site.hang_after("kubernetes_packages")
    async with lab_on(db_url) as lab:
        op_id = await lab.start("create_cluster", [lab.devices[0]])
        first = lab.worker(site, "leaving")
        await first.start()
        await lab.wait_step(op_id, "kubernetes_packages")
        await lab.wait_until(lambda: _has_effect(site, "kubernetes_packages"))
        await first.stop()
        op = await lab.op(op_id)
        assert op.state == "running" and op.claimed_by is None
        async with lab.worker(site, "next"):
            await lab.wait_state(op_id, "succeeded")
        assert set(Counter(e.key for e in site.effects.all()).values()) == {1}


async def _has_effect(site: PlayedSite, step: str) -> bool:
    return site.count(step) > 0


async def _leaky(ctx: StepContext) -> StepOutcome:
    device = await ctx.device()
    ctx.log(f"ssh {device.user}@{device.ip} with {device.password}")
    ctx.log("kubeadm join --token=abcdef.0123456789abcdef")
    for i in range(400):
        ctx.log(f"line {i:04d} " + "x" * 40)
    raise StepFailed(f"could not log in with {device.password}")


async def test_output_is_redacted_and_bounded(db_url: str) -> None:
    registry = Registry()
    registry.register("join_worker", [StepDef("leaky", _leaky, 10, per_node=True)], backend=BACKEND)
    config = dataclasses.replace(FAST, log_tail_chars=4096)
    async with lab_on(db_url) as lab:
        op_id = (await _start_unbound(lab, 1))[0]
        worker = OperationWorker(lab.sessions, "w", registry, OpEnv(lab.box), config)
        await worker.run_until_idle(20)
        op = await lab.op(op_id)
        (step,) = await lab.steps(op_id)
        assert op.state == "failed" and DEVICE_PASSWORD not in op.last_error + step.error
        assert "******" in step.error
        assert len(step.output) <= 4096 and step.output_size > 4096 + 400 * 40
        assert step.output.splitlines()[-2].endswith("line 0399 " + "x" * 40)
        async with lab.ctx() as ctx:
            text = await operations.read_log(ctx, op_id)
        assert DEVICE_PASSWORD not in text and "abcdef.0123456789abcdef" not in text
        assert "已省略" in text.splitlines()[0]


async def test_follow_sees_every_line_as_it_is_written(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab, lab.worker(site):
        op_id = await lab.start("join_worker", lab.devices[1:])
        seen: list[str] = []
        states: list[str] = []
        async for progress in operations.follow(lab.sessions, lab.admin.orgid, op_id, poll=0.01):
            seen += progress.lines
            states.append(progress.state)
        assert states[-1] == "succeeded" and "running" in states
        async with lab.ctx() as ctx:
            # Parallel nodes interleave differently live; every line arrives, once.
            assert Counter(seen) == Counter((await operations.read_log(ctx, op_id)).splitlines())
