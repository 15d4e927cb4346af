"""The fake answers like kube-apiserver at the HTTP level: codes, Status bodies, selectors, versions, subresources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.kubefake import FakeKubeServer, KubeFake

PODS = "/api/v1/namespaces/shop/pods"


@pytest.fixture(scope="module")
def server() -> Iterator[FakeKubeServer]:
    with FakeKubeServer(KubeFake()) as running:
        yield running


@pytest.fixture
def fake(server: FakeKubeServer) -> KubeFake:
    server.fake.reset()
    return server.fake


@pytest.fixture
def http(server: FakeKubeServer, fake: KubeFake) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {fake.token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=5) as client:
        yield client


def _pod(name: str, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }


def _names(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["metadata"]["name"] for item in response.json()["items"]]


def test_requests_without_credentials_are_anonymous_and_forbidden(server: FakeKubeServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/nodes")
    assert response.status_code == 403 and response.json()["reason"] == "Forbidden"
    assert 'User "system:anonymous" cannot get' in response.json()["message"]


def test_wrong_credentials_get_a_401_status(server: FakeKubeServer, fake: KubeFake) -> None:
    response = httpx.get(f"{server.url}/api/v1/nodes", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401 and response.headers["content-type"] == "application/json"
    assert response.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_create_get_and_the_usual_failures(fake: KubeFake, http: httpx.Client) -> None:
    missing_ns = http.post(PODS, json=_pod("a"))
    assert (missing_ns.status_code, missing_ns.json()["message"]) == (404, 'namespaces "shop" not found')
    fake.add_namespace("shop")
    created = http.post(PODS, json=_pod("a"))
    assert created.status_code == 201
    meta = created.json()["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    assert created.json()["status"]["phase"] == "Pending"
    again = http.post(PODS, json=_pod("a"))
    assert (again.status_code, again.json()["reason"]) == (409, "AlreadyExists")
    gone = http.get("/apis/apps/v1/namespaces/shop/deployments/web")
    assert (gone.status_code, gone.json()["message"]) == (404, 'deployments.apps "web" not found')
    assert http.get("/api/v1/namespaces/shop/widgets").status_code == 404


def test_invalid_objects_get_422_with_causes(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("shop")
    bad_name = http.post(PODS, json=_pod("Bad_Name"))
    assert bad_name.status_code == 422 and bad_name.json()["reason"] == "Invalid"
    assert bad_name.json()["message"].startswith('Pod "Bad_Name" is invalid: metadata.name: Invalid value')
    no_image = _pod("p")
    no_image["spec"]["containers"][0]["imagePullPolicy"] = 3
    response = http.post(PODS, json=no_image)
    assert response.status_code == 422
    assert response.json()["details"]["causes"][0]["field"] == "spec.containers[0].imagePullPolicy"


def test_resource_versions_move_only_on_real_changes(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("shop")
    first = http.post(PODS, json=_pod("a")).json()["metadata"]["resourceVersion"]
    merge = {"Content-Type": "application/merge-patch+json"}
    same = http.patch(f"{PODS}/a", content=json.dumps({"metadata": {"labels": {}}}), headers=merge)
    assert same.json()["metadata"]["resourceVersion"] == first
    changed = http.patch(f"{PODS}/a", content=json.dumps({"metadata": {"labels": {"x": "1"}}}), headers=merge)
    assert int(changed.json()["metadata"]["resourceVersion"]) > int(first)
    stale = changed.json() | {"metadata": changed.json()["metadata"] | {"resourceVersion": first}}
    conflict = http.put(f"{PODS}/a", json=stale)
    assert (conflict.status_code, conflict.json()["reason"]) == (409, "Conflict")


def test_label_and_field_selectors(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_pod("a", "shop", labels={"app": "web", "tier": "front"}, node="n1")
    fake.add_pod("b", "shop", labels={"app": "web"}, node="n2")
    fake.add_pod("c", "shop", labels={"app": "db"}, node="n1")
    cases = {
        "app=web": ["a", "b"],
        "app==web": ["a", "b"],
        "app!=web": ["c"],
        "app in (db, cache)": ["c"],
        "app notin (web)": ["c"],
        "tier": ["a"],
        "!tier": ["b", "c"],
        "app=web,!tier": ["b"],
        "": ["a", "b", "c"],
    }
    for selector, expected in cases.items():
        assert _names(http.get(PODS, params={"labelSelector": selector})) == expected, selector
    assert _names(http.get("/api/v1/pods", params={"fieldSelector": "spec.nodeName=n1"})) == ["a", "c"]
    assert _names(http.get(PODS, params={"fieldSelector": "metadata.name!=a,spec.nodeName=n1"})) == ["c"]
    assert http.get(PODS, params={"labelSelector": "app in (web"}).status_code == 400
    unsupported = http.get(PODS, params={"fieldSelector": "spec.foo=x"})
    assert unsupported.json()["message"] == "field label not supported: spec.foo"


def test_lists_are_paginated(fake: KubeFake, http: httpx.Client) -> None:
    for name in "abcde":
        fake.add_pod(name, "shop")
    page = http.get(PODS, params={"limit": 2}).json()
    assert [i["metadata"]["name"] for i in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 3
    rest = http.get(PODS, params={"limit": 5, "continue": page["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in rest["items"]] == ["c", "d", "e"] and "continue" not in rest["metadata"]


def test_patch_content_types_and_apply_rules(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("shop")
    body = json.dumps(_pod("a"))
    apply = {"Content-Type": "application/apply-patch+yaml"}
    no_manager = http.patch(f"{PODS}/a", content=body, headers=apply)
    assert no_manager.status_code == 422 and "fieldManager: Required value" in no_manager.json()["message"]
    created = http.patch(f"{PODS}/a", params={"fieldManager": "me"}, content=body, headers=apply)
    assert created.status_code == 201
    assert created.json()["metadata"]["managedFields"][0]["manager"] == "me"
    json_patch = http.patch(f"{PODS}/a", content="[]", headers={"Content-Type": "application/json-patch+json"})
    assert json_patch.status_code == 415
    forced = http.patch(
        f"{PODS}/a", params={"force": "true"}, content="{}", headers={"Content-Type": "application/merge-patch+json"}
    )
    assert forced.status_code == 422


def test_deleting_a_namespace_or_an_owner_deletes_what_depends_on_it(fake: KubeFake, http: httpx.Client) -> None:
    replica_set = fake.add(
        {
            "kind": "ReplicaSet",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}},
        }
    )
    owner = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": "web",
        "uid": replica_set["metadata"]["uid"],
        "controller": True,
    }
    fake.add_pod("web-1", "shop", overrides={"metadata": {"ownerReferences": [owner]}})
    fake.add_pod("lonely", "shop")
    fake.add_pod("elsewhere", "other")
    assert http.delete("/apis/apps/v1/namespaces/shop/replicasets/web").json()["status"] == "Success"
    assert [p["metadata"]["name"] for p in fake.list("Pod")] == ["elsewhere", "lonely"]
    http.delete("/api/v1/namespaces/shop")
    assert [p["metadata"]["name"] for p in fake.list("Pod")] == ["elsewhere"]


def test_eviction_honours_budgets(fake: KubeFake, http: httpx.Client) -> None:
    for name in ("a", "b"):
        fake.add_pod(name, "shop", labels={"app": "web"}, owner=("ReplicaSet", "web"))
    fake.add_pdb("web", "shop", {"app": "web"}, min_available=1)
    status = http.get("/apis/policy/v1/namespaces/shop/poddisruptionbudgets/web").json()["status"]
    assert (status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"]) == (2, 1, 1)
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "a", "namespace": "shop"}}
    allowed = http.post(f"{PODS}/a/eviction", json=eviction)
    assert (allowed.status_code, allowed.json()["status"]) == (201, "Success")
    assert fake.get("Pod", "a", "shop") is None
    blocked = http.post(f"{PODS}/b/eviction", json=eviction | {"metadata": {"name": "b"}})
    assert (blocked.status_code, blocked.json()["reason"]) == (429, "TooManyRequests")
    assert blocked.json()["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert http.post(f"{PODS}/b/eviction", json=eviction).status_code == 400  # name mismatch
    assert http.post(f"{PODS}/zz/eviction", json=eviction | {"metadata": {"name": "zz"}}).status_code == 404


def test_graceful_pod_deletion_and_grace_zero(fake: KubeFake, http: httpx.Client) -> None:
    fake.pod_deletion_delay = 60
    fake.add_pod("slow", "shop")
    fake.add_pod("fast", "shop")
    terminating = http.delete(f"{PODS}/slow").json()
    assert terminating["metadata"]["deletionTimestamp"] and fake.get("Pod", "slow", "shop") is not None
    http.request("DELETE", f"{PODS}/fast", json={"kind": "DeleteOptions", "gracePeriodSeconds": 0})
    assert fake.get("Pod", "fast", "shop") is None


def test_a_node_created_through_the_api_is_not_ready_until_its_kubelet_says_so(http: httpx.Client) -> None:
    made = http.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}})
    assert made.status_code == 201, made.text
    assert made.json()["spec"]["taints"] == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]


def test_an_invalid_object_is_refused_with_every_cause_at_once(http: httpx.Client) -> None:
    http.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    bad = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}
    refused = http.post(PODS, json=bad)
    assert refused.status_code == 422 and refused.json()["reason"] == "Invalid"
    assert sorted(c["field"] for c in refused.json()["details"]["causes"]) == ["metadata.name", "spec.containers"]


TENANT = "/api/v1/namespaces/tenant"
QUOTA = {
    "apiVersion": "v1",
    "kind": "ResourceQuota",
    "metadata": {"name": "q"},
    "spec": {"hard": {"requests.cpu": "1", "limits.cpu": "1", "pods": "2", "requests.storage": "1Gi"}},
}
LIMITS = {
    "apiVersion": "v1",
    "kind": "LimitRange",
    "metadata": {"name": "l"},
    "spec": {"limits": [{"type": "Container", "default": {"cpu": "200m"}, "defaultRequest": {"cpu": "100m"}}]},
}
POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "p"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"podSelector": {}}]}]},
}
ACCOUNT = {
    "apiVersion": "v1",
    "kind": "ServiceAccount",
    "metadata": {"name": "a"},
    "automountServiceAccountToken": False,
}
TENANT_KINDS = [
    (QUOTA, f"{TENANT}/resourcequotas", 'resourcequotas "q" not found'),
    (LIMITS, f"{TENANT}/limitranges", 'limitranges "l" not found'),
    (
        POLICY,
        "/apis/networking.k8s.io/v1/namespaces/tenant/networkpolicies",
        'networkpolicies.networking.k8s.io "p" not found',
    ),
    (ACCOUNT, f"{TENANT}/serviceaccounts", 'serviceaccounts "a" not found'),
]


def _tenant_pod(name: str, cpu: str | None = None) -> dict[str, Any]:
    pod = _pod(name)
    if cpu:
        pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": cpu}, "limits": {"cpu": cpu}}
    return pod


@pytest.mark.parametrize(("body", "url", "missing"), TENANT_KINDS)
def test_tenancy_kinds_are_served_like_any_other(
    fake: KubeFake, http: httpx.Client, body: dict[str, Any], url: str, missing: str
) -> None:
    fake.add_namespace("tenant")
    name = body["metadata"]["name"]
    created = http.post(url, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["metadata"]["resourceVersion"] and created.json()["kind"] == body["kind"]
    assert ("generation" in created.json()["metadata"]) == (body["kind"] == "NetworkPolicy")
    listing = http.get(url).json()
    assert listing["kind"] == f"{body['kind']}List" and [i["metadata"]["name"] for i in listing["items"]] == [name]
    assert http.get(f"{url}/{name}").status_code == 200
    deleted = http.delete(f"{url}/{name}")
    assert (deleted.status_code, deleted.json()["status"]) == (200, "Success")
    gone = http.get(f"{url}/{name}")
    assert (gone.status_code, gone.json()["message"]) == (404, missing)


@pytest.mark.parametrize(("body", "url", "missing"), TENANT_KINDS)
def test_tenancy_kinds_are_schema_checked(
    fake: KubeFake, http: httpx.Client, body: dict[str, Any], url: str, missing: str
) -> None:
    fake.add_namespace("tenant")
    refused = http.post(url, json=body | {"spec": {"bogus": 1}, "bogus": 1})
    assert (refused.status_code, refused.json()["reason"]) == (422, "Invalid"), missing


def test_pods_over_a_quota_are_forbidden_and_its_status_counts_usage(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("tenant")
    assert http.post(f"{TENANT}/resourcequotas", json=QUOTA).status_code == 201
    assert http.post(f"{TENANT}/pods", json=_tenant_pod("a", "600m")).status_code == 201
    over = http.post(f"{TENANT}/pods", json=_tenant_pod("b", "500m"))
    assert (over.status_code, over.json()["reason"]) == (403, "Forbidden")
    assert over.json()["message"] == (
        'pods "b" is forbidden: exceeded quota: q, requested: limits.cpu=500m,requests.cpu=500m, '
        "used: limits.cpu=600m,requests.cpu=600m, limited: limits.cpu=1,requests.cpu=1"
    )
    assert over.json()["details"] == {"name": "b", "kind": "pods"}
    bare = http.post(f"{TENANT}/pods", json=_tenant_pod("c"))
    assert bare.status_code == 403
    assert bare.json()["message"] == 'pods "c" is forbidden: failed quota: q: must specify limits.cpu,requests.cpu'
    status = http.get(f"{TENANT}/resourcequotas/q").json()["status"]
    assert status["hard"] == QUOTA["spec"]["hard"]
    assert status["used"] == {"requests.cpu": "600m", "limits.cpu": "600m", "pods": "1", "requests.storage": "0"}
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "big"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
    }
    refused = http.post(f"{TENANT}/persistentvolumeclaims", json=claim)
    assert refused.status_code == 403 and "requested: requests.storage=2Gi" in refused.json()["message"]


def test_limit_ranges_default_containers_and_requests_may_not_exceed_limits(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("tenant")
    assert http.post(f"{TENANT}/limitranges", json=LIMITS).status_code == 201
    made = http.post(f"{TENANT}/pods", json=_tenant_pod("a")).json()
    assert made["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "200m"}, "requests": {"cpu": "100m"}}
    assert made["status"]["qosClass"] == "Burstable"
    only_request = _tenant_pod("b")
    only_request["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "1"}}
    refused = http.post(f"{TENANT}/pods", json=only_request)
    assert refused.status_code == 422
    assert refused.json()["message"] == (
        'Pod "b" is invalid: spec.containers[0].resources.requests[cpu]: Invalid value: "1": '
        "must be less than or equal to cpu limit"
    )


def test_pod_security_baseline_is_enforced_on_pods(fake: KubeFake, http: httpx.Client) -> None:
    fake.add_namespace("tenant", {"pod-security.kubernetes.io/enforce": "baseline"})
    bad = _tenant_pod("p")
    bad["spec"]["hostNetwork"] = True
    bad["spec"]["containers"][0]["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}
    refused = http.post(f"{TENANT}/pods", json=bad)
    assert (refused.status_code, refused.json()["reason"]) == (403, "Forbidden")
    assert refused.json()["message"] == (
        'pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true), '
        'privileged (container "c" must not set securityContext.privileged=true), '
        "non-default capabilities (capabilities NET_ADMIN must not be added)"
    )
    assert http.post(f"{TENANT}/pods", json=_tenant_pod("fine")).status_code == 201
    fake.add_namespace("shop")
    assert http.post(PODS, json=bad).status_code == 201  # no level: anything goes
