"""A customer's namespace and its fences: the objects as data, validated, and server-side applied to the fake."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate
import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Node, ResourceQuota

from kboss.errors import InvalidParameter
from kboss.kube.apply import apply_objects, delete_objects
from kboss.kube.client import KubeApiError
from kboss.kube.labels import namespace_name
from kboss.kube.manifests import InstanceSpec, build_objects
from kboss.kube.tenancy import (
    FIELD_MANAGER,
    LABEL_TENANT,
    TenantQuota,
    pod_cidrs,
    tenant_objects,
    tenant_refs,
)
from tests.kubefake import KubeFake, node

ORG = "mIWUHBeeDM8mwAFPIQ8pS"
NS = namespace_name("4hBm8atruISOU2bs24t_N", ORG)
CIDRS = ["10.244.0.0/24", "10.244.1.0/24", "10.244.7.0/24", "fd00:10:244::/64"]
QUOTA = TenantQuota(cpu_millicores=2500, memory_bytes=6 * 2**30, storage_bytes=50 * 2**30, gpus=1, pods=3, pvcs=2)
KINDS = ["Namespace", "ServiceAccount", "ResourceQuota", "LimitRange", "NetworkPolicy"]


def objects(quota: TenantQuota = QUOTA, cidrs: list[str] = CIDRS) -> list[dict[str, Any]]:
    return [dict(obj) for obj in tenant_objects(NS, ORG, quota, cidrs)]


def by_kind(found: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (obj,) = [obj for obj in found if obj["kind"] == kind]
    return obj


def stored(fake: KubeFake, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    found = fake.get(kind, name, namespace)
    assert found is not None, f"{kind} {name} is not stored"
    return found


def pod(name: str, cpu: str | None = None, memory: str = "256Mi") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "docker.io/library/ubuntu:22.04"}
    if cpu:
        amounts = {"cpu": cpu, "memory": memory}
        container["resources"] = {"requests": amounts, "limits": dict(amounts)}
    meta = {"name": name, "namespace": NS}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container]}}


# ---------------------------------------------------------------------------------------------
# The objects


@pytest.mark.parametrize("version", ["1.25", "1.28"])  # 1.25: the oldest schema kubernetes-validate ships
def test_every_object_validates(version: str) -> None:
    for quota in (QUOTA, TenantQuota()):
        for obj in objects(quota):
            kubernetes_validate.validate(obj, version, strict=True)
    for ref in tenant_refs(NS):
        assert set(ref) == {"apiVersion", "kind", "metadata"}


def test_objects_come_in_apply_order_and_refs_in_delete_order() -> None:
    assert [obj["kind"] for obj in objects()] == KINDS
    assert [ref["kind"] for ref in tenant_refs(NS)] == KINDS[::-1]
    assert all(obj["metadata"].get("namespace") == NS for obj in objects()[1:])


def test_the_namespace_names_its_tenant_and_enforces_baseline() -> None:
    labels = by_kind(objects(), "Namespace")["metadata"]["labels"]
    assert labels == {
        "app.kubernetes.io/managed-by": "kboss",
        "kboss.io/tenant": ORG,
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
    }


def test_an_org_id_that_is_no_label_value_is_trimmed_in_the_label_and_kept_in_the_annotation() -> None:
    (namespace, *_) = tenant_objects("c1-z2r4", "-z2r4CFb-7rcfugNn2wI_", TenantQuota(), CIDRS)
    assert namespace["metadata"]["labels"][LABEL_TENANT] == "z2r4CFb-7rcfugNn2wI"
    assert namespace["metadata"]["annotations"] == {"kboss.io/tenant-id": "-z2r4CFb-7rcfugNn2wI_"}
    kubernetes_validate.validate(dict(namespace), "1.28", strict=True)


def test_the_service_account_has_no_token() -> None:
    account = by_kind(objects(), "ServiceAccount")
    assert account["metadata"]["name"] == f"{NS}-serviceaccount"
    assert account["automountServiceAccountToken"] is False


def test_the_quota_is_what_the_customer_holds() -> None:
    assert by_kind(objects(), "ResourceQuota")["spec"]["hard"] == {
        "requests.cpu": "2500m",
        "limits.cpu": "2500m",
        "requests.memory": "6Gi",
        "limits.memory": "6Gi",
        "requests.storage": "50Gi",
        "requests.nvidia.com/gpu": "1",
        "pods": "3",
        "persistentvolumeclaims": "2",
    }


def test_a_zero_quota_lets_nothing_run() -> None:
    hard = by_kind(objects(TenantQuota()), "ResourceQuota")["spec"]["hard"]
    assert len(hard) == 8 and set(hard.values()) == {"0"}


def test_containers_without_resources_get_small_defaults() -> None:
    (limits,) = by_kind(objects(), "LimitRange")["spec"]["limits"]
    assert limits == {
        "type": "Container",
        "default": {"cpu": "100m", "memory": "128Mi"},
        "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
    }


def test_the_policy_admits_the_namespace_the_system_and_the_world_but_no_pod_network() -> None:
    spec = by_kind(objects(), "NetworkPolicy")["spec"]
    assert spec["podSelector"] == {} and spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule["from"] == [
        {"podSelector": {}},
        {"namespaceSelector": {"matchExpressions": [{"key": "kboss.io/tenant", "operator": "DoesNotExist"}]}},
        # The two adjacent /24s merge; every pod CIDR is excepted.
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/23", "10.244.7.0/24"]}},
        {"ipBlock": {"cidr": "::/0", "except": ["fd00:10:244::/64"]}},
    ]
    excepted = [ipaddress.ip_network(n) for p in rule["from"][2:] for n in p["ipBlock"]["except"]]
    for cidr in map(ipaddress.ip_network, CIDRS):
        assert any(cidr.version == e.version and cidr.subnet_of(e) for e in excepted)  # type: ignore[arg-type]


def test_an_ipv4_only_cluster_gets_no_ipv6_block() -> None:
    peers = by_kind(objects(cidrs=["10.244.0.0/16"]), "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert [p["ipBlock"] for p in peers if "ipBlock" in p] == [{"cidr": "0.0.0.0/0", "except": ["10.244.0.0/16"]}]


@pytest.mark.parametrize(
    ("namespace", "orgid", "quota", "cidrs", "parameter"),
    [
        (NS, ORG, QUOTA, [], "pod_cidrs"),  # no pod network known: refusing beats admitting everyone
        (NS, ORG, QUOTA, ["10.244.0.0/33"], "pod_cidrs"),
        (NS, ORG, QUOTA, ["0.0.0.0/0"], "pod_cidrs"),
        ("Bad_Namespace", ORG, QUOTA, CIDRS, "namespace"),
        (NS, "--", QUOTA, CIDRS, "orgid"),
        (NS, "a b", QUOTA, CIDRS, "orgid"),
    ],
)
def test_what_cannot_make_a_tenant_is_refused(
    namespace: str, orgid: str, quota: TenantQuota, cidrs: list[str], parameter: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        tenant_objects(namespace, orgid, quota, cidrs)
    assert caught.value.parameter == parameter


@pytest.mark.parametrize("value", [-1, 1.5, True, "2"])
def test_a_quota_takes_only_whole_non_negative_amounts(value: Any) -> None:
    with pytest.raises(InvalidParameter) as caught:
        TenantQuota(cpu_millicores=value)
    assert caught.value.parameter == "cpu_millicores"


def test_pod_cidrs_are_read_from_nodes_as_the_api_returns_them() -> None:
    nodes: list[dict[str, Any]] = [
        {"spec": {"podCIDR": "10.244.0.0/24", "podCIDRs": ["10.244.0.0/24", "fd00:10:244::/64"]}},
        {"spec": {"podCIDR": "10.244.1.0/24"}},  # before dual-stack: the single field only
        {"spec": {"podCIDRs": ["10.244.0.0/24"]}},  # seen already
        {"spec": {}},
        {"metadata": {"name": "no-spec"}},
    ]
    assert pod_cidrs(nodes) == ["10.244.0.0/24", "fd00:10:244::/64", "10.244.1.0/24"]
    assert pod_cidrs([]) == []


# ---------------------------------------------------------------------------------------------
# Against the fake API server


async def test_applying_creates_everything_and_again_changes_nothing(fake: KubeFake, kube: AsyncClient) -> None:
    first = await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    assert [r.kind for r in first] == ["Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "NetworkPolicy"]
    assert [p.status for p in fake.requests_to("PATCH")] == [201] * 5
    assert stored(fake, "NetworkPolicy", "kboss-isolation", NS)["spec"] == objects()[4]["spec"]
    assert stored(fake, "ServiceAccount", f"{NS}-serviceaccount", NS)["automountServiceAccountToken"] is False
    assert stored(fake, "Namespace", NS)["metadata"]["labels"][LABEL_TENANT] == ORG
    fake.clear_requests()
    again = await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    assert [r.resource_version for r in again] == [r.resource_version for r in first]
    assert [p.status for p in fake.requests_to("PATCH")] == [200] * 5


async def test_a_new_quota_changes_only_the_quota(fake: KubeFake, kube: AsyncClient) -> None:
    first = await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    bigger = TenantQuota(cpu_millicores=4000, memory_bytes=8 * 2**30, storage_bytes=0, gpus=0, pods=4, pvcs=0)
    second = await apply_objects(kube, objects(bigger), field_manager=FIELD_MANAGER)
    changed = [a.kind for a, b in zip(first, second, strict=True) if a.resource_version != b.resource_version]
    assert changed == ["ResourceQuota"]
    hard = stored(fake, "ResourceQuota", "kboss-quota", NS)["spec"]["hard"]
    assert (hard["requests.cpu"], hard["limits.memory"], hard["requests.storage"], hard["pods"]) == (
        "4",
        "8Gi",
        "0",
        "4",
    )


async def test_pod_cidrs_of_the_clusters_nodes(fake: KubeFake, kube: AsyncClient) -> None:
    for index in range(3):
        seeded = node(f"w{index}")
        seeded["spec"] |= {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]}
        fake.add(seeded)
    found = pod_cidrs([item.to_dict() async for item in kube.list(Node)])
    assert found == ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
    peers = by_kind(objects(cidrs=found), "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert peers[2] == {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.244.0.0/23", "10.244.2.0/24"]}}


async def test_an_instance_applied_afterwards_keeps_the_tenants_fields(fake: KubeFake, kube: AsyncClient) -> None:
    """The instance's Namespace and ServiceAccount carry fewer fields, under the `kboss` manager: the
    tenancy's own manager keeps its labels and the token setting from being removed."""
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    spec = InstanceSpec.from_params(_instance_params())
    assert spec.namespace == NS
    shared = [obj for obj in build_objects(spec) if obj["kind"] in ("Namespace", "ServiceAccount")]
    await apply_objects(kube, shared)
    assert stored(fake, "Namespace", NS)["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert stored(fake, "ServiceAccount", spec.service_account, NS)["automountServiceAccountToken"] is False


async def test_a_pod_over_the_quota_is_forbidden(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    await apply_objects(kube, [pod("one", cpu="2")])
    with pytest.raises(KubeApiError) as caught:
        await apply_objects(kube, [pod("two", cpu="1")])
    assert caught.value.status_code == 403
    assert "准入控制拒绝了该对象" in str(caught.value) and "凭据" not in str(caught.value)  # not a login problem
    assert (
        'pods "two" is forbidden: exceeded quota: kboss-quota, requested: limits.cpu=1,requests.cpu=1, '
        "used: limits.cpu=2,requests.cpu=2, limited: limits.cpu=2500m,requests.cpu=2500m"
    ) in str(caught.value)
    status = (await kube.get(ResourceQuota, "kboss-quota", namespace=NS)).to_dict()["status"]
    assert status["used"]["requests.cpu"] == "2" and status["used"]["pods"] == "1"
    assert status["hard"] == objects()[2]["spec"]["hard"]


async def test_an_instance_pod_fits_baseline_and_the_quota_a_privileged_one_does_not(
    fake: KubeFake, kube: AsyncClient
) -> None:
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    spec = InstanceSpec.from_params(_instance_params(source_podengine="Standalone"))
    await apply_objects(kube, build_objects(spec))
    assert stored(fake, "Pod", spec.controller, NS)["status"]["qosClass"] == "Guaranteed"
    privileged = pod("root", cpu="100m")
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    with pytest.raises(KubeApiError) as caught:
        await apply_objects(kube, [privileged])
    assert caught.value.status_code == 403 and 'violates PodSecurity "baseline:latest"' in str(caught.value)


async def test_a_pod_without_resources_gets_the_defaults_and_fits(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    await apply_objects(kube, [pod("bare")])
    resources = stored(fake, "Pod", "bare", NS)["spec"]["containers"][0]["resources"]
    assert resources == {"limits": {"cpu": "100m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}


async def test_gpus_are_counted_against_the_cards_held(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    greedy = pod("gpus", cpu="1")
    for amounts in greedy["spec"]["containers"][0]["resources"].values():
        amounts["nvidia.com/gpu"] = "2"
    with pytest.raises(KubeApiError) as caught:
        await apply_objects(kube, [greedy])
    assert "requested: requests.nvidia.com/gpu=2, used: requests.nvidia.com/gpu=0" in str(caught.value)


async def test_a_zero_quota_admits_no_pod(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, objects(TenantQuota()), field_manager=FIELD_MANAGER)
    with pytest.raises(KubeApiError) as caught:
        await apply_objects(kube, [pod("any", cpu="100m")])
    assert caught.value.status_code == 403 and "exceeded quota: kboss-quota" in str(caught.value)
    assert fake.get("Pod", "any", NS) is None


async def test_deleting_the_tenant_removes_everything(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, objects(), field_manager=FIELD_MANAGER)
    results = await delete_objects(kube, tenant_refs(NS))
    assert [r.action for r in results] == ["deleted"] * 5
    assert fake.get("Namespace", NS) is None and fake.list("NetworkPolicy") == []
    assert [r.action for r in await delete_objects(kube, tenant_refs(NS))] == ["absent"] * 5


def _instance_params(**overrides: str) -> dict[str, Any]:
    return {
        "id": "evfldtxjkr3jd8zxnfhd5",
        "clusterid": "4hBm8atruISOU2bs24t_N",
        "orgid": ORG,
        "source_name": "my instance",
        "instance_type": "LinuxOS",
        "source_podengine": "StatefulSet",
        "source_replicasetnum": "1",
        "source_authuser": "root",
        "source_authpasswd": "S3cret-Passw0rd",
        "source_cpurate": "1000m",
        "source_memrate": "512Mi",
        "source_gpu": "0",
        "source_portmode": "NodePort",
        "source_restartpolicy": "Always",
        "source_apiport": "6035",
        "source_insideport": "22",
        "source_mountpath": "/mnt/data",
        "source_storagelimits": "0",
    } | overrides
