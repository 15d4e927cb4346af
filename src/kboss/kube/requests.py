"""Resource requests as kube-scheduler counts them: a pod's effective request (containers, sidecars, init
containers, overhead) and quantities turned into scheduler units."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from kboss.kube.quantity import milli_ceil, parse_quantity, value_ceil

CPU = "cpu"


def scheduler_units(resources: Mapping[str, Any], where: str) -> dict[str, int]:
    """Quantities → ints as the scheduler counts them: millicores for cpu, rounded-up values otherwise."""
    out: dict[str, int] = {}
    for resource, text in resources.items():
        quantity = parse_quantity(text, f"{where}: {resource}")
        out[resource] = milli_ceil(quantity) if resource == CPU else value_ceil(quantity)
    return out


def _decimals(resources: Mapping[str, Any] | None, where: str) -> dict[str, Decimal]:
    return {res: parse_quantity(text, f"{where}: {res}") for res, text in (resources or {}).items()}


def _container_requests(container: Mapping[str, Any], where: str) -> dict[str, Decimal]:
    resources = container.get("resources") or {}
    requests = _decimals(resources.get("requests"), where)
    # The API server defaults a missing request to the limit; doing it here too makes hand-written pods
    # (tests, manifests not yet applied) count the way they will once created.
    for resource, text in (resources.get("limits") or {}).items():
        if resource not in requests:
            requests[resource] = parse_quantity(text, f"{where}: {resource}")
    return requests


def _add(total: dict[str, Decimal], more: Mapping[str, Decimal]) -> None:
    for resource, amount in more.items():
        total[resource] = total.get(resource, Decimal(0)) + amount


def _maximize(total: dict[str, Decimal], other: Mapping[str, Decimal]) -> None:
    for resource, amount in other.items():
        total[resource] = max(total.get(resource, Decimal(0)), amount)


def pod_requests(spec: Mapping[str, Any], where: str = "pod") -> dict[str, Decimal]:
    """A pod's effective request, as `k8s.io/component-helpers/resource.PodRequests` computes it.

    Sum of the containers; restartable init containers (sidecars) add to it and to every later init
    container, which run one at a time: the pod needs at least the largest of those; plus `spec.overhead`.
    """
    containers: Sequence[Mapping[str, Any]] = spec.get("containers") or ()
    if len(containers) == 1 and not spec.get("initContainers") and not spec.get("overhead"):
        return _container_requests(containers[0], where)  # the common case, taken thousands of times
    total: dict[str, Decimal] = {}
    for container in containers:
        _add(total, _container_requests(container, where))
    sidecars: dict[str, Decimal] = {}
    init_peak: dict[str, Decimal] = {}
    for container in spec.get("initContainers") or ():
        requests = _container_requests(container, where)
        if container.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            requests = dict(sidecars)
        else:
            _add(requests, sidecars)
        _maximize(init_peak, requests)
    _maximize(total, init_peak)
    _add(total, _decimals(spec.get("overhead"), where))
    return total
