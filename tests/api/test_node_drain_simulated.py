"""Draining a node of a simulated center (the `drain_node` operation on the simulated backend moves the in-memory
cluster's pods), the cluster lock a drain holds, and the simulated worker removal's drain, which a pod no
controller owns blocks unless the removal is forced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kboss.sites.simulated.machines import SimulatedMachines
from tests.api.test_cluster_ops_kit import (
    assert_idle,
    assert_member,
    simulated_cluster,
)
from tests.api.test_cluster_ops_kit import device as device_row
from tests.api.test_instances import COMPONENTS, DELETE, NEW, instance_params
from tests.api.test_node_drain import ended
from tests.support.api import Api, User

CPCC = "/dev/cpcc"
PODS = f"{CPCC}/cpcpod/get_cpcpod.dspy"
NODES = f"{CPCC}/cpcworker/get_cpcworker.dspy"
OPS = "/api/v1/operations"
WORKER_NODE = "sim-02"


@dataclass
class Sim:
    api: Api
    admin: User
    site: SimulatedMachines
    cpcid: str
    cid: str
    worker: str  # the worker's device id

    @property
    def where(self) -> dict[str, str]:
        return {"cpcid": self.cpcid, "clusterid": self.cid}

    async def pods(self) -> dict[str, str]:
        rows = (await self.admin.ok(PODS, "GET", **self.where))["rows"]
        return {row["pod_name"]: row["pod_node"] for row in rows}

    async def node_status(self, node: str) -> str:
        rows = (await self.admin.ok(NODES, "GET", **self.where))["rows"]
        return str({row["node_name"]: row for row in rows}[node]["node_status"])

    async def drain(self, node: str = WORKER_NODE) -> httpx.Response:
        path = f"/api/v1/clusters/{self.cid}/nodes/{node}/drain"
        return await self.api.http.post(path, headers=self.admin.headers)

    async def remove_worker(self, force: bool = False) -> httpx.Response:
        path = f"/api/v1/clusters/{self.cid}/workers/{self.worker}"
        return await self.api.http.delete(path, params={"force": str(force).lower()}, headers=self.admin.headers)


@pytest.fixture
async def sim(db_url: str, data_dir: Path) -> AsyncIterator[Sim]:
    """A demo center's cluster (sim-01-gpu, worker sim-02) with a simulated worker running the whole test."""
    async with simulated_cluster(db_url, data_dir, 0, 1, COMPONENTS) as made:
        yield Sim(made.api, made.admin, made.machines, made.center_id, made.cluster_id, made.devices[1])


async def _lone_instance(sim: Sim) -> dict[str, Any]:
    """A Standalone instance: its pod no controller owns, on the worker (the only node with the label)."""
    params = instance_params(sim.cid, source_name="lone", source_podengine="Standalone", source_outsideport="30064")
    lone: dict[str, Any] = await sim.admin.ok(NEW, **params)
    assert (await sim.pods())[lone["podcd_name"]] == WORKER_NODE
    return lone


async def _label_worker(sim: Sim) -> None:
    label = f"{CPCC}/cpclabel/setup_cpclabel.dspy"
    await sim.admin.ok(label, **sim.where, worker_node=WORKER_NODE, label="kyy-gpu=false", opt="label")


async def test_a_second_operation_on_the_cluster_is_refused_while_a_drain_runs(sim: Sim) -> None:
    gate = sim.site.pause("drain")
    first = await sim.drain()
    assert first.status_code == 202, first.text
    op_id = first.json()["id"]
    async with asyncio.timeout(30):
        while not sim.site.paused("drain"):  # noqa: ASYNC110 - the site is what changes
            await asyncio.sleep(0.02)
    for refused in (await sim.drain(), await sim.drain("sim-01-gpu"), await sim.remove_worker()):
        assert refused.status_code == 409, refused.text
        body = refused.json()
        assert body["code"] == "operation_conflict" and op_id in body["detail"] and "drain_node" in body["detail"]
    gate.set()
    assert (await ended(sim.admin, op_id))["state"] == "succeeded"
    again = await sim.drain()  # the lock went with the operation
    assert again.status_code == 202, again.text
    assert (await ended(sim.admin, again.json()["id"]))["state"] == "succeeded"


