"""The same rules through a real site agent over HTTP, against the Kubernetes fake: an instance reads what its
pods do, and the only GPU worker under a GPU instance is not removed without `force`. The worker is found by its
internal address (the device's IP), as it would be on a cluster kboss built."""

from __future__ import annotations

from typing import Any

import yaml
from sqlalchemy import update

from kboss.db.models import Cluster, Device
from tests.api.test_cluster_ops_kit import DELETE_WORKER
from tests.api.test_instances import GET, NEW, Site, instance_params, site

__all__ = ["site"]
from tests.kubefake.fake import KubeFake

CPCC = "/dev/cpcc"
GPU_WORKER = "k8s-worker-1"  # 4 RTX5090-32G cards, 192.168.0.2 (tests.api.test_instances.seed_nodes)


async def _worker_device(site: Site) -> str:
    params = {
        "cpcid": site.cpcid, "ip": "192.168.0.2", "sshport": "22", "name": "gpu-worker", "devicetype": "1",
        "adminuser": "root", "adminpwd": "Ssh-Pa55", "node_status": "0", "role": "worker",
    }  # fmt: skip
    device_id = str((await site.admin.ok(f"{CPCC}/cpcnode/add_cpcnode.dspy", **params))["id"])
    async with site.api.app.state.kboss.sessions() as session:  # a member, as a join would have recorded it
        values = {"clusterid": site.clusterid, "node_status": 1, "role": "worker"}
        await session.execute(update(Device).where(Device.id == device_id).values(**values))
        await session.commit()
    return device_id


def _run_pod(fake: KubeFake, instance: dict[str, Any], state: str = "running") -> None:
    """What the scheduler and kubelet would do with the instance's StatefulSet: its pod, on the GPU worker."""
    requests = {"cpu": "1", "memory": "512Mi", "nvidia.com/gpu": "1"}
    name, namespace = f"{instance['podcd_name']}-0", instance["namespace_name"]
    node = GPU_WORKER if state != "pending" else None
    fake.add_pod(
        name, namespace, state=state, node=node, owner=("StatefulSet", instance["podcd_name"]), requests=requests
    )


async def _point_cluster_at_nothing(site: Site) -> None:
    """The cluster's API server goes away: its kubeconfig now names a port where nothing listens."""
    config = yaml.safe_load(site.kubeconfig)
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    state = site.api.app.state.kboss
    async with state.sessions() as session:
        await session.execute(
            update(Cluster)
            .where(Cluster.id == site.clusterid)
            .values(kubeconfig=state.box.seal(yaml.safe_dump(config)))
        )
        await session.commit()


async def _row(site: Site, name: str) -> dict[str, Any]:
    listed = await site.admin.ok(GET, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    return {row["source_name"]: row for row in listed["rows"]}[name]


async def test_a_gpu_instance_reads_its_pods_and_holds_its_worker(site: Site) -> None:
    worker = await _worker_device(site)
    params = instance_params(site.clusterid, source_name="trainer", source_gpu="1", gpu_model="RTX5090-32G")
    trainer = await site.admin.ok(NEW, **params)
    waiting = await _row(site, "trainer")  # applied, but no pod yet: the fake schedules nothing by itself
    assert (waiting["state"], waiting["health"], waiting["state_text"]) == ("ready", "pending", "等待调度")

    _run_pod(site.fake, trainer)
    running = await _row(site, "trainer")
    assert (running["health"], running["state_text"]) == ("running", "就绪")

    refused = await site.api.http.delete(
        f"/api/v1/clusters/{site.clusterid}/workers/{worker}", headers=site.admin.headers
    )
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert f"节点 {GPU_WORKER} 上的资源实例无法调度到其他节点" in body["detail"]
    assert [item["id"] for item in body["data"]["instances"]] == [trainer["id"]]
    assert "didn't have the requested GPU model" in body["data"]["instances"][0]["reason"]  # the control plane: none
    compat = await site.admin.refused(DELETE_WORKER, cpcid=site.cpcid, clusterid=site.clusterid, worker_nodeid=worker)
    assert f"trainer ({trainer['id']})" in compat


async def test_a_cluster_that_does_not_answer_reads_unknown_and_refuses_an_unforced_removal(site: Site) -> None:
    worker = await _worker_device(site)
    trainer = await site.admin.ok(NEW, **instance_params(site.clusterid, source_name="trainer"))
    _run_pod(site.fake, trainer)
    await _point_cluster_at_nothing(site)
    unknown = await _row(site, "trainer")
    assert (unknown["health"], unknown["state_text"]) == ("unknown", "状态未知")
    refused = await site.api.http.delete(
        f"/api/v1/clusters/{site.clusterid}/workers/{worker}", headers=site.admin.headers
    )
    assert refused.status_code == 409 and "无法读取集群" in refused.json()["detail"], refused.text
