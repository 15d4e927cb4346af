"""Rows as `kubectl get pods -A -o wide` / `kubectl get nodes -o wide` print them, from objects served over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Node, Pod

from kboss.kube.ages import age, human_duration
from kboss.kube.views import (
    list_node_details,
    list_node_rows,
    list_pod_rows,
    node_details,
    node_row,
    pod_row,
)
from tests.kubefake import KubeFake, node, pod
from tests.support.spec import success_example

NOW = datetime(2025, 4, 9, 12, 0, 0, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# Ages: duration.HumanDuration, boundaries included


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=-3), "<invalid>"),
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=45), "45s"),
        (timedelta(seconds=119.9), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(minutes=5, seconds=30), "5m30s"),
        (timedelta(minutes=9, seconds=59), "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=17, seconds=40), "17m"),
        (timedelta(minutes=179, seconds=59), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=3, minutes=5), "3h5m"),
        (timedelta(hours=7, minutes=59), "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=17, minutes=59), "17h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=5, hours=18), "5d18h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=70, hours=5), "70d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=740), "2y10d"),
        (timedelta(days=365 * 8 - 1), "7y364d"),
        (timedelta(days=365 * 8), "8y"),
        (timedelta(days=365 * 9 + 100), "9y"),
    ],
)
def test_human_duration_matches_kubectl(delta: timedelta, text: str) -> None:
    assert human_duration(delta) == text


def test_age_of_missing_or_naive_timestamps() -> None:
    assert age(None, NOW) == "<unknown>"
    assert age(datetime(2025, 4, 9, 11, 0, 0), NOW) == "60m"  # naive means UTC, as the API speaks


# ---------------------------------------------------------------------------------------------
# Pods, seeded in the fake and read back over HTTP


async def test_pod_rows_have_exactly_the_spec_fields(fake: KubeFake, kube: AsyncClient) -> None:
    created = NOW - timedelta(hours=17, minutes=3)
    fake.add_pod(
        "mysql-548dbbfc8f-dxltl",
        "my-namespace",
        state="image_pull_backoff",
        node="k8s-worker-1",
        ip="10.244.5.3",
        owner=("ReplicaSet", "mysql-548dbbfc8f"),
        created=created,
    )
    rows = await list_pod_rows(kube, now=NOW)
    expected = success_example("/pcapi/api/v1/cluster/common/get_cluster_pods")["data"]["rows"][0]
    assert set(rows[0]) == set(expected)
    assert rows[0] == {
        "pod_namespace": "my-namespace",
        "pod_name": "mysql-548dbbfc8f-dxltl",
        "pod_ready": "0/1",
        "pod_running": "ImagePullBackOff",
        "pod_restart": "0",
        "pod_age": "17h",
        "pod_ip": "10.244.5.3",
        "pod_node": "k8s-worker-1",
        "pod_nominated_node": "<none>",
        "pod_readiness_gates": "<none>",
    }


@pytest.mark.parametrize(
    ("state", "options", "ready", "status", "restarts"),
    [
        ("running", {"containers": 2}, "2/2", "Running", "0"),
        ("running", {"restarts": 3}, "1/1", "Running", "3 (5m ago)"),
        ("not_ready", {}, "0/1", "Running", "0"),
        ("pending", {}, "0/1", "Pending", "0"),
        ("container_creating", {}, "0/1", "ContainerCreating", "0"),
        ("image_pull_backoff", {}, "0/1", "ImagePullBackOff", "0"),
        ("err_image_pull", {}, "0/1", "ErrImagePull", "0"),
        ("crash_loop", {"restarts": 7}, "0/1", "CrashLoopBackOff", "7 (5m ago)"),
        ("completed", {}, "0/1", "Completed", "0"),
        ("error", {}, "0/1", "Error", "0"),
        # The kubelet marks an evicted pod's containers ContainerStatusUnknown, and that reason wins.
        ("evicted", {}, "0/1", "ContainerStatusUnknown", "0"),
        ("init", {"init_containers": 2}, "0/1", "Init:0/2", "0"),
        ("terminating", {}, "1/1", "Terminating", "0"),
    ],
)
async def test_pod_status_column_like_kubectl(
    fake: KubeFake, kube: AsyncClient, state: str, options: dict[str, Any], ready: str, status: str, restarts: str
) -> None:
    fake.add_pod("p", "ns1", state=state, **options)
    [row] = await list_pod_rows(kube, now=datetime.now(UTC))
    assert (row["pod_ready"], row["pod_running"], row["pod_restart"]) == (ready, status, restarts)


async def test_unscheduled_pod_shows_none_for_node_and_ip(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_pod("waiting", state="pending", nominated_node="worker-2")
    [row] = await list_pod_rows(kube, now=NOW)
    assert (row["pod_node"], row["pod_ip"], row["pod_nominated_node"]) == ("<none>", "<none>", "worker-2")


async def test_readiness_gates_count_true_conditions(fake: KubeFake, kube: AsyncClient) -> None:
    gates = [("example.com/lb", True), ("example.com/dns", False), ("example.com/fw", None)]
    fake.add_pod("gated", readiness_gates=gates)
    [row] = await list_pod_rows(kube, now=NOW)
    assert row["pod_readiness_gates"] == "1/3"


async def test_pods_of_one_namespace_sorted_like_the_api(fake: KubeFake, kube: AsyncClient) -> None:
    for name, ns in [("b", "one"), ("a", "two"), ("a", "one")]:
        fake.add_pod(name, ns)
    assert [(r["pod_namespace"], r["pod_name"]) for r in await list_pod_rows(kube)] == [
        ("one", "a"),
        ("one", "b"),
        ("two", "a"),
    ]
    assert [r["pod_name"] for r in await list_pod_rows(kube, namespace="two")] == ["a"]


# ---------------------------------------------------------------------------------------------
# printPod corner cases, on objects built directly


def _pod(obj: dict[str, Any]) -> Pod:
    return Pod.from_dict(obj)


def _status_of(**options: Any) -> tuple[str, str, str]:
    row = pod_row(_pod(pod("p", **options)), NOW)
    return row["pod_ready"], row["pod_running"], row["pod_restart"]


def test_failed_init_container_reasons() -> None:
    base = pod("p", state="init", init_containers=1)
    cases = [
        ({"terminated": {"exitCode": 2, "reason": "Error"}}, "Init:Error"),
        ({"terminated": {"exitCode": 3}}, "Init:ExitCode:3"),
        ({"terminated": {"exitCode": 137, "signal": 9}}, "Init:Signal:9"),
        ({"waiting": {"reason": "CrashLoopBackOff"}}, "Init:CrashLoopBackOff"),
        ({"waiting": {"reason": "PodInitializing"}}, "Init:0/1"),
    ]
    for state, reason in cases:
        base["status"]["initContainerStatuses"][0]["state"] = state
        assert pod_row(_pod(base), NOW)["pod_running"] == reason


def test_restarts_of_init_containers_count_only_while_initializing() -> None:
    obj = pod("p", state="init", init_containers=1)
    obj["status"]["initContainerStatuses"][0]["restartCount"] = 4
    assert pod_row(_pod(obj), NOW)["pod_restart"] == "4"
    done = pod("p", state="running", init_containers=1)
    done["status"]["initContainerStatuses"][0]["restartCount"] = 4
    assert pod_row(_pod(done), NOW)["pod_restart"] == "0"


def test_sidecar_containers_count_as_containers() -> None:
    obj = pod("p", state="running", init_containers=1)
    obj["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    sidecar = obj["status"]["initContainerStatuses"][0]
    sidecar.update(state={"running": {"startedAt": "2025-04-09T10:00:00Z"}}, started=True, ready=True, restartCount=2)
    sidecar["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": "2025-04-09T11:00:00Z"}}
    row = pod_row(_pod(obj), NOW)
    assert (row["pod_ready"], row["pod_running"], row["pod_restart"]) == ("2/2", "Running", "2 (60m ago)")


def test_terminated_main_container_without_reason_shows_exit_code_or_signal() -> None:
    obj = pod("p", state="error")
    obj["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 3}}
    assert pod_row(_pod(obj), NOW)["pod_running"] == "ExitCode:3"
    obj["status"]["containerStatuses"][0]["state"] = {"terminated": {"exitCode": 0, "signal": 15}}
    assert pod_row(_pod(obj), NOW)["pod_running"] == "Signal:15"


def test_completed_container_next_to_a_running_one() -> None:
    obj = pod("p", state="running", containers=["main", "job"])
    obj["status"]["containerStatuses"][1]["state"] = {"terminated": {"exitCode": 0, "reason": "Completed"}}
    obj["status"]["containerStatuses"][1]["ready"] = False
    assert _ready_status(obj) == ("1/2", "Running")
    for condition in obj["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition["status"] = "False"
    assert _ready_status(obj) == ("1/2", "NotReady")


def _ready_status(obj: dict[str, Any]) -> tuple[str, str]:
    row = pod_row(_pod(obj), NOW)
    return row["pod_ready"], row["pod_running"]


def test_first_container_reason_wins() -> None:
    obj = pod("p", state="running", containers=["a", "b"])
    obj["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ImagePullBackOff"}}
    obj["status"]["containerStatuses"][1]["state"] = {"waiting": {"reason": "CrashLoopBackOff"}}
    assert pod_row(_pod(obj), NOW)["pod_running"] == "ImagePullBackOff"


def test_deleted_pods_on_lost_nodes_and_gated_pods() -> None:
    lost = pod("p", state="terminating", overrides={"status": {"reason": "NodeLost"}})
    assert pod_row(_pod(lost), NOW)["pod_running"] == "Unknown"
    finished = pod("p", state="completed", overrides={"metadata": {"deletionTimestamp": "2025-04-09T12:00:00Z"}})
    assert pod_row(_pod(finished), NOW)["pod_running"] == "Completed"
    gated = pod("p", state="pending")
    gated["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]
    assert pod_row(_pod(gated), NOW)["pod_running"] == "SchedulingGated"


def test_status_reason_of_the_pod_shows_when_no_container_says_more() -> None:
    obj = pod("p", state="pending", overrides={"status": {"reason": "OutOfcpu"}})
    assert pod_row(_pod(obj), NOW)["pod_running"] == "OutOfcpu"
    evicted = pod("p", state="evicted")
    del evicted["status"]["containerStatuses"]
    assert _status_of(state="evicted")[1] == "ContainerStatusUnknown"
    assert pod_row(_pod(evicted), NOW)["pod_running"] == "Evicted"


# ---------------------------------------------------------------------------------------------
# Nodes


async def test_node_rows_like_the_spec_example(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("k8s-master", roles=["control-plane"], internal_ip="192.168.0.3", age=timedelta(days=5, hours=18))
    fake.add_node("k8s-worker-20250408132243", internal_ip="192.168.0.2", created=NOW - timedelta(hours=21))
    rows = await list_node_rows(kube, now=NOW)
    example = success_example("/pcapi/api/v1/cluster/common/get_cluster_nodes")["data"]["rows"]
    assert [set(r) for r in rows] == [set(e) for e in example]
    assert rows[1] == example[1]
    assert rows[0]["node_role"] == "control-plane"


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({}, "Ready"),
        ({"ready": False}, "NotReady"),
        ({"ready": "Unknown"}, "NotReady"),
        ({"ready": None}, "Unknown"),
        ({"unschedulable": True}, "Ready,SchedulingDisabled"),
        ({"ready": False, "unschedulable": True}, "NotReady,SchedulingDisabled"),
    ],
)
def test_node_status_column(options: dict[str, Any], status: str) -> None:
    assert node_row(Node.from_dict(node("n", **options)), NOW)["node_status"] == status


@pytest.mark.parametrize(
    ("roles", "labels", "shown"),
    [
        ((), {}, "<none>"),
        (("control-plane",), {}, "control-plane"),
        (("worker", "control-plane", "gpu"), {}, "control-plane,gpu,worker"),
        ((), {"kubernetes.io/role": "master"}, "master"),
        (("master",), {"kubernetes.io/role": "master"}, "master"),
        ((), {"kubernetes.io/role": ""}, "<none>"),
        ((), {"node-role.kubernetes.io/": "x"}, "<none>"),
    ],
)
def test_node_roles(roles: tuple[str, ...], labels: dict[str, str], shown: str) -> None:
    assert node_row(Node.from_dict(node("n", roles=roles, labels=labels)), NOW)["node_role"] == shown


def test_node_without_node_info_or_addresses() -> None:
    obj = node("n", external_ip="1.2.3.4")
    row = node_row(Node.from_dict(obj), NOW)
    assert row["node_externalip"] == "1.2.3.4"
    del obj["status"]["nodeInfo"], obj["status"]["addresses"], obj["metadata"]["creationTimestamp"]
    row = node_row(Node.from_dict(obj), NOW)
    assert (row["node_internalip"], row["node_externalip"], row["node_osversion"]) == ("<none>", "<none>", "<unknown>")
    assert (row["node_age"], row["node_version"]) == ("<unknown>", "")


async def test_node_details_carry_resources_labels_and_taints(fake: KubeFake, kube: AsyncClient) -> None:
    taint = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    fake.add_node(
        "gpu-1",
        gpus=2,
        cpu="32",
        memory="128Gi",
        allocatable={"cpu": "31500m", "memory": "120Gi", "nvidia.com/gpu": "2", "pods": "110"},
        labels={"kyy-gpu": "true"},
        taints=[taint],
        unschedulable=True,
    )
    [details] = await list_node_details(kube, now=NOW)
    assert details["node_status"] == "Ready,SchedulingDisabled"
    assert details["ready"] is True and details["unschedulable"] is True
    assert details["labels"]["kyy-gpu"] == "true"
    assert details["capacity"]["nvidia.com/gpu"] == "2" and details["allocatable"]["cpu"] == "31500m"
    assert details["taints"] == [taint]
    assert node_details(Node.from_dict(node("plain")), NOW)["taints"] == []
