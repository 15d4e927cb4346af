"""An instance's state follows its pods, and removing a worker never strands a paid instance silently: on a
simulated center whose only GPU machine (sim-01-gpu) is a worker under a control plane without GPUs (sim-02)."""

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
    DELETE_WORKER,
    NEW_WORKER,
    assert_idle,
    assert_member,
    simulated_cluster,
)
from tests.api.test_cluster_ops_kit import device as device_row
from tests.api.test_instances import COMPONENTS, GET, NEW, instance_params
from tests.api.test_node_drain import ended
from tests.support.api import Api, User

CPCC = "/dev/cpcc"
PODS = f"{CPCC}/cpcpod/get_cpcpod.dspy"
GPU_NODE, CPU_NODE = "sim-01-gpu", "sim-02"
GPU_MODEL = "RTX4090-24G"
LINES = [*(c for c in COMPONENTS if c["type"] != "gpu"), {**COMPONENTS[-1], "model": GPU_MODEL}]


@dataclass
class Site:
    api: Api
    admin: User
    site: SimulatedMachines
    cpcid: str
    cid: str
    gpu_worker: str  # device id of sim-01-gpu
    spare: str  # device id of sim-03, not in the cluster

    @property
    def where(self) -> dict[str, str]:
        return {"cpcid": self.cpcid, "clusterid": self.cid}

    async def instance(self, name: str, port: int, gpus: int = 0) -> dict[str, Any]:
        extra = {"source_gpu": str(gpus), "gpu_model": GPU_MODEL if gpus else ""}
        params = instance_params(self.cid, source_name=name, source_outsideport=str(port), **extra)
        created: dict[str, Any] = await self.admin.ok(NEW, **{**params, "source_nodeselector": ""})
        return created

    async def rows(self) -> dict[str, dict[str, Any]]:
        listed = await self.admin.ok(GET, "GET", **self.where)
        return {row["source_name"]: row for row in listed["rows"]}

    async def pod_nodes(self) -> dict[str, str]:
        rows = (await self.admin.ok(PODS, "GET", **self.where))["rows"]
        return {row["pod_name"]: row["pod_node"] for row in rows}

    async def schedule(self, node: str, state: str) -> None:
        path = f"/api/v1/clusters/{self.cid}/nodes/{node}/schedule"
        response = await self.api.http.post(path, json={"state": state}, headers=self.admin.headers)
        assert response.status_code == 200, response.text

    async def remove(self, force: bool = False) -> httpx.Response:
        path = f"/api/v1/clusters/{self.cid}/workers/{self.gpu_worker}"
        return await self.api.http.delete(path, params={"force": str(force).lower()}, headers=self.admin.headers)


@pytest.fixture
async def lab(db_url: str, data_dir: Path) -> AsyncIterator[Site]:
    async with simulated_cluster(db_url, data_dir, 1, 0, LINES) as made:
        gpu, _, spare, *_ = made.devices
        yield Site(made.api, made.admin, made.machines, made.center_id, made.cluster_id, gpu, spare)


def assert_runs(row: dict[str, Any]) -> None:
    assert (row["state"], row["health"], row["state_text"], row["health_reason"]) == ("ready", "running", "就绪", "")


async def test_removing_the_only_gpu_worker_under_a_gpu_instance_is_refused_naming_it(lab: Site) -> None:
    trainer = await lab.instance("trainer", 30071, gpus=1)
    assert (await lab.pod_nodes())[f"{trainer['podcd_name']}-0"] == GPU_NODE
    refused = await lab.remove()
    assert refused.status_code == 409, refused.text
    detail = refused.json()["detail"]
    assert f"节点 {GPU_NODE} 上的资源实例无法调度到其他节点" in detail and f"trainer ({trainer['id']})" in detail
    assert "0/1 nodes are available: 1 node(s) didn't have the requested GPU model" in detail and "force=1" in detail
    compat = await lab.admin.refused(DELETE_WORKER, **lab.where, worker_nodeid=lab.gpu_worker)
    assert f"trainer ({trainer['id']})" in compat
    assert_member(await device_row(lab.api, lab.gpu_worker), lab.cid, "worker")  # nothing started
    ops = await lab.api.http.get("/api/v1/operations", params={"kind": "remove_worker"}, headers=lab.admin.headers)
    assert ops.json()["total"] == 0
    assert_runs((await lab.rows())["trainer"])


