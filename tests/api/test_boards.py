"""Live boards (get_cpcpod, get_cpcworker) and node labels (setup_cpclabel), read from the fake through the agent."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_compat_catalog import CPCC, KUBECONFIG, assert_fields_like_spec
from tests.api.test_instances import NEW, Site, instance_params, record_cluster, site

__all__ = ["site"]
PODS = f"{CPCC}/cpcpod/get_cpcpod.dspy"
NODES = f"{CPCC}/cpcworker/get_cpcworker.dspy"
LABEL = f"{CPCC}/cpclabel/setup_cpclabel.dspy"


def _by(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {row[key]: row for row in rows}


async def _instance_with_a_pod(site: Site, user: Any, name: str, **extra: Any) -> dict[str, Any]:
    """An instance, and the pod its controller would have started (the fake runs no controllers)."""
    created: dict[str, Any] = await user.ok(NEW, **instance_params(site.clusterid, source_name=name, **extra))
    site.fake.add_pod(
        f"{created['podcd_name']}-0",
        site.namespace,
        node="k8s-worker-1",
        owner=("StatefulSet", created["podcd_name"]),
        requests={"cpu": "1", "memory": "512Mi"},
    )
    return created


async def test_pods_board_shows_the_spec_fields_and_limits_from_the_instance(site: Site) -> None:
    created = await _instance_with_a_pod(site, site.admin, "web")
    site.fake.add_pod("coredns-5d78c9869d-abcde", "kube-system", node="k8s-master", requests={"cpu": "100m"})
    site.fake.add_pod("gated", "default", node="k8s-worker-1", readiness_gates=[("a.io/lb", True), ("a.io/dns", False)])
    board = await site.admin.ok(PODS, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert_fields_like_spec(PODS, board)
    rows = _by(board["rows"], "pod_name")
    mine = rows[f"{created['podcd_name']}-0"]
    assert (mine["pod_namespace"], mine["pod_ready"], mine["pod_running"], mine["pod_node"]) == (
        site.namespace,
        "1/1",
        "Running",
        "k8s-worker-1",
    )
    assert (mine["pod_cpu_limit"], mine["pod_memory_limit"], mine["pod_gpu_limit"], mine["pod_gpu"]) == (
        "1",
        "512Mi",
        "0",
        "0",
    )
    # The fake has no metrics API (no metrics-server): usage is unknown, shown as "-" rather than a made-up zero.
    assert (mine["pod_cpurate"], mine["pod_memrate"], mine["pod_nominated_node"]) == ("-", "-", "无")
    system = rows["coredns-5d78c9869d-abcde"]
    assert (system["pod_cpu_limit"], system["instance_id"]) == ("-", "")
    # The document types pod_readiness_gates [string] on this board: kubectl's summary as one item, none empty.
    assert (mine["pod_readiness_gates"], rows["gated"]["pod_readiness_gates"]) == ([], ["1/2"])


async def test_pods_board_shows_usage_from_the_metrics_api(site: Site) -> None:
    created = await _instance_with_a_pod(site, site.admin, "web")
    mine_name = f"{created['podcd_name']}-0"
    site.fake.add_pod("coredns-5d78c9869d-abcde", "kube-system", node="k8s-master", requests={"cpu": "100m"})
    site.fake.add_pod("pending-0", "default")
    site.fake.add_pod_metrics(
        mine_name, site.namespace, containers={"c0": {"cpu": "250m", "memory": "128Mi"}, "c1": {"cpu": "1"}}
    )
    # metrics-server reports nanocores and Ki; the spec's example shows 0.004核 and 2.539Mi.
    site.fake.add_pod_metrics(
        "coredns-5d78c9869d-abcde", "kube-system", containers={"coredns": {"cpu": "3500000n", "memory": "2600Ki"}}
    )
    board = await site.admin.ok(PODS, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert_fields_like_spec(PODS, board)
    rows = _by(board["rows"], "pod_name")
    assert (rows[mine_name]["pod_cpurate"], rows[mine_name]["pod_memrate"]) == ("1.250核", "128.000Mi")
    assert rows[mine_name]["pod_cpu_limit"] == "1"
    system = rows["coredns-5d78c9869d-abcde"]
    assert (system["pod_cpurate"], system["pod_memrate"]) == ("0.004核", "2.539Mi")
    # A pod the metrics API does not report (not started yet) has no usage to show.
    assert (rows["pending-0"]["pod_cpurate"], rows["pending-0"]["pod_memrate"]) == ("-", "-")

    site.fake.metrics_down = True  # metrics-server registered but not answering: the board still answers
    board = await site.admin.ok(PODS, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert {(row["pod_cpurate"], row["pod_memrate"]) for row in board["rows"]} == {("-", "-")}


async def test_members_see_the_pods_of_their_own_instances_only(site: Site) -> None:
    bob = await site.api.user("bob", "acme", admin=False)
    await _instance_with_a_pod(site, site.admin, "alice-web")
    his = await _instance_with_a_pod(site, bob, "bob-web", source_outsideport="30064")
    board = await bob.ok(PODS, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert [row["pod_name"] for row in board["rows"]] == [f"{his['podcd_name']}-0"]
    assert "管理员" in await bob.refused(NODES, "GET", cpcid=site.cpcid, clusterid=site.clusterid)


async def test_nodes_board_counts_what_running_pods_request(site: Site) -> None:
    site.fake.add_pod("coredns-1", "kube-system", node="k8s-master", requests={"cpu": "850m", "memory": "1Gi"})
    site.fake.add_pod("done-1", "default", node="k8s-worker-1", state="completed", requests={"cpu": "15"})
    await _instance_with_a_pod(site, site.admin, "web")
    site.fake.add_pod("trainer-0", "default", node="k8s-worker-1", requests={"nvidia.com/gpu": "1"})

    board = await site.admin.ok(NODES, "GET", cpcid=site.cpcid, clusterid=site.clusterid)
    assert_fields_like_spec(NODES, board)
    rows = _by(board["rows"], "node_name")
    master, worker = rows["k8s-master"], rows["k8s-worker-1"]
    # The spec's example figures: 4 cores of which 850m requested → 3.15核 left, 21.2% requested.
    assert (master["available_cpu"], master["node_cpurate"]) == ("3.15核", "21.2%")
    assert (master["available_memory"], master["node_memrate"], master["node_gpu"]) == ("15.00Gi", "6.2%", "0%")
    assert (master["node_status"], master["node_role"], master["node_externalip"]) == ("已就绪", "控制节点", "未分配")
    assert master["node_labels"] == ["kyy-gpu=false"]
    # A finished pod requests nothing any more; the instance's pod takes 1 core and 512Mi, the trainer a GPU.
    assert (worker["available_cpu"], worker["available_memory"]) == ("15.00核", "63.50Gi")
    assert (worker["available_gpu"], worker["node_gpu"], worker["node_role"]) == (3, "25.0%", "工作节点")
    assert worker["node_labels"] == ["kboss.io/gpu-model=RTX5090-32G", "kyy-gpu=true"]


async def test_unreachable_clusters_answer_a_clear_failure_not_an_empty_board(site: Site) -> None:
    gone = await record_cluster(site.admin, site.cpcid, KUBECONFIG, "已下线")
    for path in (PODS, NODES):
        message = await site.admin.refused(path, "GET", cpcid=site.cpcid, clusterid=gone)
        assert "无法连接" in message and "127.0.0.1:1" in message


async def test_a_node_is_labelled_and_unlabelled(site: Site) -> None:
    where = {"cpcid": site.cpcid, "clusterid": site.clusterid, "worker_node": "k8s-master"}
    bound = await site.admin.ok(LABEL, **where, label="kyy-gpu=true", opt="label")
    assert_fields_like_spec(LABEL, bound)
    assert (bound["label"], bound["opt"], bound["orgid"]) == ("kyy-gpu=true", "label", site.orgid)
    assert _node_labels(site)["kyy-gpu"] == "true" and "kyy-gpu=true" in bound["node_labels"]

    await site.admin.ok(LABEL, **where, label="kyy-gpu", opt="unlabel")
    assert "kyy-gpu" not in _node_labels(site)


async def test_unbinding_key_value_needs_the_value_the_node_has(site: Site) -> None:
    where = {"cpcid": site.cpcid, "clusterid": site.clusterid, "worker_node": "k8s-master"}
    await site.admin.ok(LABEL, **where, label="foo=bar", opt="label")
    refused = await site.admin.refused(LABEL, **where, label="foo=baz", opt="unlabel")
    assert 'foo 当前值为 "bar"' in refused, refused
    assert _node_labels(site)["foo"] == "bar"
    unbound = await site.admin.ok(LABEL, **where, label="foo=bar", opt="unlabel")
    assert unbound["label"] == "foo=bar" and "foo" not in _node_labels(site)


def _node_labels(site: Site) -> dict[str, str]:
    node = site.fake.get("Node", "k8s-master")
    assert node is not None
    labels: dict[str, str] = node["metadata"]["labels"]
    return labels


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"label": "kyy-gpu=$(reboot)"}, "label"),
        ({"label": "a b=c"}, "label"),
        ({"label": "x;rm -rf /=1"}, "label"),
        ({"label": "kyy-gpu=`id`"}, "label"),
        ({"label": "novalue", "opt": "label"}, "label"),
        ({"label": ""}, "label"),
        ({"opt": "rm -rf"}, "opt"),
        ({"worker_node": "node;id"}, "worker_node"),
        ({"worker_node": "$(hostname)"}, "worker_node"),
    ],
)
async def test_bad_labels_are_refused_and_nothing_reaches_the_cluster(
    site: Site, change: dict[str, str], named: str
) -> None:
    params = {"cpcid": site.cpcid, "clusterid": site.clusterid, "worker_node": "k8s-master"}
    params |= {"label": "kyy-gpu=true", "opt": "label", **change}
    assert named in await site.admin.refused(LABEL, **params)
    assert site.fake.requests == []


async def test_only_admins_label_nodes(site: Site) -> None:
    bob = await site.api.user("bob", "acme", admin=False)
    params = {"cpcid": site.cpcid, "clusterid": site.clusterid, "worker_node": "k8s-master"}
    assert "管理员" in await bob.refused(LABEL, **params, label="kyy-gpu=true", opt="label")
    assert site.fake.requests == []
