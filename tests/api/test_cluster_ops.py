"""Building and dismantling clusters through the compat and native endpoints, on the simulated backend: the
whole flow, the refusals, busy clusters, failures, cancellation, and the device guard under concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from kboss.cli.demo import add_demo_center
from kboss.clusters.plan import register_cluster_kinds
from kboss.clusters.site_access import SiteEnv
from kboss.crypto import is_sealed
from kboss.db.models import Cluster
from kboss.operations.steps import Registry
from kboss.sites.simulated.machines import SimulatedMachines
from tests.api.test_cluster_ops_kit import (
    ADD_WIDGET,
    CPCC,
    DELETE_CLUSTER,
    DELETE_WORKER,
    NEW_CLUSTER,
    NEW_WORKER,
    assert_idle,
    assert_member,
    cluster,
    create_params,
    device,
    operation,
    running_worker,
    set_wait,
    stock_rows,
)
from tests.api.test_compat_catalog import CENTER, assert_fields_like_spec, device_params
from tests.operations.kit import SCALE
from tests.support.api import Api, User, running_api

OPS = "/api/v1/operations"


@pytest.fixture
async def api(db_url: str, data_dir: Path) -> AsyncIterator[Api]:
    async with running_api(db_url, data_dir, worker_enabled=False) as running:
        yield running


@dataclass
class Demo:
    api: Api
    admin: User
    center: str
    devices: list[str]
    site: SimulatedMachines

    async def build(self, master: str, **extra: Any) -> str:
        data = await self.admin.ok(NEW_CLUSTER, **create_params(self.center, master, **extra))
        return str(data["clusterid"])

    async def join(self, cluster_id: str, worker: str) -> dict[str, Any]:
        return await self.admin.call(NEW_WORKER, cpcid=self.center, clusterid=cluster_id, worker_nodeid=worker)

    async def wait_state(self, op_id: str, *states: str) -> str:
        async with asyncio.timeout(15):
            while (state := (await operation(self.api, op_id)).state) not in states:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        return state

    async def wait_step(self, op_id: str, step: str) -> None:
        async with asyncio.timeout(15):
            while (await operation(self.api, op_id)).current_step != step:  # noqa: ASYNC110
                await asyncio.sleep(0.02)


@pytest.fixture
async def demo(api: Api) -> AsyncIterator[Demo]:
    admin = await api.user("alice", "acme")
    state = api.app.state.kboss
    async with state.sessions() as session:
        made = await add_demo_center(session, state.box, "acme")
    site = SimulatedMachines(SCALE)
    async with running_worker(api, register_cluster_kinds(Registry()), SiteEnv(state.box, machines=site)):
        yield Demo(api, admin, made.center_id, made.device_ids, site)


async def test_build_join_remove_and_dismantle_a_simulated_cluster(demo: Demo, api: Api) -> None:
    master, w1, w2, _ = demo.devices
    body = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master))
    assert body["status"] is True, body
    assert body["msg"].startswith("操作成功!\n加入集群凭证: kubeadm join 10.250.0.11:6443 --token ")
    assert_fields_like_spec(NEW_CLUSTER, body["data"])
    assert (body["data"]["id"], body["data"]["node_status"], body["data"]["role"]) == (master, "1", "master")
    cid = body["data"]["clusterid"]
    row = await cluster(api, cid)
    assert row is not None and (row.ready, row.controllerid, row.clustertype, row.name) == (1, master, 0, "朝阳区集群")
    assert is_sealed(row.clusterjoin) and is_sealed(row.kubeconfig)
    assert api.app.state.kboss.box.open(row.clusterjoin) in body["msg"]
    assert_member(await device(api, master), cid, "master")

    for worker in (w1, w2):
        joined = await demo.join(cid, worker)
        assert joined["status"] is True and "kubeadm join" in joined["msg"], joined
        assert (joined["data"]["node_status"], joined["data"]["role"], joined["data"]["clusterid"]) == (
            "1",
            "worker",
            cid,
        )
        assert_member(await device(api, worker), cid, "worker")
    await demo.admin.ok(ADD_WIDGET, cpcid=demo.center, clusterid=cid, type="cpu", unit_price="0.5", stock="64")
    assert await stock_rows(api, cid) == 1

    removed = await demo.admin.ok(DELETE_WORKER, cpcid=demo.center, clusterid=cid, worker_nodeid=w1)
    assert (removed["id"], removed["node_status"], removed["clusterid"]) == (w1, "0", None)
    assert_idle(await device(api, w1))
    assert_member(await device(api, w2), cid, "worker")

    gone = await demo.admin.ok(DELETE_CLUSTER, id=cid)
    assert gone["id"] == cid and gone["operation_state"] == "succeeded"
    assert await cluster(api, cid) is None and await stock_rows(api, cid) == 0
    for device_id in (master, w1, w2):
        assert_idle(await device(api, device_id))
    # Every simulated side effect happened once.
    assert demo.site.count("kubeadm_init") == 1 and demo.site.count("kubeadm_join") == 2
    assert demo.site.count("reset", node=w1) == 1 and demo.site.count("reset") == 3  # the worker, then all three
    kinds = await demo.admin.http.get(OPS, params={"cluster_id": cid}, headers=demo.admin.headers)
    assert sorted(r["kind"] for r in kinds.json()["rows"]) == sorted(
        ["create_cluster", "join_worker", "join_worker", "remove_worker", "remove_cluster"]
    )
    assert {r["backend"] for r in kinds.json()["rows"]} == {"simulated"}


async def test_refusals_write_nothing(demo: Demo, api: Api) -> None:
    master, w1, *_ = demo.devices
    refused = demo.admin.refused
    assert "slurm" in await refused(NEW_CLUSTER, **create_params(demo.center, master, cluster_type="1"))
    assert "cluster_type" in await refused(NEW_CLUSTER, **create_params(demo.center, master, cluster_type="7"))
    late = create_params(demo.center, master, enable_date="2026-07-01", export_date="2026-06-01")
    assert "export_date" in await refused(NEW_CLUSTER, **late)
    assert "enable_date" in await refused(NEW_CLUSTER, **create_params(demo.center, master, enable_date="2026/1/1"))
    assert "cluster_name" in await refused(NEW_CLUSTER, **create_params(demo.center, master, cluster_name=" "))
    bob = await api.user("bob", "acme", admin=False)
    assert "管理员" in await bob.refused(NEW_CLUSTER, **create_params(demo.center, master))
    mallory = await api.user("mallory", "evil-corp")
    assert "不存在" in await mallory.refused(NEW_CLUSTER, **create_params(demo.center, master))
    assert_idle(await device(api, master))
    async with api.app.state.kboss.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Cluster)) == 0

    cid = await demo.build(master)
    assert "不是空闲设备" in await refused(NEW_CLUSTER, **create_params(demo.center, master))
    assert "不是空闲设备" in (await demo.join(cid, master))["msg"]
    assert "控制节点" in await refused(DELETE_WORKER, cpcid=demo.center, clusterid=cid, worker_nodeid=master)
    assert "不是集群" in await refused(DELETE_WORKER, cpcid=demo.center, clusterid=cid, worker_nodeid=w1)
    assert "管理员" in await bob.refused(NEW_WORKER, cpcid=demo.center, clusterid=cid, worker_nodeid=w1)
    assert "管理员" in await bob.refused(DELETE_CLUSTER, id=cid)
    assert "不存在" in await mallory.refused(DELETE_CLUSTER, id=cid)
    other = (await demo.admin.ok(f"{CPCC}/cpclist/add_cpclist.dspy", **CENTER))["id"]
    stranger = (await demo.admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **device_params(other)))["id"]
    assert "不属于该算力中心" in (await demo.join(cid, stranger))["msg"]
    assert_idle(await device(api, w1))


async def test_busy_cluster_is_refused_and_a_slow_operation_answers_with_its_id(demo: Demo, api: Api) -> None:
    master, w1, w2, _ = demo.devices
    cid = await demo.build(master)
    gate = demo.site.pause("kubeadm_join", node=w1)
    set_wait(api, 0.2)
    body = await demo.join(cid, w1)
    assert body["status"] is True and "仍在执行" in body["msg"], body
    op_id = body["data"]["operation_id"]
    assert body["data"]["operation_state"] in ("pending", "running") and op_id in body["msg"]
    assert_member(await device(api, w1), cid, "worker")  # reserved while it joins

    busy = await demo.join(cid, w2)
    assert busy["status"] is False and "正在执行操作" in busy["msg"] and op_id in busy["msg"], busy
    assert_idle(await device(api, w2))  # the refused request reserved nothing
    assert "正在执行操作" in await demo.admin.refused(DELETE_CLUSTER, id=cid)
    gate.set()
    assert await demo.wait_state(op_id, "succeeded", "failed") == "succeeded"
    set_wait(api, 30)
    assert (await demo.join(cid, w2))["status"] is True


async def test_a_failed_join_frees_the_device_and_a_retry_takes_it_back(demo: Demo, api: Api) -> None:
    master, w1, *_ = demo.devices
    cid = await demo.build(master)
    demo.site.fail("kubeadm_join")
    body = await demo.join(cid, w1)
    assert body["status"] is False and "算力中心服务操作失败" in body["msg"] and "模拟故障" in body["msg"], body
    assert body["data"]["node_status"] == "0"
    assert_idle(await device(api, w1))

    op_id = body["data"]["operation_id"]
    retried = await demo.admin.http.post(f"{OPS}/{op_id}/retry", headers=demo.admin.headers)
    assert retried.status_code == 200, retried.text
    assert await demo.wait_state(op_id, "succeeded", "failed") == "succeeded"
    assert_member(await device(api, w1), cid, "worker")
    assert demo.site.count("kubeadm_join", node=w1) == 1 and demo.site.count("preflight", node=w1) == 1


async def test_a_failed_or_cancelled_build_frees_its_machine(demo: Demo, api: Api) -> None:
    master, *_ = demo.devices
    demo.site.fail("kubeadm_init")
    failed = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master))
    assert failed["status"] is False and "kubeadm_init" in failed["msg"]
    assert_idle(await device(api, master))
    failed_cluster = await cluster(api, failed["data"]["clusterid"])
    assert failed_cluster is not None and failed_cluster.ready == -1  # kept (a retry needs it), failed

    gate = demo.site.pause("kubeadm_init")
    set_wait(api, 0.2)
    pending = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master))
    op_id = pending["data"]["operation_id"]
    assert pending["status"] is True and pending["data"]["role"] == "master"
    await demo.wait_step(op_id, "kubeadm_init")
    cancel = await demo.admin.http.post(f"{OPS}/{op_id}/cancel", headers=demo.admin.headers)
    assert cancel.status_code in (200, 202), cancel.text
    assert await demo.wait_state(op_id, "cancelled") == "cancelled"
    assert not gate.is_set()
    set_wait(api, 30)
    rebuilt = await demo.build(master)  # the cancelled build's reservation is released first
    assert_member(await device(api, master), rebuilt, "master")
    # Each repeat of the same build re-used the failed row: no leftover beside the cluster.
    assert rebuilt == pending["data"]["clusterid"] == failed["data"]["clusterid"]
    async with api.app.state.kboss.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Cluster)) == 1


async def test_a_failed_build_is_visibly_failed_and_a_retry_reuses_its_row(demo: Demo, api: Api) -> None:
    master, *_ = demo.devices
    demo.site.fail("kubeadm_init")
    failed = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master))
    cid, op_id = failed["data"]["clusterid"], failed["data"]["operation_id"]
    assert_idle(await device(api, master))
    rows = (await demo.admin.ok(f"{CPCC}/cpccluster/get_cpccluster.dspy", cpcid=demo.center))["rows"]
    row = next(r for r in rows if r["id"] == cid)
    assert row["ready"] == -1 and row["state"] == "failed" and "kubeadm_init" in row["state_reason"], row
    native = await demo.admin.http.get(f"/api/v1/clusters/{cid}", headers=demo.admin.headers)
    assert native.json()["state"] == "failed" and native.json()["ready"] == -1, native.text

    retried = await demo.admin.http.post(f"{OPS}/{op_id}/retry", headers=demo.admin.headers)
    assert retried.status_code == 200, retried.text
    assert await demo.wait_state(op_id, "succeeded", "failed") == "succeeded"
    again = await cluster(api, cid)
    assert again is not None and again.ready == 1 and again.state == "ready" and again.state_reason is None
    assert_member(await device(api, master), cid, "master")


async def test_repeating_a_failed_build_reuses_its_row_and_leaves_no_phantom(demo: Demo, api: Api) -> None:
    master, other, *_ = demo.devices
    demo.site.fail("kubeadm_init")
    failed = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master, cluster_name="重试集群"))
    assert failed["status"] is False
    again = await demo.admin.call(
        NEW_CLUSTER, **create_params(demo.center, other, cluster_name="重试集群", export_date="2027-01-01")
    )
    assert again["status"] is True, again
    assert again["data"]["clusterid"] == failed["data"]["clusterid"]
    rows = (await demo.admin.ok(f"{CPCC}/cpccluster/get_cpccluster.dspy", cpcid=demo.center))["rows"]
    named = [row for row in rows if row["name"] == "重试集群"]
    assert len(named) == 1 and named[0]["ready"] == 1 and named[0]["state"] == "ready", named
    assert named[0]["export_date"].startswith("2027-01-01")
    assert_member(await device(api, other), named[0]["id"], "master")
    assert_idle(await device(api, master))
    # A failed build can also be removed: the row goes, the machine stays idle.
    demo.site.fail("kubeadm_init")
    doomed = (await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master, cluster_name="删除我")))["data"]
    assert (await demo.admin.ok(DELETE_CLUSTER, id=doomed["clusterid"]))["operation_state"] == "succeeded"
    assert await cluster(api, doomed["clusterid"]) is None
    assert_idle(await device(api, master))
    # Another name is another cluster.
    third = await demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master, cluster_name="另一个"))
    assert third["status"] is True and third["data"]["clusterid"] != named[0]["id"]


async def test_two_requests_for_one_machine_one_wins(demo: Demo, api: Api) -> None:
    master, *_ = demo.devices
    set_wait(api, 0)
    answers = await asyncio.gather(
        *(demo.admin.call(NEW_CLUSTER, **create_params(demo.center, master, cluster_name=f"c{i}")) for i in range(3))
    )
    won = [a for a in answers if a["status"]]
    assert len(won) == 1, answers
    assert all("空闲" in a["msg"] or "占用" in a["msg"] for a in answers if not a["status"])
    async with api.app.state.kboss.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Cluster)) == 1
    assert await demo.wait_state(won[0]["data"]["operation_id"], "succeeded") == "succeeded"


async def test_instances_block_removal_unless_forced(demo: Demo, api: Api) -> None:
    models = pytest.importorskip("kboss.db.models_instances")
    master, *_ = demo.devices
    cid = await demo.build(master)
    async with api.app.state.kboss.sessions() as session:
        session.add(models.Instance(**_instance(demo.admin, cid, demo.center, (await device(api, master)).orgid)))
        await session.commit()
    assert "1 个资源实例" in await demo.admin.refused(DELETE_CLUSTER, id=cid)
    assert await cluster(api, cid) is not None
    assert (await demo.admin.ok(DELETE_CLUSTER, id=cid, force="1"))["operation_state"] == "succeeded"
    assert await cluster(api, cid) is None
    assert_idle(await device(api, master))


def _instance(user: User, cluster_id: str, center: str, orgid: str) -> dict[str, Any]:
    texts = ("namespace_name", "serviceaccount_name", "podcd_name", "service_name", "pod_imagepath",
             "source_authuser", "source_authpasswd", "source_cpurate", "source_memrate", "cpu_model",
             "source_mountpath")  # fmt: skip
    return {
        **{name: "x" for name in texts}, "orgid": orgid, "userid": "u", "cpcid": center, "clusterid": cluster_id,
        "instance_type": "ubuntu", "source_podengine": "Deployment", "source_portmode": "NodePort",
        "source_restartpolicy": "Always", "source_apiport": 22, "source_insideport": 22, "state": "ready",
    }  # fmt: skip


async def test_native_routes_answer_202_with_the_operation(demo: Demo, api: Api) -> None:
    master, w1, *_ = demo.devices
    http, headers = demo.admin.http, demo.admin.headers
    slurm = await http.post("/api/v1/clusters", json={"cpcid": demo.center, "device_id": master, "name": "n",
                                                      "cluster_type": 1}, headers=headers)  # fmt: skip
    assert slurm.status_code == 422 and "slurm" in slurm.json()["detail"]
    body = {"cpcid": demo.center, "device_id": master, "name": "native", "options": {"gpu": "off"}}
    created = await http.post("/api/v1/clusters", json=body, headers=headers)
    assert created.status_code == 202, created.text
    op = created.json()
    assert (
        op["kind"] == "create_cluster" and op["backend"] == "simulated" and op["params"]["provision"] == {"gpu": "off"}
    )
    cid = op["cluster_id"]
    assert await demo.wait_state(op["id"], "succeeded") == "succeeded"

    gate = demo.site.pause("kubeadm_join")
    joined = await http.post(f"/api/v1/clusters/{cid}/workers", json={"device_id": w1}, headers=headers)
    assert joined.status_code == 202 and joined.json()["device_id"] == w1
    busy = await http.delete(f"/api/v1/clusters/{cid}", headers=headers)
    assert busy.status_code == 409 and "正在执行操作" in busy.json()["detail"]
    gate.set()
    assert await demo.wait_state(joined.json()["id"], "succeeded") == "succeeded"
    removed = await http.delete(f"/api/v1/clusters/{cid}/workers/{w1}", headers=headers)
    assert removed.status_code == 202 and removed.json()["params"] == {"force": False}
    assert await demo.wait_state(removed.json()["id"], "succeeded") == "succeeded"
    assert_idle(await device(api, w1))
    dismantled = await http.delete(f"/api/v1/clusters/{cid}", params={"force": "true"}, headers=headers)
    assert dismantled.status_code == 202 and dismantled.json()["params"]["force"] is True
    assert await demo.wait_state(dismantled.json()["id"], "succeeded") == "succeeded"
    assert await cluster(api, cid) is None
    assert (await http.delete(f"/api/v1/clusters/{cid}", headers=headers)).status_code == 404
