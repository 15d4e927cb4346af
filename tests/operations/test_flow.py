"""Operations run by workers over the simulated site: order, logs, timeouts, retry, cancel, locks."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from collections import Counter

import pytest

from kboss.db.models_ops import OperationStep, now
from kboss.errors import Forbidden, InvalidParameter, NotFound
from kboss.operations import service as operations
from kboss.operations.states import OperationConflict
from kboss.operations.sweeper import sweep
from tests.operations.kit import SCALE, lab_on
from tests.operations.played import PlayedSite


def assert_each_effect_once(site: PlayedSite) -> None:
    counts = Counter(e.key for e in site.effects.all())
    assert counts and set(counts.values()) == {1}, counts


def assert_in_order(steps: list[OperationStep]) -> None:
    """Every step started after every row of the previous step finished."""
    by_ordinal: dict[int, list[OperationStep]] = {}
    for step in steps:
        by_ordinal.setdefault(step.ordinal, []).append(step)
    ordinals = sorted(by_ordinal)
    for earlier, later in itertools.pairwise(ordinals):
        ended = max(s.finished_at for s in by_ordinal[earlier] if s.finished_at)
        assert all(s.started_at and s.started_at >= ended for s in by_ordinal[later])


async def test_create_cluster_then_join_two_workers(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab, lab.worker(site):
        master, w1, w2 = lab.devices
        create = await lab.start("create_cluster", [master])
        assert (await lab.wait_state(create, "succeeded")).last_error == ""
        gate = site.pause("kubeadm_join", w2)
        join = await lab.start("join_worker", [w1, w2])
        await lab.wait_step(join, "kubeadm_join")

        async def paused_line_stored() -> bool:
            async with lab.ctx(lab.member) as ctx:  # readable live, by any member of the org
                return "kubeadm_join: paused" in await operations.read_log(ctx, join)

        await lab.wait_until(paused_line_stored)
        async with lab.ctx(lab.member) as ctx:
            live = await operations.read_log(ctx, join)
            assert f"container_runtime@{w1} |" in live and f"kubeadm_join@{w2} |" in live
            assert "wait_node_ready" not in live
            running = await operations.get_operation(ctx, join)
            assert running.state == "running" and running.current_step == "kubeadm_join"
        gate.set()
        assert (await lab.wait_state(join, "succeeded")).finished_at is not None

        steps = await lab.steps(join)
        assert {(s.name, s.node) for s in steps[:2]} == {("preflight", w1), ("preflight", w2)}
        assert ("join_command", "") in [(s.name, s.node) for s in steps]
        assert {s.state for s in steps} == {"succeeded"} and all(s.attempts == 1 for s in steps)
        assert_in_order(steps)
        assert_in_order(await lab.steps(create))
        assert_each_effect_once(site)
        assert site.count("kubeadm_init") == 1 and site.count("kubeadm_join", w2) == 1
        async with lab.ctx() as ctx:
            after = await operations.read_log(ctx, join)
            detail = await operations.operation_detail(ctx.session, await operations.get_operation(ctx, join))
        assert after.startswith(live.splitlines()[0]) and f"wait_node_ready@{w2} | " in after
        assert detail["progress"] == {"done": len(steps), "total": len(steps)}
        assert [(h["from_state"], h["to_state"]) for h in detail["history"]] == [
            ("", "pending"), ("pending", "running"), ("running", "succeeded"),
        ]  # fmt: skip


async def test_step_timeout_fails_the_operation_and_frees_the_cluster(db_url: str) -> None:
    site = PlayedSite(SCALE, timeouts={"kubeadm_init": 0.3})
    site.hang("kubeadm_init")
    async with lab_on(db_url) as lab, lab.worker(site):
        op_id = await lab.start("create_cluster", [lab.devices[0]])
        op = await lab.wait_state(op_id, "failed")
        step = next(s for s in await lab.steps(op_id) if s.name == "kubeadm_init")
        assert step.state == "failed" and "超时" in step.error
        assert "kubeadm_init" in op.last_error and "超时" in op.last_error
        assert [s.state for s in await lab.steps(op_id)][-1] == "pending"  # later steps never started
        assert await lab.history(op_id) == [("", "pending"), ("pending", "running"), ("running", "failed")]
        # The lock went with the end: the cluster takes a new operation at once (and the worker, woken by it,
        # runs it: let it end before the worker stops, rather than interrupt it mid-query).
        removal = await lab.start("remove_cluster", [])
        assert (await lab.wait_state(removal, "succeeded")).last_error == ""


async def test_deadline_is_enforced_by_the_worker_and_by_the_sweeper(db_url: str) -> None:
    site = PlayedSite(SCALE, timeouts={"container_runtime": 60})
    site.hang("container_runtime")
    async with lab_on(db_url) as lab:
        async with lab.worker(site):
            watched = await lab.start("create_cluster", [lab.devices[0]], limit=1)
            op = await lab.wait_state(watched, "timed_out", limit=5)
        assert "截止时间" in op.last_error
        assert [s.state for s in await lab.steps(watched)][:3] == ["succeeded", "failed", "pending"]

        nobody = await lab.start("remove_cluster", [], limit=1)  # no worker runs it
        report = await sweep(lab.sessions, None, "sweeper", stale_seconds=30, grace_seconds=30,
                             at=now() + dt.timedelta(seconds=2))  # fmt: skip
        assert report.timed_out == [nobody]
        assert (await lab.op(nobody)).state == "timed_out"
        await lab.start("remove_cluster", [])  # lock released with the timeout


async def test_retry_reruns_only_what_did_not_succeed(db_url: str) -> None:
    site = PlayedSite(SCALE)
    async with lab_on(db_url) as lab, lab.worker(site):
        _, w1, w2 = lab.devices
        site.fail("kubeadm_join", w2)
        op_id = await lab.start("join_worker", [w1, w2])
        failed = await lab.wait_state(op_id, "failed")
        assert f"kubeadm_join@{w2}" in failed.last_error
        states = {(s.name, s.node): s.state for s in await lab.steps(op_id)}
        # The sibling node finished: "skipped" when a slow machine's stale claim made the step run again and it
        # found its own effect already there (the effect itself is still checked to have happened once, below).
        assert states[("kubeadm_join", w1)] in ("succeeded", "skipped")
        assert states[("kubeadm_join", w2)] == "failed" and states[("wait_node_ready", w1)] == "pending"

        async with lab.ctx() as ctx:
            retried = await operations.retry_operation(ctx, op_id)
        assert retried.state == "pending" and retried.attempt == 2 and retried.last_error == ""
        await lab.wait_state(op_id, "succeeded")
        attempts = {(s.name, s.node): s.attempts for s in await lab.steps(op_id)}
        assert attempts.pop(("kubeadm_join", w2)) == 2 and set(attempts.values()) == {1}
        assert_each_effect_once(site)
        assert [t for _, t in await lab.history(op_id)] == [
            "pending", "running", "failed", "pending", "running", "succeeded",
        ]  # fmt: skip
        async with lab.ctx() as ctx:
            with pytest.raises(OperationConflict, match="succeeded"):
                await operations.retry_operation(ctx, op_id)


async def test_cancel_pending_and_running(db_url: str) -> None:
    site = PlayedSite(SCALE)
    site.hang("kubernetes_packages")
    async with lab_on(db_url) as lab:
        waiting = await lab.start("create_cluster", [lab.devices[0]])
        async with lab.ctx() as ctx:
            assert (await operations.cancel_operation(ctx, waiting)).state == "cancelled"
        running = await lab.start("create_cluster", [lab.devices[0]])
        async with lab.worker(site):
            await lab.wait_step(running, "kubernetes_packages")
            async with lab.ctx() as ctx:
                asked = await operations.cancel_operation(ctx, running)
                assert asked.cancel_requested
                ended = await operations.wait_operation(ctx, running, 5)
        assert ended.state == "cancelled" and "取消" in ended.last_error
        step = next(s for s in await lab.steps(running) if s.name == "kubernetes_packages")
        assert step.state == "failed" and "取消" in step.error
        async with lab.ctx() as ctx:
            with pytest.raises(OperationConflict):
                await operations.cancel_operation(ctx, running)
        await lab.start("remove_cluster", [])


async def test_two_concurrent_starts_on_one_cluster(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        for _ in range(3):
            results = await asyncio.gather(
                lab.start("join_worker", [lab.devices[1]]), lab.start("remove_worker", [lab.devices[1]]),
                return_exceptions=True,
            )  # fmt: skip
            winners = [r for r in results if isinstance(r, str)]
            losers = [r for r in results if isinstance(r, OperationConflict)]
            assert len(winners) == 1 and len(losers) == 1, results
            assert winners[0] in losers[0].message and lab.cluster_id in losers[0].message
            async with lab.ctx() as ctx:
                await operations.cancel_operation(ctx, winners[0])
        async with lab.ctx() as ctx:
            assert len(await operations.list_operations(ctx, cluster_id=lab.cluster_id)) == 3


async def test_start_checks_targets_and_params(db_url: str) -> None:
    async with lab_on(db_url) as lab, lab.ctx() as ctx:
        with pytest.raises(InvalidParameter, match="adminpwd"):
            await operations.start_operation(ctx, "join_worker", lab.cluster_id, [], {"adminpwd": "x"})
        with pytest.raises(NotFound):
            await operations.start_operation(ctx, "join_worker", lab.cluster_id, ["nope"])
        with pytest.raises(InvalidParameter, match="kind"):
            await operations.start_operation(ctx, "reboot", lab.cluster_id, [])
    async with lab.ctx(lab.member) as ctx:
        with pytest.raises(Forbidden):
            await operations.start_operation(ctx, "join_worker", lab.cluster_id, [])