async def test_a_removal_goes_ahead_when_every_instance_on_the_worker_fits_elsewhere(lab: Site) -> None:
    await lab.schedule(CPU_NODE, "cordon")
    web = await lab.instance("web", 30072)  # CPU only: placed on the GPU worker, while sim-02 is closed
    await lab.schedule(CPU_NODE, "uncordon")
    assert (await lab.pod_nodes())[f"{web['podcd_name']}-0"] == GPU_NODE
    accepted = await lab.remove()
    assert accepted.status_code == 202, accepted.text
    done = await ended(lab.admin, accepted.json()["id"])
    assert done["state"] == "succeeded", done["last_error"]
    assert_idle(await device_row(lab.api, lab.gpu_worker))
    assert (await lab.pod_nodes())[f"{web['podcd_name']}-0"] == CPU_NODE
    assert_runs((await lab.rows())["web"])


async def test_a_forced_removal_marks_the_stranded_instance_degraded_on_every_read(lab: Site) -> None:
    trainer = await lab.instance("trainer", 30071, gpus=1)
    await lab.schedule(CPU_NODE, "cordon")
    await lab.instance("web", 30072)
    await lab.schedule(CPU_NODE, "uncordon")
    forced = await lab.remove(force=True)
    assert forced.status_code == 202, forced.text
    done = await ended(lab.admin, forced.json()["id"])
    assert done["state"] == "succeeded", done["last_error"]
    drain = next(s for s in done["steps"] if s["name"] == "drain")
    assert drain["state"] == "succeeded"
    rows = await lab.rows()
    degraded = rows["trainer"]
    assert (degraded["state"], degraded["health"], degraded["state_text"]) == ("ready", "degraded", "降级")
    assert f"工作节点 {GPU_NODE} 已被强制移除" in degraded["health_reason"]
    assert_runs(rows["web"])  # it moved to sim-02
    native = await lab.api.http.get(f"/api/v1/instances/{trainer['id']}", headers=lab.admin.headers)
    assert native.json()["health"] == "degraded" and native.json()["state_text"] == "降级"
    assert (await lab.pod_nodes())[f"{trainer['podcd_name']}-0"] == "无"  # Pending: no GPU left

    # The GPU machine joins again (cordoned, as the drain left it) and is opened: the pod runs, the instance is 就绪.
    await lab.admin.ok(NEW_WORKER, **lab.where, worker_nodeid=lab.gpu_worker)
    await lab.schedule(GPU_NODE, "uncordon")
    assert_runs((await lab.rows())["trainer"])


async def test_an_instance_whose_pods_wait_reads_pending_not_ready(lab: Site) -> None:
    await lab.instance("trainer", 30071, gpus=1)
    drained = await lab.api.http.post(f"/api/v1/clusters/{lab.cid}/nodes/{GPU_NODE}/drain", headers=lab.admin.headers)
    assert (await ended(lab.admin, drained.json()["id"]))["state"] == "succeeded"
    waiting = (await lab.rows())["trainer"]
    assert (waiting["state"], waiting["health"], waiting["state_text"]) == ("ready", "pending", "等待调度")
    assert "1/1 个 Pod 未运行" in waiting["health_reason"] and "Pending" in waiting["health_reason"]
    await lab.schedule(GPU_NODE, "uncordon")
    assert_runs((await lab.rows())["trainer"])


async def test_the_removal_checks_again_just_before_it_drains(lab: Site) -> None:
    gate = lab.site.pause("probe")  # find_node: the step before the drain
    accepted = await lab.remove()  # no instance yet: accepted
    assert accepted.status_code == 202, accepted.text
    op_id = accepted.json()["id"]
    async with asyncio.timeout(30):
        while not lab.site.paused("probe"):  # noqa: ASYNC110 - the site is what changes
            await asyncio.sleep(0.02)
    trainer = await lab.instance("trainer", 30071, gpus=1)  # lands on the worker meanwhile
    gate.set()
    failed = await ended(lab.admin, op_id)
    assert failed["state"] == "failed" and failed["current_step"] == "drain"
    assert f"trainer ({trainer['id']})" in failed["last_error"]
    assert_member(await device_row(lab.api, lab.gpu_worker), lab.cid, "worker")
    assert_runs((await lab.rows())["trainer"])
