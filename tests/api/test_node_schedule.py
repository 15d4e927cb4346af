"""Cordon and uncordon a node from the platform (`POST /api/v1/clusters/{id}/nodes/{node}/schedule`), through the
real site agent over HTTP to the Kubernetes API fake. Draining is an operation: tests/api/test_node_drain.py."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_compat_catalog import KUBECONFIG
from tests.api.test_instances import Site, record_cluster, site
from tests.support.api import User

__all__ = ["site"]
WORKER = "k8s-worker-1"


async def schedule(user: User, clusterid: str, node: str, **body: Any) -> httpx.Response:
    return await user.http.post(f"/api/v1/clusters/{clusterid}/nodes/{node}/schedule", json=body, headers=user.headers)


async def board_row(site: Site, node: str) -> dict[str, Any]:
    response = await site.admin.http.get(f"/api/v1/clusters/{site.clusterid}/nodes", headers=site.admin.headers)
    assert response.status_code == 200, response.text
    rows: dict[str, dict[str, Any]] = {row["node_name"]: row for row in response.json()["rows"]}
    return rows[node]


def unschedulable(site: Site, node: str) -> bool:
    found = site.fake.get("Node", node)
    assert found is not None
    return bool(found["spec"].get("unschedulable"))


async def test_a_node_is_cordoned_shown_as_such_and_uncordoned(site: Site) -> None:
    response = await schedule(site.admin, site.clusterid, WORKER, state="cordon")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "clusterid": site.clusterid,
        "node_name": WORKER,
        "state": "cordon",
        "node_schedulable": False,
    }
    assert unschedulable(site, WORKER)
    row = await board_row(site, WORKER)
    assert (row["node_status"], row["node_schedulable"]) == ("已就绪,禁止调度", False)

    response = await schedule(site.admin, site.clusterid, WORKER, state="uncordon")
    assert response.status_code == 200, response.text
    assert response.json()["node_schedulable"] is True and not unschedulable(site, WORKER)
    row = await board_row(site, WORKER)
    assert (row["node_status"], row["node_schedulable"]) == ("已就绪", True)


async def test_cordoning_leaves_the_pods_where_they_are(site: Site) -> None:
    site.fake.add_pod("web-7d-abcde", "shop", node=WORKER, owner=("ReplicaSet", "web-7d"))
    response = await schedule(site.admin, site.clusterid, WORKER, state="cordon")
    assert response.status_code == 200, response.text
    assert unschedulable(site, WORKER) and site.fake.get("Pod", "web-7d-abcde", "shop") is not None
    assert site.fake.requests_to("POST", "eviction") == []


async def test_an_unknown_node_is_a_clear_404_and_nothing_is_changed(site: Site) -> None:
    response = await schedule(site.admin, site.clusterid, "ghost-node", state="cordon")
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "集群 朝阳区 没有节点 ghost-node"
    assert site.fake.requests_to("PATCH") == []


async def test_another_orgs_cluster_and_members_are_refused(site: Site) -> None:
    mallory = await site.api.user("mallory", "evil")
    response = await schedule(mallory, site.clusterid, WORKER, state="cordon")
    assert response.status_code == 404, response.text
    bob = await site.api.user("bob", "acme", admin=False)
    response = await schedule(bob, site.clusterid, WORKER, state="cordon")
    assert response.status_code == 403 and "管理员" in response.json()["detail"]
    assert site.fake.requests == []


@pytest.mark.parametrize(
    ("node", "body", "named"),
    [
        (WORKER, {"state": "drain"}, "state"),
        (WORKER, {}, "state"),
        (WORKER, {"state": ["cordon"]}, "state"),
        # A drain is an operation now (POST .../drain): refused here, never silently reduced to a cordon.
        (WORKER, {"state": "cordon", "drain": True}, "drain"),
        (WORKER, {"state": "cordon", "drain": "maybe"}, "drain"),
        ("Node_1", {"state": "cordon"}, "node_name"),
        ("$(reboot)", {"state": "cordon"}, "node_name"),
    ],
)
async def test_bad_input_is_named_and_nothing_reaches_the_cluster(
    site: Site, node: str, body: dict[str, Any], named: str
) -> None:
    response = await schedule(site.admin, site.clusterid, node, **body)
    assert response.status_code == 422, response.text
    assert f"参数 {named} 无效" in response.json()["detail"]
    assert site.fake.requests == []


async def test_an_unreachable_cluster_is_an_error_not_a_crash(site: Site) -> None:
    gone = await record_cluster(site.admin, site.cpcid, KUBECONFIG, "已下线")
    response = await schedule(site.admin, gone, WORKER, state="cordon")
    assert response.status_code == 502, response.text
    assert "无法连接" in response.json()["detail"]
