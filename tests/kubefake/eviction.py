"""The `pods/{name}/eviction` subresource and PodDisruptionBudget status, as policy/v1 defines them.

No disruption controller runs here, so budgets are evaluated on the spot from the pods they select:
expected = the scale (spec.replicas) of their controllers when those objects exist, else the count of selected
pods not terminated; healthy = those Ready and not being deleted; desired from minAvailable / maxUnavailable
(percentages rounded up); disruptionsAllowed = healthy - desired.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tests.kubefake.errors import ApiStatusError, bad_request, status_body
from tests.kubefake.resources import by_kind
from tests.kubefake.selectors import selector_object_matches
from tests.kubefake.store import Store

POD = by_kind("Pod")
PDB = by_kind("PodDisruptionBudget")


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return ready and "deletionTimestamp" not in pod["metadata"]


def _terminal(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def _scaled(value: Any, expected: int) -> int:
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(int(value[:-1]) * expected / 100)
    return int(value)


def budget_status(
    pdb: Mapping[str, Any], pods: list[dict[str, Any]], scales: Mapping[tuple[str, str], int]
) -> dict[str, Any]:
    spec = pdb.get("spec") or {}
    selected = [
        p
        for p in pods
        if selector_object_matches(spec.get("selector"), p["metadata"].get("labels")) and not _terminal(p)
    ]
    expected, healthy = _expected(selected, scales), sum(1 for p in selected if _ready(p))
    if spec.get("minAvailable") is not None:
        desired = _scaled(spec["minAvailable"], expected)
    elif spec.get("maxUnavailable") is not None:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected))
    else:
        desired = min(1, expected)
    return {
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "disruptionsAllowed": max(0, healthy - desired),
        "observedGeneration": pdb["metadata"].get("generation", 1),
    }


def _expected(selected: list[dict[str, Any]], scales: Mapping[tuple[str, str], int]) -> int:
    counts: dict[Any, int] = {}
    for pod in selected:
        owner = next((o for o in pod["metadata"].get("ownerReferences") or [] if o.get("controller")), None)
        key = (owner["kind"], owner["name"]) if owner else ("", pod["metadata"]["name"])
        counts[key] = counts.get(key, 0) + 1
    return sum(scales.get(key, count) for key, count in counts.items())


def _scales(store: Store, namespace: str) -> dict[tuple[str, str], int]:
    """spec.replicas of the namespace's ReplicaSets and StatefulSets: what a budget expects."""
    scales = {}
    for kind in ("ReplicaSet", "StatefulSet"):
        for obj in store.items(by_kind(kind), namespace):
            scales[(kind, obj["metadata"]["name"])] = int((obj.get("spec") or {}).get("replicas", 1))
    return scales


def with_status(store: Store, pdb: dict[str, Any]) -> dict[str, Any]:
    """A PDB as the API would show it once the disruption controller has caught up."""
    namespace = pdb["metadata"]["namespace"]
    return pdb | {"status": budget_status(pdb, store.items(POD, namespace), _scales(store, namespace))}


def evict(store: Store, namespace: str, name: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or (body.get("metadata") or {}).get("name") != name:
        raise bad_request("name in URL does not match name in Eviction object")
    grace = (body.get("deleteOptions") or {}).get("gracePeriodSeconds")
    with store.lock:
        pod = store.get(POD, namespace, name)
        if not _protected(pod):
            return _evicted(store, namespace, name, grace)
        budgets = [b for b in store.items(PDB, namespace) if _selects(b, pod)]
        if len(budgets) > 1:
            raise ApiStatusError(
                500,
                "InternalError",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )
        if budgets:
            status = budget_status(budgets[0], store.items(POD, namespace), _scales(store, namespace))
            _check_budget(budgets[0], pod, status)
        return _evicted(store, namespace, name, grace)


def _protected(pod: Mapping[str, Any]) -> bool:
    """Budgets only guard running pods: terminated, pending or deleting ones are deleted directly."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed", "Pending") and "deletionTimestamp" not in pod["metadata"]


def _selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    return selector_object_matches((pdb.get("spec") or {}).get("selector"), pod["metadata"].get("labels"))


def _check_budget(pdb: Mapping[str, Any], pod: Mapping[str, Any], status: Mapping[str, Any]) -> None:
    if _ready(pod):
        allowed = status["disruptionsAllowed"] > 0
    else:  # unhealthyPodEvictionPolicy IfHealthyBudget (the default) or AlwaysAllow
        always = (pdb.get("spec") or {}).get("unhealthyPodEvictionPolicy") == "AlwaysAllow"
        allowed = always or status["currentHealthy"] >= status["desiredHealthy"]
    if allowed:
        return
    cause = (
        f"The disruption budget {pdb['metadata']['name']} needs {status['desiredHealthy']} healthy pods and has "
        f"{status['currentHealthy']} currently"
    )
    raise ApiStatusError(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        {"causes": [{"reason": "DisruptionBudget", "message": cause}]},
    )


def _evicted(store: Store, namespace: str, name: str, grace: int | None) -> dict[str, Any]:
    store.delete(POD, namespace, name, grace)
    return status_body(201, "", "", success=True)
