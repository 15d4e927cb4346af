import json
import random
from typing import Any

import pytest

from kboss.errors import InvalidParameter
from kboss.kube.capacity import (
    GPU_MODEL_LABEL_KEYS,
    ClusterSnapshot,
    NodeInfo,
    PodInfo,
    Product,
    assess,
    parse_products,
    unplaceable_ids,
)

GiB = 2**30


def node(
    name: str,
    cpu: str = "8",
    memory: str = "32Gi",
    disk: str = "200Gi",
    pods: str = "110",
    gpus: int = 0,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    unschedulable: bool = False,
) -> dict[str, Any]:
    """A Node object as the API returns it."""
    allocatable = {"cpu": cpu, "memory": memory, "ephemeral-storage": disk, "pods": pods}
    if gpus:
        allocatable["nvidia.com/gpu"] = str(gpus)
    spec: dict[str, Any] = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
        "spec": spec,
        "status": {"allocatable": allocatable, "capacity": allocatable},
    }


def pod(
    on: str | None,
    requests: dict[str, str] | None = None,
    phase: str = "Running",
    init: list[dict[str, Any]] | None = None,
    overhead: dict[str, str] | None = None,
    limits: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A Pod object as the API returns it."""
    resources: dict[str, Any] = {"requests": requests or {}}
    if limits:
        resources["limits"] = limits
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "busybox", "resources": resources}]}
    if on:
        spec["nodeName"] = on
    if init:
        spec["initContainers"] = init
    if overhead:
        spec["overhead"] = overhead
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": spec, "status": {"phase": phase}}


def init_container(requests: dict[str, str], sidecar: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "i", "image": "busybox", "resources": {"requests": requests}}
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


def product(
    pid: str,
    cpu: float = 1,
    memory: int = 1024,
    disk: int | None = None,
    gpu: int = 0,
    model: str | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """A product as the platform sends it: cpu in cores, memory in Mi, disk in Gi."""
    resources: list[dict[str, Any]] = [{"type": "cpu", "amount": cpu}, {"type": "memory", "amount": memory}]
    if disk:
        resources.append({"type": "disk", "amount": disk})
    if gpu:
        resources.append({"type": "gpu", "model": model, "amount": gpu})
    return {"id": pid, "resources": resources, "labels": labels or []}


def cluster(nodes: list[dict[str, Any]], pods: list[dict[str, Any]] | None = None) -> ClusterSnapshot:
    return ClusterSnapshot.from_api(nodes, pods or [])


def test_a_product_fits_where_enough_is_free() -> None:
    snapshot = cluster([node("n1", cpu="8", memory="32Gi")])
    assert unplaceable_ids([product("small", cpu=4, memory=8192)], snapshot) == []
    assert unplaceable_ids([product("big", cpu=16)], snapshot) == ["big"]


def test_exactly_enough_is_enough() -> None:
    snapshot = cluster([node("n1", cpu="4", memory="8Gi", disk="100Gi")])
    assert unplaceable_ids([product("exact", cpu=4, memory=8192, disk=100)], snapshot) == []
    assert unplaceable_ids([product("one-mi-more", cpu=4, memory=8193)], snapshot) == ["one-mi-more"]


def test_running_pods_use_up_the_node() -> None:
    snapshot = cluster([node("n1", cpu="4")], [pod("n1", {"cpu": "3", "memory": "1Gi"})])
    fit = assess([product("p", cpu=2)], snapshot)[0]
    assert not fit.fits
    assert fit.reasons == {"Insufficient cpu": 1}
    assert fit.message == "0/1 nodes are available: 1 Insufficient cpu."


def test_finished_and_unscheduled_pods_free_their_requests() -> None:
    pods = [
        pod("n1", {"cpu": "3"}, phase="Succeeded"),
        pod("n1", {"cpu": "3"}, phase="Failed"),
        pod(None, {"cpu": "3"}, phase="Pending"),
        pod("gone-node", {"cpu": "3"}),
    ]
    assert unplaceable_ids([product("p", cpu=4)], cluster([node("n1", cpu="4")], pods)) == []


def test_a_pod_needs_its_largest_init_container_when_that_exceeds_its_containers() -> None:
    snapshot = cluster([node("n1", cpu="4")], [pod("n1", {"cpu": "1"}, init=[init_container({"cpu": "3"})])])
    assert unplaceable_ids([product("one", cpu=1), product("two", cpu=2)], snapshot) == ["two"]


def test_sidecar_init_containers_add_to_the_pod() -> None:
    init = [init_container({"cpu": "1"}, sidecar=True), init_container({"cpu": "500m"})]
    snapshot = cluster([node("n1", cpu="4")], [pod("n1", {"cpu": "1"}, init=init)])
    # 1 (container) + 1 (sidecar) = 2 used; the plain init container (0.5 + 1 sidecar) stays below that.
    assert unplaceable_ids([product("two", cpu=2), product("three", cpu=3)], snapshot) == ["three"]


def test_pod_overhead_and_limit_only_containers_count() -> None:
    pods = [pod("n1", {"cpu": "1"}, overhead={"cpu": "1"}), pod("n1", limits={"cpu": "1"})]
    snapshot = cluster([node("n1", cpu="4")], pods)
    assert unplaceable_ids([product("one", cpu=1), product("two", cpu=2)], snapshot) == ["two"]


def test_cordoned_nodes_are_not_candidates() -> None:
    fit = assess([product("p")], cluster([node("n1", unschedulable=True)]))[0]
    assert fit.reasons == {"node(s) were unschedulable": 1}


def test_hard_taints_keep_products_away_but_preferences_do_not() -> None:
    nodes = [
        node("a", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]),
        node("b", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]),
        node("c", taints=[{"key": "spot", "value": "yes", "effect": "PreferNoSchedule"}]),
    ]
    fit = assess([product("p")], cluster(nodes))[0]
    assert fit.fits and fit.nodes_fitting == 1
    assert fit.reasons == {
        "node(s) had untolerated taint {gpu: true}": 1,
        "node(s) had untolerated taint {node.kubernetes.io/not-ready: }": 1,
    }


def test_product_labels_select_nodes() -> None:
    nodes = [node("cpu-node", labels={"kyy-gpu": "false"}), node("gpu-node", labels={"kyy-gpu": "true"}, gpus=4)]
    snapshot = cluster(nodes)
    fit = assess([product("p", labels=["kyy-gpu=true"])], snapshot)[0]
    assert fit.nodes_fitting == 1
    assert fit.reasons == {"node(s) didn't match Pod's node affinity/selector": 1}
    assert unplaceable_ids([product("x", labels=["zone=nowhere"])], snapshot) == ["x"]


def test_gpu_products_need_free_cards_of_their_model() -> None:
    nodes = [
        node("a100", gpus=8, labels={"kboss.io/gpu-model": "A100-80G"}),
        node("5090", gpus=2, labels={"kboss.io/gpu-model": "RTX5090-32G"}),
        node("plain"),
    ]
    pods = [pod("5090", limits={"nvidia.com/gpu": "1"})]
    fits = assess(
        [product("one", gpu=1, model="RTX5090-32G"), product("two", gpu=2, model="RTX5090-32G")], cluster(nodes, pods)
    )
    assert [f.fits for f in fits] == [True, False]
    assert fits[1].reasons == {"node(s) didn't have the requested GPU model": 2, "Insufficient nvidia.com/gpu": 1}


def test_gpu_models_compare_loosely_and_the_kboss_label_wins_over_discovery() -> None:
    gfd = node("gfd", gpus=1, labels={"nvidia.com/gpu.product": "NVIDIA-GeForce-RTX-4090"})
    both = node(
        "both", gpus=1, labels={"kboss.io/gpu-model": "RTX4090-24G", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    )
    snapshot = cluster([gfd, both])
    assert GPU_MODEL_LABEL_KEYS[0] == "kboss.io/gpu-model"
    assert assess([product("p", gpu=1, model="nvidia geforce rtx_4090")], snapshot)[0].nodes_fitting == 1
    assert assess([product("p", gpu=1, model="rtx4090-24g")], snapshot)[0].nodes_fitting == 1
    assert unplaceable_ids([product("p", gpu=1, model="NVIDIA-A100-SXM4-80GB")], snapshot) == ["p"]


def test_a_gpu_product_without_model_takes_any_gpu_node() -> None:
    snapshot = cluster([node("g", gpus=2, labels={"kboss.io/gpu-model": "A100-80G"}), node("plain")])
    assert assess([product("p", gpu=2)], snapshot)[0].nodes_fitting == 1


def test_products_without_gpu_may_use_gpu_nodes() -> None:
    snapshot = cluster([node("g", gpus=8, labels={"kboss.io/gpu-model": "A100-80G"})])
    assert unplaceable_ids([product("cpu-only", cpu=2)], snapshot) == []


def test_a_full_pod_table_makes_a_node_unavailable() -> None:
    snapshot = cluster([node("n", pods="2")], [pod("n", {"cpu": "10m"}), pod("n", {"cpu": "10m"})])
    assert assess([product("p")], snapshot)[0].reasons == {"Too many pods": 1}


def test_disk_is_ephemeral_storage_in_gi() -> None:
    snapshot = cluster([node("n", disk="100Gi")], [pod("n", {"ephemeral-storage": "60Gi"})])
    fit = assess([product("fits", disk=40), product("too-big", disk=41)], snapshot)
    assert [f.fits for f in fit] == [True, False]
    assert fit[1].reasons == {"Insufficient ephemeral-storage": 1}


def test_the_message_reads_like_the_schedulers() -> None:
    nodes = [
        node("a", unschedulable=True),
        node("b", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}]),
        node("c", labels={"kyy-gpu": "true"}),
        node("d", labels={"kyy-gpu": "true"}, gpus=1),
        node("e"),
    ]
    fit = assess([product("p", gpu=2, labels=["kyy-gpu=true"])], cluster(nodes))[0]
    assert fit.as_dict() == {
        "id": "p",
        "fits": False,
        "nodes_fitting": 0,
        "nodes_total": 5,
        "reasons": {
            "node(s) were unschedulable": 1,
            "node(s) had untolerated taint {gpu: true}": 1,
            "node(s) didn't match Pod's node affinity/selector": 1,
            "Insufficient nvidia.com/gpu": 2,
        },
        "message": "0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {gpu: true}, 1 node(s) were unschedulable, "
        "2 Insufficient nvidia.com/gpu.",
    }


def test_an_empty_cluster_hosts_nothing() -> None:
    fit = assess([product("p")], cluster([]))[0]
    assert (fit.fits, fit.message) == (False, "0/0 nodes are available.")


def test_order_of_the_request_is_kept() -> None:
    snapshot = cluster([node("n", cpu="4")])
    products = [product(name, cpu=cpu) for name, cpu in [("z", 8), ("a", 1), ("m", 16), ("b", 8)]]
    assert unplaceable_ids(products, snapshot) == ["z", "m", "b"]


def test_products_arrive_as_json_text_a_list_or_one_object() -> None:
    snapshot = cluster([node("n", cpu="4")])
    big = product("big", cpu=64)
    big["name"] = "extra fields are fine"
    assert unplaceable_ids(json.dumps([big]), snapshot) == ["big"]
    assert unplaceable_ids(big, snapshot) == ["big"]
    assert unplaceable_ids([], snapshot) == []


def test_the_design_example_parses_in_scheduler_units() -> None:
    example = {
        "id": "x",
        "resources": [
            {"type": "cpu", "amount": 4},
            {"type": "memory", "amount": 8192},
            {"type": "gpu", "model": "RTX5090-32G", "amount": 2},
            {"type": "disk", "amount": 100},
        ],
        "labels": ["kyy-gpu=true"],
    }
    (parsed,) = parse_products(example)
    assert parsed.requests == {"cpu": 4000, "memory": 8 * GiB, "nvidia.com/gpu": 2, "ephemeral-storage": 100 * GiB}
    assert parsed.selector == {"kyy-gpu": "true"}


@pytest.mark.parametrize(
    ("bad", "parameter"),
    [
        ("not json", "resources"),
        ({"resources": []}, "resources[0].id"),
        ([{"id": "a", "resources": [{"type": "tpu", "amount": 1}]}], "resources[0].resources[0].type"),
        ([{"id": "a"}, {"id": "b", "resources": [{"type": "cpu", "amount": -1}]}], "resources[1].resources[0].amount"),
        ([{"id": "a", "resources": [{"type": "cpu", "amount": 0}]}], "resources[0].resources[0].amount"),
        ([{"id": "a", "resources": [{"type": "cpu", "amount": True}]}], "resources[0].resources[0].amount"),
        ([{"id": "a", "resources": [{"type": "cpu", "amount": "many"}]}], "resources[0].resources[0].amount"),
        ([{"id": "a", "resources": [{"type": "gpu", "amount": 1.5}]}], "resources[0].resources[0].amount"),
        ([{"id": "a", "labels": ["kyy-gpu=$(reboot)"]}], "resources[0].labels"),
        ([{"id": "a", "resources": {"type": "cpu"}}], "resources[0].resources"),
        (42, "resources"),
    ],
)
def test_bad_products_are_refused_naming_product_and_field(bad: Any, parameter: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_products(bad)
    assert caught.value.parameter == parameter


def test_snapshots_can_be_built_without_api_dicts() -> None:
    nodes = [NodeInfo("n", {"cpu": 4000, "memory": 8 * GiB, "pods": 10})]
    pods = [PodInfo("n", {"cpu": 3000})]
    snapshot = ClusterSnapshot(nodes, pods)
    assert snapshot.free[0]["cpu"] == 1000
    assert unplaceable_ids([Product("p", {"cpu": 2000})], snapshot) == ["p"]


# ---- the fast answer equals the obvious one ------------------------------------------------------------------


def _reference(prod: Product, snapshot: ClusterSnapshot) -> tuple[int, dict[str, int]]:
    """The scheduler's filters, node by node, written as plainly as possible."""
    fitting, reasons = 0, dict[str, int]()
    for info, free in zip(snapshot.nodes, snapshot.free, strict=True):
        found = _node_reasons(prod, info, free)
        for reason in found:
            reasons[reason] = reasons.get(reason, 0) + 1
        fitting += not found
    return fitting, reasons


def _node_reasons(prod: Product, info: NodeInfo, free: dict[str, int]) -> list[str]:
    hard = [t for t in info.taints if t.effect in ("NoSchedule", "NoExecute")]
    if info.unschedulable:
        return ["node(s) were unschedulable"]
    if hard:
        return [f"node(s) had untolerated taint {{{hard[0].key}: {hard[0].value}}}"]
    if any(info.labels.get(k) != v for k, v in prod.selector.items()):
        return ["node(s) didn't match Pod's node affinity/selector"]
    if prod.requests.get("nvidia.com/gpu") and any(m != info.gpu_model for m in prod.gpu_models):
        return ["node(s) didn't have the requested GPU model"]
    found = ["Too many pods"] if free["pods"] < 1 else []
    return found + [f"Insufficient {r}" for r, amount in prod.requests.items() if amount > free[r]]


def test_assessments_match_a_node_by_node_reference_on_a_random_cluster() -> None:
    rng = random.Random(20240611)
    models = ["A100-80G", "RTX5090-32G"]
    nodes = []
    for i in range(300):
        labels = {"zone": rng.choice("abc")}
        gpus = rng.choice([0, 0, 0, 2, 4])
        if gpus:
            labels[rng.choice(GPU_MODEL_LABEL_KEYS)] = rng.choice(models)
        taints = [{"key": "t", "value": "x", "effect": rng.choice(["NoSchedule", "PreferNoSchedule"])}] * (i % 13 == 0)
        nodes.append(
            node(
                f"n{i}",
                cpu=f"{rng.randint(2, 64)}",
                memory=f"{rng.randint(4, 256)}Gi",
                disk=f"{rng.randint(50, 500)}Gi",
                pods=str(rng.choice([3, 110])),
                gpus=gpus,
                labels=labels,
                taints=taints,
                unschedulable=i % 17 == 0,
            )
        )
    pods = [
        pod(
            f"n{rng.randrange(300)}",
            {
                "cpu": f"{rng.randint(100, 4000)}m",
                "memory": f"{rng.randint(1, 16)}Gi",
                "ephemeral-storage": f"{rng.randint(0, 50)}Gi",
            },
        )
        for _ in range(900)
    ]
    snapshot = cluster(nodes, pods)
    products = parse_products(
        [
            product(
                f"p{i}",
                cpu=rng.randint(1, 48),
                memory=rng.randint(1, 200) * 1024,
                disk=rng.randint(1, 400),
                gpu=rng.choice([0, 1, 4]),
                model=rng.choice([*models, None]),
                labels=rng.choice([[], ["zone=a"], ["zone=z"]]),
            )
            for i in range(200)
        ]
    )
    for prod, fit in zip(products, assess(products, snapshot), strict=True):
        assert (fit.nodes_fitting, fit.reasons) == _reference(prod, snapshot), prod.id
    assert unplaceable_ids(products, snapshot) == [f.id for f in assess(products, snapshot) if not f.fits]
