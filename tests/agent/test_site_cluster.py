"""The spec's /pcapi cluster endpoints over real HTTP, against the Kubernetes API fake."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.kubefake import KubeFake
from tests.support.site import site_agent
from tests.support.spec import field_names, success_example

PCAPI = "/pcapi/api/v1/cluster/common"


@pytest.fixture
async def site(data_dir: Path) -> Any:
    async with site_agent(data_dir) as client:
        yield client


def _cluster(fake: KubeFake) -> None:
    fake.add_node("k8s-master", roles=["control-plane"], age=timedelta(days=5, hours=18), internal_ip="192.168.0.3")
    fake.add_node(
        "k8s-worker-1",
        age=timedelta(hours=21),
        internal_ip="192.168.0.2",
        gpus=2,
        labels={"kboss.io/gpu-model": "RTX5090-32G"},
    )
    fake.add_pod(
        "mysql-0",
        "shop",
        state="image_pull_backoff",
        node="k8s-worker-1",
        owner=("StatefulSet", "mysql"),
        age=timedelta(hours=17),
        requests={"cpu": "1", "memory": "1Gi"},
    )


async def _ok(site: httpx.AsyncClient, method: str, path: str, **params: Any) -> Any:
    response = await site.request(
        method, f"{PCAPI}/{path}", **({"params": params} if method == "GET" else {"data": params})
    )
    body = response.json()
    assert response.status_code == 200 and body["status"] is True, body
    return body


async def test_nodes_and_pods_answer_the_spec_fields(site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str) -> None:
    _cluster(fake)
    nodes = await _ok(site, "GET", "get_cluster_nodes", kubeconfig=kubeconfig)
    assert field_names(success_example(f"{PCAPI}/get_cluster_nodes")) <= field_names(nodes)
    master = next(r for r in nodes["data"]["rows"] if r["node_name"] == "k8s-master")
    assert (master["node_role"], master["node_age"], master["node_status"]) == ("control-plane", "5d18h", "Ready")

    pods = await _ok(site, "GET", "get_cluster_pods", kubeconfig=kubeconfig)
    assert field_names(success_example(f"{PCAPI}/get_cluster_pods")) <= field_names(pods)
    row = pods["data"]["rows"][0]
    assert (row["pod_ready"], row["pod_running"], row["pod_age"]) == ("0/1", "ImagePullBackOff", "17h")


async def test_label_and_unlabel_a_node(site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str) -> None:
    _cluster(fake)
    body = await _ok(
        site,
        "POST",
        "node_label_opt",
        kubeconfig=kubeconfig,
        worker_node="k8s-worker-1",
        label="kyy-gpu=true",
        opt="label",
    )
    assert body["info"] == "节点绑定标签成功"
    assert fake.get("Node", "k8s-worker-1")["metadata"]["labels"]["kyy-gpu"] == "true"
    await _ok(
        site,
        "POST",
        "node_label_opt",
        kubeconfig=kubeconfig,
        worker_node="k8s-worker-1",
        label="kyy-gpu",
        opt="unlabel",
    )
    assert "kyy-gpu" not in fake.get("Node", "k8s-worker-1")["metadata"]["labels"]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"label": "kyy-gpu=$(reboot)", "opt": "label"}, "label"),
        ({"label": "a b=c", "opt": "label"}, "label"),
        ({"label": "ok=yes", "opt": "rm -rf"}, "opt"),
        ({"label": "ok=yes", "opt": "label", "worker_node": "node;id"}, "worker_node"),
    ],
)
async def test_bad_labels_never_reach_the_cluster(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str, params: dict[str, str], named: str
) -> None:
    _cluster(fake)
    fake.clear_requests()
    body = (
        await site.post(
            f"{PCAPI}/node_label_opt", data={"kubeconfig": kubeconfig, "worker_node": "k8s-worker-1", **params}
        )
    ).json()
    assert body["status"] is False and named in body["info"]
    assert fake.requests == []


async def test_unknown_node_is_a_clear_error(site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str) -> None:
    _cluster(fake)
    body = (
        await site.post(
            f"{PCAPI}/node_label_opt",
            data={"kubeconfig": kubeconfig, "worker_node": "ghost", "label": "a=b", "opt": "label"},
        )
    ).json()
    assert body["status"] is False and "ghost" in body["info"]


async def test_cordon_drain_and_uncordon(site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str) -> None:
    _cluster(fake)
    fake.add_pod("web-1", "shop", node="k8s-worker-1", owner=("ReplicaSet", "web-7d"))
    fake.add_pod("agent-x", "kube-system", node="k8s-worker-1", owner=("DaemonSet", "agent"))
    body = await _ok(
        site, "POST", "node_state_switch", kubeconfig=kubeconfig, node_name="k8s-worker-1", state="cordon", darin="true"
    )
    report = body["data"]["report"]
    assert body["data"]["state"] == "cordon" and body["data"]["drain"] is True
    assert any("web-1" in pod for pod in report["evicted"]) and any(
        "agent-x" in issue["pod"] for issue in report["skipped"]
    )
    assert fake.get("Node", "k8s-worker-1")["spec"]["unschedulable"] is True
    await _ok(site, "POST", "node_state_switch", kubeconfig=kubeconfig, worker_node="k8s-worker-1", state="uncordon")
    assert not fake.get("Node", "k8s-worker-1")["spec"].get("unschedulable")


async def test_delete_node_stops_when_the_drain_fails_unless_forced(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str
) -> None:
    _cluster(fake)
    fake.add_pod("db-0", "shop", node="k8s-worker-1", owner=("StatefulSet", "db"), labels={"app": "db"})
    fake.add_pdb("db", "shop", {"app": "db"}, min_available=1)
    params = {"kubeconfig": kubeconfig, "node_name": "k8s-worker-1", "timeout": "2"}
    refused = (await site.post(f"{PCAPI}/delete_cluster_node", data=params)).json()
    assert refused["status"] is False and refused["data"]["report"]["failed"]
    assert fake.get("Node", "k8s-worker-1") is not None

    forced = await _ok(site, "POST", "delete_cluster_node", **params, force="true")
    assert forced["info"] == "delete node success" and forced["data"]["force"] is True
    assert fake.get("Node", "k8s-worker-1") is None


def _instance(kubeconfig: str, **extra: str) -> dict[str, str]:
    example = success_example("/dev/cpcc/cpcpodyaml/new_cpcpodyaml.dspy")["data"]
    return {**{k: str(v) for k, v in example.items()}, "kubeconfig": kubeconfig, **extra}


async def test_instance_objects_are_applied_and_deleted(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str
) -> None:
    _cluster(fake)
    applied = await _ok(site, "POST", "yaml_apply_delete", **_instance(kubeconfig, action="apply"))
    namespace = "4hbm8atruisou2bs24t-n-miwuhbeedm8mwafpiq8ps"
    assert fake.get("StatefulSet", "evfldtxjkr3jd8zxnfhd5-statefulset", namespace) is not None
    service = fake.get("Service", "evfldtxjkr3jd8zxnfhd5-service", namespace)
    assert service["spec"]["type"] == "NodePort" and service["spec"]["ports"][0]["nodePort"] == 30063
    assert applied["data"]["objects"]
    await _ok(site, "POST", "yaml_apply_delete", **_instance(kubeconfig, action="delete"))
    assert fake.get("StatefulSet", "evfldtxjkr3jd8zxnfhd5-statefulset", namespace) is None
    assert fake.get("Service", "evfldtxjkr3jd8zxnfhd5-service", namespace) is None


async def test_invalid_instance_parameters_send_nothing(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str
) -> None:
    fake.clear_requests()
    params = _instance(kubeconfig, action="apply", source_outsideport="80", source_cpurate="-1")
    body = (await site.post(f"{PCAPI}/yaml_apply_delete", data=params)).json()
    assert body["status"] is False and ("source_outsideport" in body["info"] or "source_cpurate" in body["info"])
    assert fake.requests == []


async def test_capacity_answers_the_products_no_node_can_host(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str
) -> None:
    _cluster(fake)
    products = [
        {"id": "small", "resources": [{"type": "cpu", "amount": 2}, {"type": "memory", "amount": 2048}]},
        {"id": "gpu2", "resources": [{"type": "gpu", "model": "RTX5090-32G", "amount": 2}]},
        {"id": "gpu4", "resources": [{"type": "gpu", "model": "RTX5090-32G", "amount": 4}]},
        {"id": "a100", "resources": [{"type": "gpu", "model": "A100-80G", "amount": 1}]},
    ]
    spec_answer = await site.get(
        f"{PCAPI}/determine_accommodat", params={"kubeconfig": kubeconfig, "resources": json.dumps(products)}
    )
    assert spec_answer.json() == ["gpu4", "a100"]
    detail = (
        await site.post(
            "/pcapi/api/v1/native/capacity", data={"kubeconfig": kubeconfig, "resources": json.dumps(products)}
        )
    ).json()
    by_id = {row["id"]: row for row in detail["data"]["rows"]}
    assert by_id["small"]["nodes_fitting"] >= 1 and by_id["gpu4"]["fits"] is False
    assert any("nvidia.com/gpu" in reason for reason in by_id["gpu4"]["reasons"])


async def test_unreachable_cluster_is_a_clear_failure(site: httpx.AsyncClient) -> None:
    kubeconfig = (
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
        "users: [{name: u, user: {token: t}}]\n"
    )
    body = (await site.get(f"{PCAPI}/get_cluster_nodes", params={"kubeconfig": kubeconfig})).json()
    assert body["status"] is False and "127.0.0.1:1" in body["info"]
    assert body["code"] == "cluster_unreachable"  # what the platform's site client classifies it by


async def test_unlabel_key_value_removes_only_the_matching_value(
    site: httpx.AsyncClient, fake: KubeFake, kubeconfig: str
) -> None:
    _cluster(fake)
    base = {"kubeconfig": kubeconfig, "worker_node": "k8s-worker-1"}
    await _ok(site, "POST", "node_label_opt", **base, label="foo=bar", opt="label")
    answer = await site.post(f"{PCAPI}/node_label_opt", data={**base, "label": "foo=baz", "opt": "unlabel"})
    body = answer.json()
    assert body["status"] is False, body
    assert '"bar"' in body["info"] and "foo" in body["info"], body
    assert fake.get("Node", "k8s-worker-1")["metadata"]["labels"]["foo"] == "bar"
    await _ok(site, "POST", "node_label_opt", **base, label="foo=bar", opt="unlabel")
    assert "foo" not in fake.get("Node", "k8s-worker-1")["metadata"]["labels"]
