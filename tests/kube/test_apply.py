"""Server-side apply and delete of manifest lists, and multi-document YAML parsing, against the fake API server."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from kboss.errors import InvalidParameter, KubeError
from kboss.kube.apply import apply_objects, delete_objects, parse_manifests
from kboss.kube.client import KubeApiError
from tests.kubefake import KubeFake

NS = "c1-org1"
LABELS = {"app": "ubuntu-1"}


def instance() -> list[dict[str, Any]]:
    """An instance as kboss builds it, deliberately out of order."""
    container = {
        "name": "main",
        "image": "ubuntu:22.04",
        "command": ["sleep", "infinity"],
        "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    return [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "ubuntu-1", "namespace": NS},
            "spec": {
                "rules": [
                    {
                        "host": "u1.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "ubuntu-1", "port": {"number": 22}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "ubuntu-1", "namespace": NS, "labels": LABELS},
            "spec": {"type": "NodePort", "selector": LABELS, "ports": [{"port": 22, "nodePort": 30022}]},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "ubuntu-1", "namespace": NS},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": "ubuntu-1",
                        "containers": [container],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "ubuntu-1"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "ubuntu-1", "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ubuntu-1", "namespace": NS},
            "type": "Opaque",
            "stringData": {"password": "initial-Pa55"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "ubuntu-1", "namespace": NS}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"kboss.io/org": "org1"}}},
    ]


APPLY_ORDER = ["Namespace", "Secret", "ServiceAccount", "PersistentVolumeClaim", "Deployment", "Service", "Ingress"]


async def test_apply_creates_everything_in_dependency_order(fake: KubeFake, kube: AsyncClient) -> None:
    results = await apply_objects(kube, instance())
    assert [r.kind for r in results] == APPLY_ORDER
    assert all(r.action == "applied" and r.resource_version for r in results)
    patches = fake.requests_to("PATCH")
    assert all(p.content_type == "application/apply-patch+yaml" for p in patches)
    assert all(p.query == {"fieldManager": "kboss", "force": "true"} for p in patches)
    assert [p.status for p in patches] == [201] * 7
    assert fake.get("Deployment", "ubuntu-1", NS)["spec"]["replicas"] == 1
    assert fake.get("Service", "ubuntu-1", NS)["spec"]["ports"][0]["nodePort"] == 30022
    assert str(results[-1]) == f"Ingress/{NS}/ubuntu-1" and str(results[0]) == NS.join(["Namespace/", ""])


async def test_second_apply_changes_nothing(fake: KubeFake, kube: AsyncClient) -> None:
    first = await apply_objects(kube, instance())
    fake.clear_requests()
    second = await apply_objects(kube, instance())
    assert [r.resource_version for r in second] == [r.resource_version for r in first]
    assert [p.status for p in fake.requests_to("PATCH")] == [200] * 7


async def test_reapply_updates_and_drops_fields_no_longer_applied(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, instance())
    changed = instance()
    deployment = next(o for o in changed if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = 2
    deployment["metadata"]["annotations"] = {"kboss.io/price": "1.20"}
    namespace = next(o for o in changed if o["kind"] == "Namespace")
    del namespace["metadata"]["labels"]
    before = fake.get("Deployment", "ubuntu-1", NS)
    await apply_objects(kube, changed)
    after = fake.get("Deployment", "ubuntu-1", NS)
    assert after["spec"]["replicas"] == 2 and after["metadata"]["annotations"] == {"kboss.io/price": "1.20"}
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["generation"] == 2
    labels = fake.get("Namespace", NS)["metadata"]["labels"]
    assert "kboss.io/org" not in labels and labels["kubernetes.io/metadata.name"] == NS  # the server's label stays


async def test_invalid_object_is_refused_with_the_servers_message(fake: KubeFake, kube: AsyncClient) -> None:
    objects = instance()
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(KubeError) as caught:
        await apply_objects(kube, objects)
    error = caught.value
    assert isinstance(error, KubeApiError) and error.status_code == 422 and error.reason == "Invalid"
    assert 'Deployment.apps "ubuntu-1" is invalid: spec.replicas' in error.message
    assert error.message.startswith(f"Deployment/{NS}/ubuntu-1: ")
    assert error.data["applied"] == [
        f"Namespace/{NS}",
        f"Secret/{NS}/ubuntu-1",
        f"ServiceAccount/{NS}/ubuntu-1",
        f"PersistentVolumeClaim/{NS}/ubuntu-1",
    ]
    assert fake.get("Deployment", "ubuntu-1", NS) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: o["metadata"].update(name="Ubuntu_1"), "a lowercase RFC 1123 subdomain must consist of"),
        (lambda o: o["spec"].update(paused="yes"), "spec.paused"),
        (lambda o: o["spec"].update(unknownField=1), "unknownField"),
        (lambda o: o["metadata"].update(labels={"bad key": "x"}), "metadata.labels"),
    ],
)
async def test_api_validation_failures_surface(kube: AsyncClient, change: Any, message: str) -> None:
    deployment = copy.deepcopy(next(o for o in instance() if o["kind"] == "Deployment"))
    change(deployment)
    namespace = next(o for o in instance() if o["kind"] == "Namespace")
    with pytest.raises(KubeApiError, match=message):
        await apply_objects(kube, [namespace, deployment])


async def test_selector_of_a_deployment_is_immutable(kube: AsyncClient) -> None:
    await apply_objects(kube, instance())
    objects = instance()
    next(o for o in objects if o["kind"] == "Deployment")["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(KubeApiError, match="field is immutable"):
        await apply_objects(kube, objects)


async def test_node_port_already_taken(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, instance())
    other = copy.deepcopy(next(o for o in instance() if o["kind"] == "Service"))
    other["metadata"]["name"] = "someone-else"
    with pytest.raises(KubeApiError, match="provided port is already allocated"):
        await apply_objects(kube, [other])


async def test_missing_namespace_is_an_api_error_not_a_missing_object(kube: AsyncClient) -> None:
    service_account = next(o for o in instance() if o["kind"] == "ServiceAccount")
    with pytest.raises(KubeApiError, match=f'namespaces "{NS}" not found') as caught:
        await apply_objects(kube, [service_account])
    assert caught.value.status_code == 404


async def test_conflicts_with_other_managers(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, instance())
    deployment = copy.deepcopy(next(o for o in instance() if o["kind"] == "Deployment"))
    deployment["spec"]["replicas"] = 5
    await apply_objects(kube, [deployment], field_manager="operator-console")
    with pytest.raises(KubeApiError, match='conflict with "operator-console"') as caught:
        await apply_objects(kube, instance(), force=False)
    assert caught.value.status_code == 409
    await apply_objects(kube, instance())  # force (the default) takes the field back
    assert fake.get("Deployment", "ubuntu-1", NS)["spec"]["replicas"] == 1


async def test_defaults_namespace_and_accepts_lightkube_objects(fake: KubeFake, kube: AsyncClient) -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    results = await apply_objects(kube, [Namespace(metadata=ObjectMeta(name="tenant")), config_map], namespace="tenant")
    assert [(r.kind, r.namespace) for r in results] == [("Namespace", None), ("ConfigMap", "tenant")]
    assert fake.get("ConfigMap", "settings", "tenant")["data"] == {"a": "1"}


async def test_unknown_kinds_and_bad_shapes_are_refused(fake: KubeFake, kube: AsyncClient) -> None:
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(InvalidParameter, match="Widget"):
        await apply_objects(kube, [widget])
    for bad in (
        {"kind": "Pod", "metadata": {"name": "p"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {}},
        {"apiVersion": "v1/x/y", "kind": "Pod", "metadata": {"name": "p"}},
    ):
        with pytest.raises(InvalidParameter):
            await apply_objects(kube, [bad])
    assert fake.requests_to("PATCH") == []


async def test_delete_removes_everything_and_tolerates_absence(fake: KubeFake, kube: AsyncClient) -> None:
    await apply_objects(kube, instance())
    fake.add_pod("ubuntu-1-7d9-abcde", NS, labels=LABELS, owner=("ReplicaSet", "ubuntu-1-7d9"))
    results = await delete_objects(kube, instance())
    assert [r.kind for r in results] == list(reversed(APPLY_ORDER))
    assert all(r.action == "deleted" for r in results)
    assert fake.list("Pod", NS) == [] and fake.get("Namespace", NS) is None
    for kind in APPLY_ORDER[1:]:
        assert fake.list(kind, NS) == []
    deletes = fake.requests_to("DELETE")
    assert all(d.query.get("propagationPolicy") == "Background" for d in deletes)
    again = await delete_objects(kube, instance())
    assert all(r.action == "absent" for r in again)


# ---------------------------------------------------------------------------------------------
# YAML


def test_parse_manifests_splits_documents_and_flattens_lists() -> None:
    text = """
---
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: a, namespace: demo}
- apiVersion: v1
  kind: Secret
  metadata: {name: b, namespace: demo}
"""
    objects = parse_manifests(text)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("Namespace", "demo"),
        ("ConfigMap", "a"),
        ("Secret", "b"),
    ]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "为空"),
        ("# nothing\n---\n", "没有任何对象"),
        ("apiVersion: v1\nkind: Pod\n  name: p\n", "第 3 行第 7 列"),
        ("- a\n- b\n", "第 1 个文档不是对象"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n---\nkind: Pod\nmetadata: {name: q}\n", "第 2 个文档"),
        ("apiVersion: v1\nkind: Pod\nmetadata: {}\n", "metadata.name"),
        ("apiVersion: v1\nkind: List\nitems: [{apiVersion: v1, kind: Pod}]\n", "第 1 个文档的第 1 项"),
    ],
)
def test_parse_manifests_errors_say_where(text: str, problem: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        parse_manifests(text, param="yaml")
    assert caught.value.parameter == "yaml" and problem in caught.value.message
