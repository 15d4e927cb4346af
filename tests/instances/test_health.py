"""Which instances a worker's removal strands, from the site's node and pod rows alone."""

from __future__ import annotations

from typing import Any

from kboss.db.models_instances import Instance
from kboss.instances.health import health_of, node_at, stranded_by_removal
from kboss.kube import capacity as cap


def _node(name: str, ip: str, cpu: str, requested: str = "0", **extra: Any) -> dict[str, Any]:
    return {
        "node_name": name, "node_internalip": ip, "allocatable": {"cpu": cpu, "memory": "64Gi", "pods": "110"},
        "requested": {"cpu": requested}, "pods": 1, "labels": {}, "taints": [], "unschedulable": False, **extra,
    }  # fmt: skip


def _instance(name: str) -> Instance:
    return Instance(id=name, source_name=name, namespace_name="ns", podcd_name=name, source_podengine="Deployment")


def _pod(instance: str, node: str, running: str = "Running") -> dict[str, str]:
    return {"pod_namespace": "ns", "pod_name": f"{instance}-7d-x1", "pod_node": node, "pod_running": running}


CORES_4 = cap.Product("p", {cap.CPU: 4000})


def test_two_instances_cannot_both_count_on_one_free_slot() -> None:
    nodes = [_node("gone", "10.0.0.1", "16"), _node("other", "10.0.0.2", "8", requested="2")]  # 6 cores free
    first, second = _instance("a"), _instance("b")
    pods = [_pod("a", "gone"), _pod("b", "gone")]
    stranded = stranded_by_removal(nodes, pods, node_at(nodes, "10.0.0.1"), [(first, CORES_4), (second, CORES_4)])
    assert [s.instance.id for s in stranded] == ["b"] and "Insufficient cpu" in stranded[0].why


def test_a_cordoned_or_tainted_node_takes_nothing() -> None:
    taint = [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]
    nodes = [_node("gone", "10.0.0.1", "16"), _node("closed", "10.0.0.2", "16", unschedulable=True),
             _node("tainted", "10.0.0.3", "16", taints=taint)]  # fmt: skip
    stranded = stranded_by_removal(nodes, [_pod("a", "gone")], "gone", [(_instance("a"), CORES_4)])
    assert len(stranded) == 1 and "unschedulable" in stranded[0].why and "taint" in stranded[0].why


def test_an_instance_elsewhere_or_a_machine_outside_the_cluster_is_not_stranded() -> None:
    nodes = [_node("gone", "10.0.0.1", "16"), _node("other", "10.0.0.2", "1")]
    assert stranded_by_removal(nodes, [_pod("a", "other")], "gone", [(_instance("a"), CORES_4)]) == []
    assert node_at(nodes, "10.9.9.9") == ""


def test_health_follows_the_pods() -> None:
    web = _instance("web")
    assert health_of(web, [_pod("web", "n1")]).state == "running"
    waiting = health_of(web, [_pod("web", "n1"), _pod("web", "<none>", "Pending")])
    assert waiting.state == "pending" and "1/2" in waiting.reason and "Pending" in waiting.reason
    assert health_of(web, []).state == "pending" and health_of(web, None).state == "unknown"
    web.health, web.health_reason = "degraded", "node gone"
    assert health_of(web, [_pod("web", "<none>", "Pending")]).state == "degraded"
    assert health_of(web, [_pod("web", "n2")]).state == "running"  # runs again: the mark no longer shows
