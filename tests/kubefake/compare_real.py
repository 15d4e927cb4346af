"""Run the same probes against the HTTP fake and a real kube-apiserver and print where their answers differ.

By hand, not in CI (CI has no API server): build and start a real one with the shared tools' `real-kube-apiserver.sh`
(Kubernetes 1.24 on https://127.0.0.1:26443, bearer token `admintoken`), then

    .venv/bin/python -m tests.kubefake.compare_real [--real https://127.0.0.1:26443] [--token admintoken]

Each probe answers a small normalised record (status code, Status reason and details, the fields that matter);
volatile values (uids, times, resource versions) are reduced to their shape. Exit status 1 when a probe differs.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
from collections.abc import Callable
from typing import Any

import httpx

from tests.kubefake.fake import KubeFake
from tests.kubefake.server import FakeKubeServer

Probe = Callable[[httpx.Client, str], dict[str, Any]]
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "labels": {"app": "cmp"}},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}  # fmt: skip


def status(response: httpx.Response) -> dict[str, Any]:
    """The parts of an answer that a client reads: code, and for a Status its reason, details and causes."""
    try:
        body = response.json()
    except ValueError:
        return {"code": response.status_code, "body": "not JSON"}
    record: dict[str, Any] = {"code": response.status_code, "kind": body.get("kind")}
    if body.get("kind") == "Status":
        details = body.get("details") or {}
        causes = sorted(c.get("field", "") for c in details.get("causes") or [])
        record |= {"reason": body.get("reason"), "status": body.get("status"), "details.kind": details.get("kind"),
                   "details.name": details.get("name"), "causes": causes}  # fmt: skip
    return record


def _ns(client: httpx.Client, ns: str) -> None:
    client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def missing(client: httpx.Client, ns: str) -> dict[str, Any]:
    return status(client.get(f"/api/v1/namespaces/{ns}/pods/nope"))


def create_twice(client: httpx.Client, ns: str) -> dict[str, Any]:
    first = client.post(f"/api/v1/namespaces/{ns}/pods", json=POD)
    meta = first.json().get("metadata", {})
    shape = {"rv digits": str(meta.get("resourceVersion", "")).isdigit(), "uid": bool(meta.get("uid")),
             "created": bool(meta.get("creationTimestamp")), "namespace": meta.get("namespace") == ns}  # fmt: skip
    return {
        "first": status(first),
        "shape": shape,
        "again": status(client.post(f"/api/v1/namespaces/{ns}/pods", json=POD)),
    }


def invalid(client: httpx.Client, ns: str) -> dict[str, Any]:
    bad = {**POD, "metadata": {"name": "Bad_Name"}, "spec": {"containers": []}}
    return status(client.post(f"/api/v1/namespaces/{ns}/pods", json=bad))


def stale_update(client: httpx.Client, ns: str) -> dict[str, Any]:
    pod = client.get(f"/api/v1/namespaces/{ns}/pods/p1").json()
    patched = client.patch(f"/api/v1/namespaces/{ns}/pods/p1", json={"metadata": {"labels": {"x": "1"}}},
                           headers={"content-type": "application/merge-patch+json"})  # fmt: skip
    grew = int(patched.json()["metadata"]["resourceVersion"]) > int(pod["metadata"]["resourceVersion"])
    return {"patch": status(patched), "rv grew": grew,
            "stale put": status(client.put(f"/api/v1/namespaces/{ns}/pods/p1", json=pod))}  # fmt: skip


def new_node(client: httpx.Client, ns: str) -> dict[str, Any]:
    name = f"cmp-node-{ns}"
    made = client.post("/api/v1/nodes", json={"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
    taints = sorted(f"{t['key']}:{t['effect']}" for t in made.json().get("spec", {}).get("taints") or [])
    client.delete(f"/api/v1/nodes/{name}")
    return {"create": status(made), "taints": taints}


def node_ports(client: httpx.Client, ns: str) -> dict[str, Any]:
    def service(name: str, port: int | None) -> httpx.Response:
        spec_port: dict[str, Any] = {"port": 80, "targetPort": 80} | ({"nodePort": port} if port else {})
        body = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": "NodePort", "selector": {"app": "cmp"}, "ports": [spec_port]}}  # fmt: skip
        return client.post(f"/api/v1/namespaces/{ns}/services", json=body)

    first = service("s1", None)
    given = first.json()["spec"]["ports"][0].get("nodePort", 0)
    return {"assigned in range": 30000 <= given <= 32767, "same port again": status(service("s2", given)),
            "out of range": status(service("s3", 80))}  # fmt: skip


def watch(client: httpx.Client, ns: str) -> dict[str, Any]:
    listed = client.get(f"/api/v1/namespaces/{ns}/pods")
    rv = listed.json()["metadata"]["resourceVersion"]
    events: list[str] = []

    def read() -> None:
        params = {"watch": "1", "resourceVersion": rv, "timeoutSeconds": "3"}
        with client.stream("GET", f"/api/v1/namespaces/{ns}/pods", params=params) as stream:
            if stream.status_code != 200:
                stream.read()
                events.append(f"refused: {status(stream)}")
                return
            for line in stream.iter_lines():
                if line.strip():
                    event = json.loads(line)
                    meta = event["object"].get("metadata", {})
                    marked = " (deleting)" if "deletionTimestamp" in meta else ""
                    events.append(f"{event['type']} {event['object'].get('kind')}{marked}")

    reader = threading.Thread(target=read)
    reader.start()
    threading.Event().wait(0.5)
    client.patch(f"/api/v1/namespaces/{ns}/pods/p1", json={"metadata": {"labels": {"w": "1"}}},
                 headers={"content-type": "application/merge-patch+json"})  # fmt: skip
    client.delete(f"/api/v1/namespaces/{ns}/pods/p1", params={"gracePeriodSeconds": "0"})
    reader.join(10)
    selected = {"watch": "1", "labelSelector": "app=cmp", "timeoutSeconds": "1"}
    initial = [
        json.loads(line)["type"]
        for line in client.get(f"/api/v1/namespaces/{ns}/pods", params=selected).text.splitlines()
        if line
    ]
    bad = client.get(f"/api/v1/namespaces/{ns}/pods", params={"watch": "1", "resourceVersion": "abc"})
    return {"list": status(listed), "events": events, "without a version": initial, "bad version": status(bad)}


def evictions(client: httpx.Client, ns: str) -> dict[str, Any]:
    client.post(f"/api/v1/namespaces/{ns}/pods", json={**POD, "metadata": {"name": "p2", "labels": {"app": "e"}}})
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p2", "namespace": ns}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "b"},
           "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "e"}}}}  # fmt: skip
    client.post(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets", json=pdb)
    blocked = client.post(f"/api/v1/namespaces/{ns}/pods/p2/eviction", json=eviction)
    client.delete(f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/b")
    freed = client.post(f"/api/v1/namespaces/{ns}/pods/p2/eviction", json=eviction)
    gone = client.post(f"/api/v1/namespaces/{ns}/pods/nope/eviction", json={**eviction, "metadata": {"name": "nope"}})
    return {"with budget": status(blocked), "without": status(freed), "missing pod": status(gone)}


def selectors(client: httpx.Client, ns: str) -> dict[str, Any]:
    client.post(f"/api/v1/namespaces/{ns}/pods", json={**POD, "metadata": {"name": "p3", "labels": {"app": "s"}}})

    def names(**params: str) -> list[str] | dict[str, Any]:
        answer = client.get(f"/api/v1/namespaces/{ns}/pods", params=params)
        return (
            sorted(i["metadata"]["name"] for i in answer.json()["items"])
            if answer.status_code == 200
            else status(answer)
        )

    return {"label": names(labelSelector="app=s"), "set": names(labelSelector="app in (s,t)"),
            "field": names(fieldSelector="metadata.name=p3"), "node": names(fieldSelector="spec.nodeName="),
            "bad label": names(labelSelector="app=="), "bad field": names(fieldSelector="spec.image=x")}  # fmt: skip


def graceful_delete(client: httpx.Client, ns: str) -> dict[str, Any]:
    client.post(f"/api/v1/namespaces/{ns}/pods", json={**POD, "metadata": {"name": "p4"}})
    deleted = client.delete(f"/api/v1/namespaces/{ns}/pods/p4")
    after = client.get(f"/api/v1/namespaces/{ns}/pods/p4")
    marked = bool(after.json().get("metadata", {}).get("deletionTimestamp")) if after.status_code == 200 else None
    return {"delete": status(deleted), "then": after.status_code, "marked for deletion": marked}


def unauthenticated(client: httpx.Client, ns: str) -> dict[str, Any]:
    return status(httpx.get(f"{client.base_url}/api/v1/namespaces", verify=False))  # noqa: S501 - loopback, self-signed


PROBES: dict[str, Probe] = {
    "missing object": missing, "create, then again": create_twice, "invalid object": invalid,
    "patch and stale update": stale_update, "new node": new_node, "node ports": node_ports, "watch": watch,
    "evictions": evictions, "selectors": selectors, "delete without a grace period": graceful_delete,
    "no token": unauthenticated,
}  # fmt: skip


def run(base_url: str, token: str) -> dict[str, Any]:
    ns = f"cmp-{secrets.token_hex(3)}"
    headers = {"Authorization": f"Bearer {token}"}
    # The real server's certificate is its own self-signed one, on loopback.
    with httpx.Client(base_url=base_url, headers=headers, verify=False, timeout=20) as client:  # noqa: S501
        _ns(client, ns)
        return {name: probe(client, ns) for name, probe in PROBES.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--real", default="https://127.0.0.1:26443")
    parser.add_argument("--token", default="admintoken")
    args = parser.parse_args()
    real = run(args.real, args.token)
    with FakeKubeServer(KubeFake(token=args.token)) as server:
        fake = run(server.url, args.token)
    differ = 0
    for name in PROBES:
        same = real[name] == fake[name]
        differ += not same
        print(f"{'same' if same else 'DIFFERENT'}  {name}")
        if not same:
            print(f"    real: {json.dumps(real[name], ensure_ascii=False)}")
            print(f"    fake: {json.dumps(fake[name], ensure_ascii=False)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
