"""A controller's pods as the scheduler sees them: the pod template a workload runs, how many pods, and each pod
as a capacity product (requests, node selector, GPU model), so that "where could this pod run" is asked of
`kboss.kube.capacity` the same way for the simulated site and for a removal's check on a real cluster."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kboss.kube import capacity as cap


def pod_template(workload: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """The pod template of a controller and how many pods run from it (a CronJob: none until its schedule;
    a DaemonSet: -1, one per node)."""
    spec = workload.get("spec") or {}
    kind = workload.get("kind")
    if kind == "Pod":
        return {"spec": spec}, 1
    if kind == "CronJob":
        return spec["jobTemplate"]["spec"]["template"], 0
    if kind == "Job":
        return spec["template"], 1
    if kind == "DaemonSet":
        return spec["template"], -1
    return spec["template"], int(spec.get("replicas", 1))


def pod_requests(pod_spec: Mapping[str, Any]) -> dict[str, int]:
    return dict(cap.PodInfo.from_api({"spec": pod_spec}).requests)


def pod_product(pod_spec: Mapping[str, Any], product_id: str = "pod") -> cap.Product:
    """The pod as a capacity product: its requests, its node selector, and the GPU model its affinity asks for."""
    selector = {str(k): str(v) for k, v in (pod_spec.get("nodeSelector") or {}).items()}
    models = frozenset(cap.normalize_gpu_model(m) for m in _affinity_models(pod_spec))
    return cap.Product(product_id, pod_requests(pod_spec), selector, models)


def _affinity_models(pod_spec: Mapping[str, Any]) -> list[str]:
    terms = (
        ((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
        .get("requiredDuringSchedulingIgnoredDuringExecution", {})
        .get("nodeSelectorTerms", [])
    )
    for term in terms:
        for expr in term.get("matchExpressions", []):
            if expr.get("key") in cap.GPU_MODEL_LABEL_KEYS and expr.get("operator") == "In":
                return [str(v) for v in expr.get("values", [])]
    return []
