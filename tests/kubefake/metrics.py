"""The `metrics.k8s.io/v1beta1` API of metrics-server: PodMetrics, read only, from what the test seeded.

A cluster without metrics-server has no such group: the API server answers 404 (`the server could not find the
requested resource`), which is what the fake does until a test seeds metrics. With `fake.metrics_down` the group
is registered but its service is not answering: kube-aggregator's 503 with a plain-text body.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, PlainTextResponse, Response

from tests.kubefake.errors import ApiStatusError

PREFIX = "/apis/metrics.k8s.io/v1beta1"
API_VERSION = "metrics.k8s.io/v1beta1"
WINDOW = "15.011s"
# The group's discovery document (`kubectl api-resources`); only pods are served, as kboss reads only those.
DISCOVERY = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": API_VERSION,
    "resources": [
        {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}
    ],
}


def pod_metrics(name: str, namespace: str, containers: dict[str, dict[str, str]], timestamp: str) -> dict[str, Any]:
    """A PodMetrics object as metrics-server serves it; `containers` maps names to usage (`cpu`, `memory`)."""
    return {
        "kind": "PodMetrics",
        "apiVersion": API_VERSION,
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": timestamp},
        "timestamp": timestamp,
        "window": WINDOW,
        "containers": [{"name": c, "usage": dict(usage)} for c, usage in containers.items()],
    }


def serve(metrics: dict[tuple[str, str], dict[str, Any]] | None, down: bool, method: str, path: str) -> Response:
    """GET `/pods`, `/namespaces/{ns}/pods` or `/namespaces/{ns}/pods/{name}` under the group's prefix;
    `metrics` is a snapshot by (namespace, name), None when the cluster has no metrics API."""
    if metrics is None:
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource")
    if down:
        return PlainTextResponse("service unavailable\n", 503)
    if method != "GET":
        raise ApiStatusError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    if path.rstrip("/") == PREFIX:
        return JSONResponse(DISCOVERY)
    parts = [p for p in path[len(PREFIX) :].split("/") if p]
    namespace: str | None = None
    if len(parts) >= 3 and parts[0] == "namespaces":
        namespace, parts = parts[1], parts[2:]
    if not parts or parts[0] != "pods" or len(parts) > 2:
        raise ApiStatusError(404, "NotFound", "the server could not find the requested resource")
    if len(parts) == 2:
        found = metrics.get((namespace or "", parts[1])) if namespace else None
        if found is None:
            raise ApiStatusError(
                404,
                "NotFound",
                f'podmetrics.metrics.k8s.io "{parts[1]}" not found',
                {"name": parts[1], "group": "metrics.k8s.io", "kind": "pods"},
            )
        return JSONResponse(found)
    items = [obj for key, obj in sorted(metrics.items()) if namespace in (None, key[0])]
    return JSONResponse({"kind": "PodMetricsList", "apiVersion": API_VERSION, "metadata": {}, "items": items})
