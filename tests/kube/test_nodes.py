"""Labels, cordon, drain and delete of nodes, against the fake API server over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from lightkube import AsyncClient

from kboss.errors import InvalidParameter, NotFound
from kboss.kube.nodes import (
    cordon,
    delete_node,
    drain,
    label_node,
    parse_label,
    uncordon,
    unlabel_node,
)
from tests.kubefake import KubeFake

FAST = {"poll_interval": 0.02}


# ---------------------------------------------------------------------------------------------
# Labels


async def test_label_and_unlabel_a_node(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    labels = await label_node(kube, "worker-1", "kyy-gpu", "true")
    assert labels["kyy-gpu"] == "true"
    assert fake.get("Node", "worker-1")["metadata"]["labels"]["kyy-gpu"] == "true"
    await label_node(kube, "worker-1", "kboss.io/gpu-model", "RTX5090-32G")
    labels = await unlabel_node(kube, "worker-1", "kyy-gpu")
    assert "kyy-gpu" not in labels and labels["kboss.io/gpu-model"] == "RTX5090-32G"
    assert "kyy-gpu" not in fake.get("Node", "worker-1")["metadata"]["labels"]
    await unlabel_node(kube, "worker-1", "never-there")  # like kubectl: removing an absent label is fine
    [patch] = fake.requests_to("PATCH")[:1]
    assert patch.content_type == "application/merge-patch+json"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("bad key", "v"),
        ("-x", "v"),
        ("x" * 64, "v"),
        ("Example.com/x", "v"),
        ("k", "bad value"),
        ("k", "v" * 64),
        ("k", "$(reboot)"),
        ("a/b/c", "v"),
    ],
)
async def test_invalid_labels_are_refused_before_any_request(
    fake: KubeFake, kube: AsyncClient, key: str, value: str
) -> None:
    fake.add_node("worker-1")
    fake.clear_requests()
    with pytest.raises(InvalidParameter):
        await label_node(kube, "worker-1", key, value)
    with pytest.raises(InvalidParameter):
        await unlabel_node(kube, "worker-1", key if key != "k" else "bad key")
    assert fake.requests == []


async def test_bad_node_names_are_refused_before_any_request(fake: KubeFake, kube: AsyncClient) -> None:
    for name in ("", "Worker_1", "../nodes", "a/b", "x" * 254):
        with pytest.raises(InvalidParameter) as caught:
            await label_node(kube, name, "k", "v")
        assert caught.value.parameter == "node_name"
    assert fake.requests == []


async def test_unknown_node_is_not_found_by_name(fake: KubeFake, kube: AsyncClient) -> None:
    for operation in (
        label_node(kube, "ghost", "k", "v"),
        unlabel_node(kube, "ghost", "k"),
        cordon(kube, "ghost"),
        delete_node(kube, "ghost"),
        drain(kube, "ghost", 1.0),
    ):
        with pytest.raises(NotFound, match="ghost"):
            await operation


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("kyy-gpu=true", ("kyy-gpu", "true")),
        ("k=", ("k", "")),
        ("kboss.io/zone=a", ("kboss.io/zone", "a")),
        ("kyy-gpu", ("kyy-gpu", None)),
        ("kyy-gpu-", ("kyy-gpu", None)),
        (" k=v ", ("k", "v")),
    ],
)
def test_parse_label(text: str, parsed: tuple[str, str | None]) -> None:
    assert parse_label(text) == parsed


@pytest.mark.parametrize("text", ["", "=v", "k=v=w", "a b=c", "k=$(id)", "-"])
def test_parse_label_refuses_bad_text(text: str) -> None:
    with pytest.raises(InvalidParameter):
        parse_label(text, "label")


# ---------------------------------------------------------------------------------------------
# Cordon, delete


async def test_cordon_and_uncordon(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    assert await cordon(kube, "worker-1") is True
    assert fake.get("Node", "worker-1")["spec"]["unschedulable"] is True
    assert await cordon(kube, "worker-1") is False
    assert await uncordon(kube, "worker-1") is True
    assert "unschedulable" not in fake.get("Node", "worker-1")["spec"]
    assert await uncordon(kube, "worker-1") is False
    assert len(fake.requests_to("PATCH")) == 2


async def test_delete_node(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    await delete_node(kube, "worker-1")
    assert fake.get("Node", "worker-1") is None


# ---------------------------------------------------------------------------------------------
# Drain


def _seed_worker(fake: KubeFake) -> None:
    fake.add_node("worker-1")
    fake.add_node("worker-2")
    fake.add_pod("web-1", "shop", node="worker-1", owner=("ReplicaSet", "web-5d"), labels={"app": "web"})
    fake.add_pod("web-2", "shop", node="worker-1", owner=("ReplicaSet", "web-5d"), labels={"app": "web"})
    fake.add_pod("batch-1", "shop", node="worker-1", owner=("Job", "batch"), state="completed")
    fake.add_pod("kube-proxy-x", "kube-system", node="worker-1", owner=("DaemonSet", "kube-proxy"))
    fake.add_pod("etcd-worker-1", "kube-system", node="worker-1", mirror=True)
    fake.add_pod("web-3", "shop", node="worker-2", owner=("ReplicaSet", "web-5d"), labels={"app": "web"})


async def test_drain_evicts_pods_and_skips_daemonset_and_mirror_pods(fake: KubeFake, kube: AsyncClient) -> None:
    _seed_worker(fake)
    result = await drain(kube, "worker-1", 5.0, **FAST)
    assert result.ok
    assert [str(p) for p in result.evicted] == ["shop/batch-1", "shop/web-1", "shop/web-2"]
    assert sorted(str(s.pod) for s in result.skipped) == ["kube-system/etcd-worker-1", "kube-system/kube-proxy-x"]
    assert result.failed == [] and result.deleted == []
    assert [p["metadata"]["name"] for p in fake.list("Pod", "shop")] == ["web-3"]
    assert fake.get("Node", "worker-1")["spec"]["unschedulable"] is True
    assert len(fake.requests_to("POST", "/eviction")) == 3
    assert fake.requests_to("DELETE") == []  # evictions only: budgets are honoured
    assert result.as_dict()["ok"] is True


async def test_pdb_blocks_the_drain_and_nothing_is_deleted(fake: KubeFake, kube: AsyncClient) -> None:
    _seed_worker(fake)
    fake.add_pdb("web", "shop", {"app": "web"}, min_available=3)
    # Long enough for several retries even on a loaded machine (each 429 is retried after poll_interval).
    result = await drain(kube, "worker-1", 1.5, **FAST)
    assert not result.ok
    assert [str(p) for p in result.evicted] == ["shop/batch-1"]
    assert sorted(str(f.pod) for f in result.failed) == ["shop/web-1", "shop/web-2"]
    assert all("web needs 3 healthy pods and has 3 currently" in f.reason for f in result.failed)
    assert {p["metadata"]["name"] for p in fake.list("Pod", "shop")} == {"web-1", "web-2", "web-3"}
    assert len(fake.requests_to("POST", "/pods/web-1/eviction")) > 2  # 429s were retried until the timeout


async def test_force_deletes_what_the_pdb_kept(fake: KubeFake, kube: AsyncClient) -> None:
    _seed_worker(fake)
    fake.add_pdb("web", "shop", {"app": "web"}, max_unavailable=0)
    result = await drain(kube, "worker-1", 0.2, force=True, **FAST)
    assert result.ok
    assert [str(p) for p in result.deleted] == ["shop/web-1", "shop/web-2"]
    assert [p["metadata"]["name"] for p in fake.list("Pod", "shop")] == ["web-3"]
    deletes = fake.requests_to("DELETE", "/pods/")
    assert len(deletes) == 2 and all(d.query["gracePeriodSeconds"] == "0" for d in deletes)


@contextlib.asynccontextmanager
async def _replacing_controller(fake: KubeFake) -> AsyncIterator[None]:
    """Plays the ReplicaSet controller: every evicted web pod is replaced, ready, on worker-2."""

    async def loop() -> None:
        gone_at: dict[str, float] = {}
        clock = asyncio.get_running_loop().time
        while True:
            present = {p["metadata"]["name"] for p in fake.list("Pod", "shop")}
            for gone in {"web-1", "web-2"} - present - gone_at.keys():
                gone_at[gone] = clock()
            for gone, since in gone_at.items():
                # A new pod takes a moment to start and become ready: meanwhile the budget says no.
                if clock() - since > 0.1 and fake.get("Pod", f"{gone}-new", "shop") is None:
                    fake.add_pod(
                        f"{gone}-new", "shop", node="worker-2", owner=("ReplicaSet", "web-5d"), labels={"app": "web"}
                    )
            await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_drain_retries_until_the_budget_allows(fake: KubeFake, kube: AsyncClient) -> None:
    _seed_worker(fake)
    fake.add_pdb("web", "shop", {"app": "web"}, max_unavailable=1)
    # The budget expects the ReplicaSet's scale: one pod may be missing at a time, until it is replaced.
    fake.add(
        {
            "kind": "ReplicaSet",
            "metadata": {"name": "web-5d", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
        }
    )
    async with _replacing_controller(fake):
        result = await drain(kube, "worker-1", 5.0, concurrency=2, **FAST)
    assert result.ok, result.failed
    assert [str(p) for p in result.evicted] == ["shop/batch-1", "shop/web-1", "shop/web-2"]
    statuses = {r.status for r in fake.requests_to("POST", "/eviction")}
    assert statuses == {201, 429}


async def test_unmanaged_pods_need_force(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    fake.add_pod("bare", "shop", node="worker-1")
    fake.add_pod("finished", "shop", node="worker-1", state="completed")  # nothing to lose: goes anyway
    result = await drain(kube, "worker-1", 1.0, **FAST)
    assert [str(f.pod) for f in result.failed] == ["shop/bare"] and "强制移除" in result.failed[0].reason
    assert [str(p) for p in result.evicted] == ["shop/finished"]
    assert fake.get("Pod", "bare", "shop") is not None
    result = await drain(kube, "worker-1", 1.0, force=True, **FAST)
    assert result.ok and [str(p) for p in result.evicted] == ["shop/bare"]
    assert fake.get("Pod", "bare", "shop") is None


async def test_drain_waits_for_terminating_pods(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    fake.add_pod("slow", "shop", node="worker-1", owner=("StatefulSet", "db"))
    fake.pod_deletion_delay = 0.3
    started = asyncio.get_running_loop().time()
    result = await drain(kube, "worker-1", 5.0, **FAST)
    assert result.ok and [str(p) for p in result.evicted] == ["shop/slow"]
    assert asyncio.get_running_loop().time() - started >= 0.3


async def test_pods_still_terminating_at_the_timeout_fail_or_are_forced(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    fake.add_pod("stuck", "shop", node="worker-1", owner=("StatefulSet", "db"))
    fake.pod_deletion_delay = 60
    result = await drain(kube, "worker-1", 0.2, **FAST)
    assert [str(f.pod) for f in result.failed] == ["shop/stuck"] and result.evicted == []
    result = await drain(kube, "worker-1", 0.2, force=True, **FAST)
    assert result.ok and [str(p) for p in result.deleted] == ["shop/stuck"]
    assert fake.get("Pod", "stuck", "shop") is None


async def test_replacement_with_the_same_name_counts_as_gone(fake: KubeFake, kube: AsyncClient) -> None:
    fake.add_node("worker-1")
    fake.add_pod("db-0", "shop", node="worker-1", owner=("StatefulSet", "db"))
    fake.pod_deletion_delay = 0.1

    async def recreate() -> None:  # a StatefulSet recreates db-0 at once, on the same node
        for _ in range(500):
            if fake.get("Pod", "db-0", "shop") is None:
                fake.add_pod("db-0", "shop", node="worker-1", owner=("StatefulSet", "db"))
                return
            await asyncio.sleep(0.01)

    task = asyncio.create_task(recreate())
    result = await drain(kube, "worker-1", 5.0, **FAST)
    await task
    assert result.ok and [str(p) for p in result.evicted] == ["shop/db-0"]
