"""Pod usage from the metrics API (metrics.k8s.io/v1beta1), read over HTTP from the fake; absent API → None."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import AsyncClient

from kboss.kube.client import KubeApiError, open_client
from kboss.kube.metrics import PodUsage, pod_usage, summarize, usage_columns
from tests.kubefake import FakeKubeServer, KubeFake

MIB = 2**20


async def test_usage_is_summed_over_containers_per_pod(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_pod_metrics(
        "web-0", "shop", containers={"app": {"cpu": "250m", "memory": "128Mi"}, "proxy": {"cpu": "1", "memory": "1Gi"}}
    )
    fake.add_pod_metrics("coredns-1", "kube-system", containers={"coredns": {"cpu": "4123456n", "memory": "2600Ki"}})
    usage = await pod_usage(kube)
    assert usage == {
        ("shop", "web-0"): PodUsage(cpu_millicores=1250, memory_bytes=1152 * MIB),
        # Rounded up once per pod, as Quantity.MilliValue() does: 4.123456m → 5m.
        ("kube-system", "coredns-1"): PodUsage(cpu_millicores=5, memory_bytes=2600 * 1024),
    }
    assert [r.path for r in fake.requests_to("GET", "metrics.k8s.io")] == ["/apis/metrics.k8s.io/v1beta1/pods"]


async def test_one_namespace(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_pod_metrics("web-0", "shop", containers={"app": {"cpu": "250m", "memory": "128Mi"}})
    fake.add_pod_metrics("coredns-1", "kube-system", containers={"coredns": {"cpu": "4m", "memory": "20Mi"}})
    assert await pod_usage(kube, namespace="shop") == {("shop", "web-0"): PodUsage(250, 128 * MIB)}
    assert fake.requests_to("GET", "metrics.k8s.io")[0].path == "/apis/metrics.k8s.io/v1beta1/namespaces/shop/pods"


async def test_an_empty_metrics_api_is_not_an_absent_one(fake: KubeFake, kube: AsyncClient) -> None:
    fake.enable_metrics()
    assert await pod_usage(kube) == {}


async def test_without_metrics_server_usage_is_unknown_not_an_error(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_pod("web-0", "shop")
    assert await pod_usage(kube) is None
    assert [r.status for r in fake.requests_to("GET", "metrics.k8s.io")] == [404]


async def test_a_metrics_api_that_is_down_is_unknown_too(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_pod_metrics("web-0", "shop", containers={"app": {"cpu": "250m", "memory": "128Mi"}})
    fake.metrics_down = True  # registered APIService, service not answering: kube-aggregator's plain-text 503
    assert await pod_usage(kube) is None
    assert [r.status for r in fake.requests_to("GET", "metrics.k8s.io")] == [503]


async def test_other_failures_are_still_errors(
    kube_server: FakeKubeServer, fake: KubeFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.enable_metrics()
    monkeypatch.setattr(fake, "forbidden_tokens", {"limited"})
    async with open_client(kube_server.kubeconfig(token="limited")) as client:
        with pytest.raises(KubeApiError, match="403"):
            await pod_usage(client)


def test_pods_with_unreadable_usage_are_left_out() -> None:
    items: list[dict[str, Any]] = [
        {"metadata": {"name": "ok", "namespace": "a"}, "containers": [{"name": "c", "usage": {"cpu": "1"}}]},
        {"metadata": {"name": "bad", "namespace": "a"}, "containers": [{"name": "c", "usage": {"cpu": "lots"}}]},
        {"metadata": {"name": "nameless"}, "containers": []},
    ]
    assert summarize(items) == {("a", "ok"): PodUsage(1000, 0)}


def test_usage_columns() -> None:
    usage = {("shop", "web-0"): PodUsage(250, 128 * MIB), ("shop", "big-0"): PodUsage(2000, 2600 * 1024 + 1)}
    assert usage_columns(usage, "shop", "web-0") == {"pod_cpu_usage": "250m", "pod_memory_usage": "128Mi"}
    assert usage_columns(usage, "shop", "big-0") == {"pod_cpu_usage": "2", "pod_memory_usage": "2662401"}
    unknown = {"pod_cpu_usage": "-", "pod_memory_usage": "-"}
    assert usage_columns(usage, "shop", "pending-0") == unknown
    assert usage_columns(None, "shop", "web-0") == unknown
