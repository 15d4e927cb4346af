"""The native API for instances: resources, HTTP status codes, the same services as the compat paths."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_instances import Site, consumed, instance_params, site

__all__ = ["site"]


async def _call(site: Site, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return await site.admin.http.request(method, f"/api/v1{path}", headers=site.admin.headers, **kwargs)


async def test_create_read_scale_and_delete(site: Site) -> None:
    order = instance_params(site.clusterid)
    order.pop("clusterid")
    created = await _call(site, "POST", f"/clusters/{site.clusterid}/instances", json=order)
    assert created.status_code == 201, created.text
    instance = created.json()
    assert (instance["state"], instance["source_replicasetnum"], instance["source_authpasswd"]) == (
        "ready",
        1,
        "******",
    )

    read = await _call(site, "GET", f"/instances/{instance['id']}", params={"reveal": "true"})
    assert read.json()["source_authpasswd"] == "kyycloud"
    listed = await _call(site, "GET", f"/clusters/{site.clusterid}/instances")
    assert [row["id"] for row in listed.json()["rows"]] == [instance["id"]]

    scaled = await _call(site, "POST", f"/instances/{instance['id']}/scale", json={"replicas": 3})
    assert scaled.status_code == 200 and scaled.json()["source_replicasetnum"] == 3
    statefulset = site.fake.get("StatefulSet", instance["podcd_name"], site.namespace)
    assert statefulset is not None and statefulset["spec"]["replicas"] == 3
    assert (await consumed(site))["cpu STANDARD"] == 3

    assert (await _call(site, "DELETE", f"/instances/{instance['id']}")).status_code == 204
    assert (await _call(site, "GET", f"/instances/{instance['id']}")).status_code == 404
    assert (await consumed(site))["cpu STANDARD"] == 0


async def test_failures_have_proper_status_codes(site: Site) -> None:
    base = instance_params(site.clusterid)
    short = await _call(
        site,
        "POST",
        f"/clusters/{site.clusterid}/instances",
        json={**base, "source_gpu": 9, "gpu_model": "RTX5090-32G"},
    )
    assert (short.status_code, short.json()["code"]) == (409, "insufficient_stock")
    bad = await _call(site, "POST", f"/clusters/{site.clusterid}/instances", json={**base, "source_memrate": "x"})
    assert bad.status_code == 422 and "source_memrate" in bad.json()["detail"]
    scale = await _call(site, "POST", "/instances/nope/scale", json={"replicas": 0})
    assert scale.status_code == 422
    assert site.fake.requests == []


async def test_node_labels_and_boards(site: Site) -> None:
    labelled = await _call(site, "PUT", f"/clusters/{site.clusterid}/nodes/k8s-master/labels", json={"label": "zone=a"})
    assert labelled.status_code == 200 and "zone=a" in labelled.json()["node_labels"]
    removed = await _call(site, "DELETE", f"/clusters/{site.clusterid}/nodes/k8s-master/labels/zone")
    assert removed.status_code == 200 and "zone=a" not in removed.json()["node_labels"]
    nodes = await _call(site, "GET", f"/clusters/{site.clusterid}/nodes")
    assert {row["node_name"] for row in nodes.json()["rows"]} == {"k8s-master", "k8s-worker-1"}
    pods = await _call(site, "GET", f"/clusters/{site.clusterid}/pods")
    assert pods.json() == {"total": 0, "rows": []}
