"""What pods use right now, from the metrics API (`metrics.k8s.io/v1beta1`, served by metrics-server).

The metrics API is optional: a cluster without metrics-server has no such group (404), and an aggregated API
whose service is down answers 503. Both mean "usage unknown" (None), never an error: boards then show `-`.
Usage is summed over a pod's containers exactly (`kboss.kube.quantity`) and rounded up once per pod, as
`Quantity.MilliValue()` / `Value()` would: cpu in millicores, memory in bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx2
from lightkube import ALL_NS, ApiError, AsyncClient
from lightkube.generic_resource import create_namespaced_resource

from kboss.errors import InvalidParameter
from kboss.kube.client import api_errors
from kboss.kube.quantity import format_bytes, format_millicores, milli_ceil, parse_quantity, value_ceil

PodMetrics = create_namespaced_resource("metrics.k8s.io", "v1beta1", "PodMetrics", "pods")

UNKNOWN = "-"
# No such API group (no metrics-server), or an aggregated API that is registered but not answering.
_ABSENT = frozenset({404, 503})

PodKey = tuple[str, str]  # (namespace, name)


@dataclass(frozen=True)
class PodUsage:
    cpu_millicores: int
    memory_bytes: int


async def pod_usage(client: AsyncClient, *, namespace: str | None = None) -> dict[PodKey, PodUsage] | None:
    """Usage of the pods of one namespace, or of all, by (namespace, name); None when there is no metrics API.

    Pods the metrics API does not report (pending, just started) are simply absent from the answer.
    Other failures (credentials refused, cluster unreachable) are raised as kboss errors, like any read.
    """
    with api_errors("读取 Pod 指标", not_found=False):
        items = await _list(client, namespace or ALL_NS)
    return None if items is None else summarize(items)


async def _list(client: AsyncClient, namespace: str) -> list[dict[str, Any]] | None:
    try:
        return [dict(item) async for item in client.list(PodMetrics, namespace=namespace)]
    except httpx2.HTTPStatusError as exc:  # ApiError (with a Status body) or kube-aggregator's plain-text 503
        code = int(exc.status.code or 0) if isinstance(exc, ApiError) else 0
        if (code or exc.response.status_code) in _ABSENT:
            return None
        raise


def summarize(items: Iterable[Mapping[str, Any]]) -> dict[PodKey, PodUsage]:
    """PodMetrics objects → usage per pod. A pod with an unreadable quantity is left out (usage unknown)."""
    usage: dict[PodKey, PodUsage] = {}
    for item in items:
        meta = item.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not isinstance(name, str) or not isinstance(namespace, str):
            continue
        try:
            usage[(namespace, name)] = _pod_total(item.get("containers") or [])
        except InvalidParameter:
            continue
    return usage


def _pod_total(containers: Iterable[Mapping[str, Any]]) -> PodUsage:
    cpu, memory = Decimal(0), Decimal(0)
    for container in containers:
        measured = container.get("usage") or {}
        cpu += parse_quantity(str(measured.get("cpu", "0")), "cpu")
        memory += parse_quantity(str(measured.get("memory", "0")), "memory")
    return PodUsage(cpu_millicores=milli_ceil(cpu), memory_bytes=value_ceil(memory))


def usage_columns(usage: Mapping[PodKey, PodUsage] | None, namespace: str, name: str) -> dict[str, str]:
    """The site agent's `pod_cpu_usage` / `pod_memory_usage` (`250m`, `128Mi`), `-` when unknown."""
    found = usage.get((namespace, name)) if usage is not None else None
    if found is None:
        return {"pod_cpu_usage": UNKNOWN, "pod_memory_usage": UNKNOWN}
    return {
        "pod_cpu_usage": format_millicores(found.cpu_millicores),
        "pod_memory_usage": format_bytes(found.memory_bytes),
    }
