"""Draining a node is an operation (`POST /api/v1/clusters/{id}/nodes/{node}/drain`, 202): the platform's own
worker runs its `cordon` and `evict` steps through the real site agent over HTTP to the Kubernetes API fake, where
a PodDisruptionBudget or a pod no controller owns blocks a drain as it would in a cluster."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.api.test_instances import Site, site
from tests.api.test_node_schedule import WORKER, board_row, unschedulable
from tests.kubefake.resources import by_kind
from tests.support.api import User
from tests.support.site import SITE_PASSWORD

__all__ = ["site"]
OPS = "/api/v1/operations"


async def drain(user: User, clusterid: str, node: str, **body: Any) -> httpx.Response:
    return await user.http.post(f"/api/v1/clusters/{clusterid}/nodes/{node}/drain", json=body, headers=user.headers)


async def ended(user: User, op_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            detail: dict[str, Any] = (await user.http.get(f"{OPS}/{op_id}", headers=user.headers)).json()
            if detail["state"] not in ("pending", "running"):
                return detail
            await asyncio.sleep(0.05)


async def log_of(user: User, op_id: str) -> str:
    return (await user.http.get(f"{OPS}/{op_id}/log", headers=user.headers)).text


def steps(detail: dict[str, Any]) -> dict[str, tuple[str, int]]:
    return {s["name"]: (s["state"], s["attempts"]) for s in detail["steps"]}


async def test_a_drain_is_an_operation_that_cordons_then_evicts(site: Site) -> None:
    site.fake.add_pod("web-7d-abcde", "shop", node=WORKER, owner=("ReplicaSet", "web-7d"))
    site.fake.add_pod("agent-x", "kube-system", node=WORKER, owner=("DaemonSet", "agent"))
    site.fake.add_pod("coredns-1", "kube-system", node="k8s-master", owner=("ReplicaSet", "coredns-5d"))
    response = await drain(site.admin, site.clusterid, WORKER)
    assert response.status_code == 202, response.text
    started = response.json()
    assert (started["kind"], started["state"], started["cluster_id"]) == ("drain_node", "pending", site.clusterid)
    assert started["params"] == {"node": WORKER, "drain_seconds": 300} and started["device_ids"] == []

    detail = await ended(site.admin, started["id"])
    assert detail["state"] == "succeeded", detail["last_error"]
    assert steps(detail) == {"cordon": ("succeeded", 1), "evict": ("succeeded", 1)}
    assert detail["steps"][1]["result"] == {
        "node": WORKER,
        "evicted": ["shop/web-7d-abcde"],
        "deleted": [],
        "skipped": 1,
    }
    assert site.fake.get("Pod", "web-7d-abcde", "shop") is None
    assert site.fake.get("Pod", "agent-x", "kube-system") is not None  # a DaemonSet pod stays
    assert site.fake.get("Pod", "coredns-1", "kube-system") is not None  # another node's pods are left alone
    assert unschedulable(site, WORKER)
    row = await board_row(site, WORKER)
    assert (row["node_status"], row["node_schedulable"]) == ("已就绪,禁止调度", False)

    log = await log_of(site.admin, started["id"])
    assert f"节点 {WORKER} 已禁止调度" in log and "已驱逐 shop/web-7d-abcde" in log
    assert "跳过 kube-system/agent-x: 由 DaemonSet agent 管理" in log
    assert site.fake.token is not None and site.fake.token not in log and SITE_PASSWORD not in log


async def test_a_blocked_drain_fails_naming_each_pod_and_a_retry_evicts_once_the_blocker_is_gone(site: Site) -> None:
    site.fake.add_pod("db-0", "shop", node=WORKER, owner=("StatefulSet", "db"), labels={"app": "db"})
    site.fake.add_pod("web-7d-abcde", "shop", node=WORKER, owner=("ReplicaSet", "web-7d"))
    site.fake.add_pod("lonely", "shop", node=WORKER)
    site.fake.add_pdb("db", "shop", {"app": "db"}, min_available=1)
    response = await drain(site.admin, site.clusterid, WORKER, timeout_seconds=1)
    assert response.status_code == 202, response.text
    op_id = response.json()["id"]
    failed = await ended(site.admin, op_id)
    assert failed["state"] == "failed"
    error = failed["last_error"]
    assert f"节点 {WORKER} 未能排空: 2 个 Pod 无法驱逐" in error and "已驱逐 1 个 Pod" in error, error
    assert "shop/db-0 (驱逐被中断预算 (PodDisruptionBudget) 阻止直至超时" in error
    assert "shop/lonely (不受任何控制器管理" in error
    assert steps(failed) == {"cordon": ("succeeded", 1), "evict": ("failed", 1)}
    assert site.fake.get("Pod", "db-0", "shop") is not None and site.fake.get("Pod", "lonely", "shop") is not None
    assert site.fake.get("Pod", "web-7d-abcde", "shop") is None
    assert unschedulable(site, WORKER)  # what was drained stays drained: the node is still cordoned
    assert "无法驱逐 shop/lonely: 不受任何控制器管理" in await log_of(site.admin, op_id)

    site.fake.store.delete(by_kind("PodDisruptionBudget"), "shop", "db")
    site.fake.store.delete(by_kind("Pod"), "shop", "lonely")
    retried = await site.admin.http.post(f"{OPS}/{op_id}/retry", headers=site.admin.headers)
    assert retried.status_code == 200, retried.text
    done = await ended(site.admin, op_id)
    assert done["state"] == "succeeded", done["last_error"]
    assert steps(done) == {"cordon": ("succeeded", 1), "evict": ("succeeded", 2)}  # only what failed ran again
    assert done["steps"][1]["result"]["evicted"] == ["shop/db-0"]
    assert site.fake.get("Pod", "db-0", "shop") is None and unschedulable(site, WORKER)


async def test_an_unknown_node_is_a_clear_404_and_no_operation_is_recorded(site: Site) -> None:
    response = await drain(site.admin, site.clusterid, "ghost-node")
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "集群 朝阳区 没有节点 ghost-node"
    listed = await site.admin.http.get(OPS, params={"cluster_id": site.clusterid}, headers=site.admin.headers)
    assert listed.json()["total"] == 0
    assert site.fake.requests_to("PATCH") == []


async def test_another_orgs_cluster_and_members_are_refused(site: Site) -> None:
    mallory = await site.api.user("mallory", "evil")
    response = await drain(mallory, site.clusterid, WORKER)
    assert response.status_code == 404, response.text
    bob = await site.api.user("bob", "acme", admin=False)
    response = await drain(bob, site.clusterid, WORKER)
    assert response.status_code == 403 and "管理员" in response.json()["detail"]
    assert site.fake.requests == []


@pytest.mark.parametrize(
    ("node", "body", "named"),
    [
        ("Node_1", {}, "node"),
        ("$(reboot)", {}, "node"),
        (WORKER, {"timeout_seconds": 0}, "timeout_seconds"),
        (WORKER, {"timeout_seconds": "soon"}, "timeout_seconds"),
        (WORKER, {"timeout_seconds": 3601}, "timeout_seconds"),
        (WORKER, {"timeout_seconds": True}, "timeout_seconds"),
        (WORKER, {"force": True}, "force"),
    ],
)
async def test_bad_input_is_named_and_nothing_reaches_the_cluster(
    site: Site, node: str, body: dict[str, Any], named: str
) -> None:
    response = await drain(site.admin, site.clusterid, node, **body)
    assert response.status_code == 422, response.text
    assert f"参数 {named} 无效" in response.json()["detail"]
    assert site.fake.requests == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_body_that_is_not_an_object_is_refused(site: Site) -> None:
    path = f"/api/v1/clusters/{site.clusterid}/nodes/{WORKER}/drain"
    response = await site.admin.http.post(path, json=["force"], headers=site.admin.headers)
    assert response.status_code == 422 and "参数 body 无效" in response.json()["detail"], response.text