async def test_a_blocked_drain_leaves_the_node_cordoned_and_a_retry_finishes_it_once_the_blocker_is_gone(
    sim: Sim,
) -> None:
    await _label_worker(sim)
    web = await sim.admin.ok(NEW, **instance_params(sim.cid))
    lone = await _lone_instance(sim)
    response = await sim.drain()
    assert response.status_code == 202, response.text
    op_id = response.json()["id"]
    failed = await ended(sim.admin, op_id)
    assert failed["state"] == "failed"
    pod = f"{lone['namespace_name']}/{lone['podcd_name']}"
    assert f"节点 {WORKER_NODE} 未能排空: 1 个 Pod 无法驱逐: {pod} (不受任何控制器管理" in failed["last_error"]
    assert "已驱逐 1 个 Pod" in failed["last_error"]
    assert [(s["name"], s["state"]) for s in failed["steps"]] == [("cordon", "succeeded"), ("evict", "failed")]
    pods = await sim.pods()
    assert pods[lone["podcd_name"]] == WORKER_NODE and pods[f"{web['podcd_name']}-0"] == "无"  # moved: Pending
    assert await sim.node_status(WORKER_NODE) == "已就绪,禁止调度"

    await sim.admin.ok(DELETE, id=lone["id"])
    retried = await sim.api.http.post(f"{OPS}/{op_id}/retry", headers=sim.admin.headers)
    assert retried.status_code == 200, retried.text
    done = await ended(sim.admin, op_id)
    assert done["state"] == "succeeded", done["last_error"]
    assert [(s["name"], s["attempts"]) for s in done["steps"]] == [("cordon", 1), ("evict", 2)]
    assert sim.site.count("cordon") == 1 and sim.site.count("drain") == 2
    assert await sim.node_status(WORKER_NODE) == "已就绪,禁止调度"


async def test_an_unknown_node_of_a_simulated_cluster_is_a_404(sim: Sim) -> None:
    response = await sim.drain("sim-09")
    assert response.status_code == 404 and "没有节点 sim-09" in response.json()["detail"], response.text


async def test_a_removal_is_blocked_by_a_pod_no_controller_owns_unless_forced(sim: Sim) -> None:
    await _label_worker(sim)
    lone = await _lone_instance(sim)
    # Room for it on the control plane too: the removal is accepted, and it is the drain that finds the pod.
    label = f"{CPCC}/cpclabel/setup_cpclabel.dspy"
    await sim.admin.ok(label, **sim.where, worker_node="sim-01-gpu", label="kyy-gpu=false", opt="label")
    blocked = await sim.remove_worker()
    assert blocked.status_code == 202, blocked.text
    failed = await ended(sim.admin, blocked.json()["id"])
    assert failed["state"] == "failed" and failed["current_step"] == "drain"
    assert (
        f"排空节点 {WORKER_NODE} 失败,未删除节点" in failed["last_error"] and lone["podcd_name"] in failed["last_error"]
    )
    assert_member(await device_row(sim.api, sim.worker), sim.cid, "worker")  # nothing was deleted
    assert (await sim.pods())[lone["podcd_name"]] == WORKER_NODE
    assert await sim.node_status(WORKER_NODE) == "已就绪,禁止调度"

    forced = await sim.remove_worker(force=True)
    assert forced.status_code == 202, forced.text
    done = await ended(sim.admin, forced.json()["id"])
    assert done["state"] == "succeeded", done["last_error"]
    drain = next(s for s in done["steps"] if s["name"] == "drain")
    assert drain["result"]["deleted"] == [f"{lone['namespace_name']}/{lone['podcd_name']}"]
    assert_idle(await device_row(sim.api, sim.worker))
    assert lone["podcd_name"] not in await sim.pods()
