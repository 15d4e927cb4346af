"""The device reservation of create/join operations: who owns it, when it is given back, when it is not."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kboss.clusters.ops import release_abandoned, start_create_cluster, start_join_worker
from kboss.clusters.plan import register_cluster_kinds
from kboss.db.models import Device, DeviceHistory
from kboss.operations.service import retry_operation
from kboss.operations.steps import Registry
from kboss.sites.simulated.machines import SimulatedMachines
from tests.operations.kit import SCALE, Lab, lab_on


def _registry(site: SimulatedMachines) -> Registry:
    return register_cluster_kinds(Registry())


async def _build(lab: Lab, master: str) -> str:
    async with lab.ctx() as ctx:
        started = await start_create_cluster(ctx, {"cpcid": lab.center_id, "ctl_nodeid": master, "cluster_name": "c"})
    assert (await lab.wait_state(started.operation.id, "succeeded", "failed")).state == "succeeded"
    return started.cluster_id


async def _join(lab: Lab, cluster_id: str, device_id: str) -> str:
    async with lab.ctx() as ctx:
        params: dict[str, Any] = {"cpcid": lab.center_id, "clusterid": cluster_id, "worker_nodeid": device_id}
        return (await start_join_worker(ctx, params)).operation.id


async def _device(lab: Lab, device_id: str) -> tuple[int, str | None]:
    async with lab.sessions() as session:
        row = await session.get_one(Device, device_id)
        return row.node_status, row.clusterid


async def test_a_retry_never_takes_back_a_device_a_newer_operation_uses(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        site = SimulatedMachines(SCALE)
        async with lab.worker(site, registry=_registry(site)):
            first_master, second_master, worker = lab.devices
            c1, c2 = await _build(lab, first_master), await _build(lab, second_master)
            site.fail("kubeadm_join")
            older = await _join(lab, c1, worker)
            assert (await lab.wait_state(older, "failed")).state == "failed"
            assert await _device(lab, worker) == (0, None)

            newer = await _join(lab, c2, worker)
            assert (await lab.wait_state(newer, "succeeded")).state == "succeeded"
            async with lab.ctx() as ctx:
                await retry_operation(ctx, older)
            retried = await lab.wait_state(older, "failed", "succeeded")
            assert retried.state == "failed" and newer in retried.last_error
            assert await _device(lab, worker) == (1, c2)  # the newer join's member, untouched
            async with lab.sessions() as session:
                assert await release_abandoned(session) == 0
            assert await _device(lab, worker) == (1, c2)


async def test_a_worker_shutdown_mid_step_keeps_the_reservation_and_the_next_worker_resumes(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        site = SimulatedMachines(SCALE)
        master, worker, _ = lab.devices
        async with lab.worker(site, registry=_registry(site)):
            cluster_id = await _build(lab, master)
            site.hang("kubeadm_join")
            op_id = await _join(lab, cluster_id, worker)

            async def hanging() -> bool:  # the machine is in the middle of the join, not before it
                return any("simulated hang" in step.output for step in await lab.steps(op_id))

            await lab.wait_until(hanging)
        # Shutdown interrupted the step (a cancellation, not a failure): the machine stays this join's.
        assert await _device(lab, worker) == (1, cluster_id)
        async with lab.sessions() as session:
            assert await release_abandoned(session) == 0
        async with lab.worker(site, "w2", registry=_registry(site)):
            assert (await lab.wait_state(op_id, "succeeded", "failed")).state == "succeeded"
        assert await _device(lab, worker) == (1, cluster_id)
        assert site.count("kubeadm_join", node=worker) == 1


async def _device_history(lab: Lab, device_id: str) -> list[tuple[int, int]]:
    async with lab.sessions() as session:
        query = select(DeviceHistory).where(DeviceHistory.device_id == device_id).order_by(DeviceHistory.id)
        return [(row.from_state, row.to_state) for row in (await session.scalars(query)).all()]


async def test_each_reservation_and_release_of_a_machine_is_in_its_history(db_url: str) -> None:
    async with lab_on(db_url) as lab:
        site = SimulatedMachines(SCALE)
        master, worker, _ = lab.devices
        async with lab.worker(site, registry=_registry(site)):
            cluster_id = await _build(lab, master)
            site.fail("kubeadm_join")
            failed = await _join(lab, cluster_id, worker)
            assert (await lab.wait_state(failed, "failed")).state == "failed"
            async with lab.ctx() as ctx:
                await retry_operation(ctx, failed)
            assert (await lab.wait_state(failed, "succeeded", "failed")).state == "succeeded"
        assert await _device_history(lab, master) == [(0, 1)]
        # Reserved by the join, freed by its failure, taken again by the retry.
        assert await _device_history(lab, worker) == [(0, 1), (1, 0), (0, 1)]
