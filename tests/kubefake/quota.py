"""The LimitRanger and ResourceQuota admission plugins, and ResourceQuota status, for pods and claims.

No quota controller runs here, so usage is computed on the spot from the namespace's pods (not terminated) and
claims. Covered: `pods`, `persistentvolumeclaims`, `requests.storage`, `cpu`/`memory` (= requests),
`requests.*` and `limits.*` of cpu, memory and extended resources (`requests.nvidia.com/gpu`); scopes,
`count/*` and storage-class quotas are not. Wording as kube-apiserver's `pkg/admission/plugin/resourcequota`:

    pods "p" is forbidden: exceeded quota: kboss-quota, requested: requests.cpu=2, used: requests.cpu=1,
    limited: requests.cpu=2
    pods "p" is forbidden: failed quota: kboss-quota: must specify limits.cpu,requests.memory
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import ROUND_CEILING, Decimal
from typing import Any

from tests.kubefake.errors import ApiStatusError
from tests.kubefake.resources import ResourceType, by_kind

Lookup = Callable[[str], list[dict[str, Any]]]  # kind → the namespace's objects of that kind
_QUANTITY = re.compile(r"([+-]?[0-9.]+)([KMGTPE]i|[eE][+-]?[0-9]+|[numkMGTPE])?")
_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
# A quota on these makes every container state them (the pod evaluator's "validationSet").
_MUST_SPECIFY = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory")
COUNTED = {kind: by_kind(kind) for kind in ("Pod", "PersistentVolumeClaim")}


def parse(text: Any) -> Decimal:
    match = _QUANTITY.fullmatch(str(text).strip())
    if match is None:
        raise ValueError(f"quantities must match the regular expression: {text}")
    number, suffix = Decimal(match[1]), match[2] or ""
    if suffix in _BINARY:
        return number * Decimal(1024 ** _BINARY[suffix])
    if suffix[:1] in ("e", "E"):
        return number.scaleb(int(suffix[1:]))
    return number.scaleb(_DECIMAL.get(suffix, 0))


def show(resource: str, amount: Decimal) -> str:
    """Quantity.String() as it comes out for kboss's amounts: `1500m`, `2`, `512Mi`."""
    if resource.endswith("cpu"):
        milli = int((amount * 1000).to_integral_value(ROUND_CEILING))
        return str(milli // 1000) if milli % 1000 == 0 else f"{milli}m"
    whole = int(amount.to_integral_value(ROUND_CEILING))
    for suffix, power in sorted(_BINARY.items(), key=lambda item: -item[1]):
        if whole and whole % 1024**power == 0 and resource.endswith(("memory", "storage")):
            return f"{whole // 1024**power}{suffix}"
    return str(whole)


# ---------------------------------------------------------------------------------------------
# LimitRanger (mutating): container defaults


def limit_defaults(rt: ResourceType, obj: dict[str, Any], lookup: Lookup) -> None:
    """Fill each container's missing limits from `default` and requests from `defaultRequest`, after the pod's
    own defaulting (a stated limit is the request when none is stated). Only where LimitRanges exist."""
    if rt.kind != "Pod":
        return
    items = [item for lr in lookup("LimitRange") for item in (lr.get("spec") or {}).get("limits") or []]
    items = [item for item in items if item.get("type") == "Container"]
    if not items:
        return
    for container in _containers(obj):
        resources = container.setdefault("resources", {})
        for resource, amount in (resources.get("limits") or {}).items():
            resources.setdefault("requests", {}).setdefault(resource, amount)
        for item in items:
            for which, key in (("limits", "default"), ("requests", "defaultRequest")):
                for resource, amount in (item.get(key) or {}).items():
                    resources.setdefault(which, {}).setdefault(resource, amount)
        if not resources:
            del container["resources"]


def _containers(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    spec = pod.get("spec") or {}
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def limit_causes(rt: ResourceType, obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Validation (after LimitRanger's defaults, hence here): no container may request more than its limit."""
    if rt.kind != "Pod":
        return []
    causes = []
    spec = obj.get("spec") or {}
    for group in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(group) or []):
            resources = container.get("resources") or {}
            for resource, limit in (resources.get("limits") or {}).items():
                request = (resources.get("requests") or {}).get(resource)
                if request is not None and _compare(request, limit) > 0:
                    where = f"spec.{group}[{index}].resources.requests[{resource}]"
                    causes.append(
                        (where, f'Invalid value: "{request}": must be less than or equal to {resource} limit')
                    )
    return causes


def _compare(left: Any, right: Any) -> int:
    try:
        a, b = parse(left), parse(right)
    except ValueError:
        return 0  # malformed quantities are the schema's business
    return (a > b) - (a < b)


# ---------------------------------------------------------------------------------------------
# Usage and admission


def usage(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Decimal]:
    """What one pod or claim counts against a quota."""
    if rt.kind == "PersistentVolumeClaim":
        storage = ((obj.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", 0)
        return {"persistentvolumeclaims": Decimal(1), "requests.storage": parse(storage)}
    if rt.kind != "Pod" or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return {}
    counted: dict[str, Decimal] = {"pods": Decimal(1)}
    for which in ("requests", "limits"):
        for resource, amount in _pod_amounts(obj, which).items():
            counted[f"{which}.{resource}"] = amount
            if which == "requests" and resource in ("cpu", "memory"):
                counted[resource] = amount
    return counted


def _pod_amounts(pod: Mapping[str, Any], which: str) -> dict[str, Decimal]:
    """Sum over containers, at least the largest init container (they run one at a time)."""
    spec = pod.get("spec") or {}
    total: dict[str, Decimal] = {}
    for container in spec.get("containers") or []:
        for resource, amount in _stated(container, which).items():
            total[resource] = total.get(resource, Decimal(0)) + amount
    for container in spec.get("initContainers") or []:
        for resource, amount in _stated(container, which).items():
            total[resource] = max(total.get(resource, Decimal(0)), amount)
    return total


def _stated(container: Mapping[str, Any], which: str) -> dict[str, Decimal]:
    """A container's requests or limits; a request not stated is its limit (the API server's defaulting)."""
    resources = container.get("resources") or {}
    amounts = dict(resources.get("limits") or {}) if which == "requests" else {}
    amounts |= resources.get(which) or {}
    return {resource: parse(amount) for resource, amount in amounts.items()}


def used(quota: Mapping[str, Any], lookup: Lookup) -> dict[str, Decimal]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    totals = dict.fromkeys(hard, Decimal(0))
    for kind, rt in COUNTED.items():
        for obj in lookup(kind):
            for resource, amount in usage(rt, obj).items():
                if resource in totals:
                    totals[resource] += amount
    return totals


def with_status(quota: dict[str, Any], lookup: Lookup) -> dict[str, Any]:
    """The status the quota controller keeps: `hard` copied from the spec, `used` for each of its resources."""
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    counted = used(quota, lookup)
    return quota | {"status": {"hard": hard, "used": {r: show(r, a) for r, a in counted.items()}}}


def admit(rt: ResourceType, obj: Mapping[str, Any], lookup: Lookup) -> None:
    """Refuse a new pod or claim that a quota of its namespace does not leave room for (403 Forbidden)."""
    requested = usage(rt, obj)
    if not requested:
        return
    name = str(obj["metadata"].get("name", ""))
    for quota in sorted(lookup("ResourceQuota"), key=lambda q: str(q["metadata"]["name"])):
        hard = {r: parse(a) for r, a in ((quota.get("spec") or {}).get("hard") or {}).items()}
        missing = _missing(rt, obj, hard)
        if missing:
            _refuse(rt, name, f"failed quota: {quota['metadata']['name']}: must specify {','.join(missing)}")
        counted = used(quota, lookup)
        exceeded = sorted(r for r in hard if r in requested and counted[r] + requested[r] > hard[r])
        if exceeded:
            _refuse(rt, name, _exceeded(str(quota["metadata"]["name"]), exceeded, requested, counted, hard))


def _missing(rt: ResourceType, obj: Mapping[str, Any], hard: Mapping[str, Decimal]) -> list[str]:
    if rt.kind != "Pod":
        return []
    missing = set()
    for resource in (r for r in _MUST_SPECIFY if r in hard):
        which, _, short = resource.rpartition(".")
        if any(short not in _stated(container, which or "requests") for container in _containers(obj)):
            missing.add(resource)
    return sorted(missing)


def _exceeded(
    name: str,
    exceeded: list[str],
    requested: Mapping[str, Decimal],
    counted: Mapping[str, Decimal],
    hard: Mapping[str, Decimal],
) -> str:
    def pretty(amounts: Mapping[str, Decimal]) -> str:
        return ",".join(f"{r}={show(r, amounts[r])}" for r in exceeded)

    return f"exceeded quota: {name}, requested: {pretty(requested)}, used: {pretty(counted)}, limited: {pretty(hard)}"


def _refuse(rt: ResourceType, name: str, why: str) -> None:
    details = {"name": name, "kind": rt.plural}
    raise ApiStatusError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {why}', details)
