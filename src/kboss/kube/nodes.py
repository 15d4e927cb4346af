"""Node operations: label, cordon, drain, delete — through the API, as kubectl does them.

Drain follows `kubectl drain`: cordon; list the node's pods; leave mirror pods (the kubelet's static
pods) and DaemonSet pods alone (their controller would recreate them at once and they tolerate the
cordon); evict the rest through the Eviction subresource so PodDisruptionBudgets are honoured, retrying
while a budget answers 429; then wait until the evicted pods are really gone. Like kubectl, a running pod
no controller owns is not evicted unless forced: nothing would recreate it (for kboss, a sold "Standalone"
instance would simply vanish). With force, what could not be evicted is deleted with grace period 0.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx2
from lightkube import ALL_NS, ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Node, Pod, PodEviction
from lightkube.types import PatchType

from kboss.errors import InvalidParameter
from kboss.kube.client import api_errors, translate_error
from kboss.kube.labels import check_unlabel, is_dns1123_subdomain, validate_label_key, validate_label_value

__all__ = [
    "DrainResult",
    "PodIssue",
    "PodRef",
    "cordon",
    "delete_node",
    "drain",
    "label_node",
    "parse_label",
    "uncordon",
    "unlabel_node",
    "validate_label_key",
    "validate_label_value",
    "validate_node_name",
]

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
# Why a drain leaves a pod no controller owns (the simulated site says the same).
UNMANAGED_POD = "不受任何控制器管理,驱逐后无法重建 (只在强制移除节点时删除)"


# ---------------------------------------------------------------------------------------------
# Validation (pure)


def validate_node_name(name: str, param: str = "node_name") -> str:
    """Node names are DNS-1123 subdomains; checking first keeps odd text out of request paths."""
    if not isinstance(name, str) or not is_dns1123_subdomain(name):
        raise InvalidParameter(param, f"{name!r} 不是合法的节点名 (小写字母、数字、-和.,最长 253)")
    return name


def parse_label(text: str, param: str = "label") -> tuple[str, str | None]:
    """`k=v` → (k, v); `k=` → (k, ""); `k` or kubectl's removal form `k-` → (k, None)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(param, "标签不能为空")
    text = text.strip()
    if "=" in text:
        key, _, value = text.partition("=")
        return validate_label_key(key, param), validate_label_value(value, param)
    # A valid key never ends with "-", so a trailing one can only be kubectl's "remove" marker.
    return validate_label_key(text.removesuffix("-"), param), None


def _what(node: str) -> str:
    return f'节点 "{node}"'


# ---------------------------------------------------------------------------------------------
# Labels, cordon, delete


async def label_node(client: AsyncClient, node: str, key: str, value: str) -> dict[str, str]:
    """Set one label; everything is validated before any request. Returns the node's labels."""
    validate_node_name(node)
    validate_label_key(key, "label")
    validate_label_value(value, "label")
    return await _patch_labels(client, node, {key: value})


async def unlabel_node(client: AsyncClient, node: str, key: str, value: str | None = None) -> dict[str, str]:
    """Remove one label (absent is fine, as with kubectl); with `value`, only when the node has that value.

    Returns the node's labels. The patch carries the resourceVersion read, so a concurrent change is refused.
    """
    validate_node_name(node)
    validate_label_key(key, "label")
    if value is None:
        # In a JSON merge patch, null deletes the key.
        return await _patch_labels(client, node, {key: None})
    with api_errors(_what(node)):
        found = await client.get(Node, node)
    current = dict((found.metadata.labels if found.metadata else None) or {})
    check_unlabel(node, key, value, current)
    if key not in current:
        return current
    version = found.metadata.resourceVersion if found.metadata else None
    patch = {"metadata": {"labels": {key: None}, "resourceVersion": version}}
    with api_errors(_what(node)):
        updated = await client.patch(Node, node, patch, patch_type=PatchType.MERGE)
    return dict((updated.metadata.labels if updated.metadata else None) or {})


async def _patch_labels(client: AsyncClient, node: str, labels: dict[str, str | None]) -> dict[str, str]:
    with api_errors(_what(node)):
        updated = await client.patch(Node, node, {"metadata": {"labels": labels}}, patch_type=PatchType.MERGE)
    return dict((updated.metadata.labels if updated.metadata else None) or {})


async def cordon(client: AsyncClient, node: str) -> bool:
    """Mark the node unschedulable; False if it already was."""
    return await _set_unschedulable(client, node, True)


async def uncordon(client: AsyncClient, node: str) -> bool:
    """Make the node schedulable again; False if it already was."""
    return await _set_unschedulable(client, node, False)


async def _set_unschedulable(client: AsyncClient, node: str, wanted: bool) -> bool:
    validate_node_name(node)
    with api_errors(_what(node)):
        current = await client.get(Node, node)
        if bool(current.spec and current.spec.unschedulable) == wanted:
            return False
        # kubectl uncordon removes the field rather than writing false; null does that in a merge patch.
        patch = {"spec": {"unschedulable": True if wanted else None}}
        await client.patch(Node, node, patch, patch_type=PatchType.MERGE)
    return True


async def delete_node(client: AsyncClient, node: str) -> None:
    """Delete the Node object (NotFound if there is none). Drain first: this does not."""
    validate_node_name(node)
    with api_errors(_what(node)):
        await client.delete(Node, node)


# ---------------------------------------------------------------------------------------------
# Drain


@dataclass(frozen=True, order=True)
class PodRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class PodIssue:
    pod: PodRef
    reason: str


@dataclass
class DrainResult:
    """What a drain did. `ok` means the node holds nothing but skipped (DaemonSet, mirror) pods."""

    node: str
    evicted: list[PodRef] = field(default_factory=list)
    skipped: list[PodIssue] = field(default_factory=list)
    failed: list[PodIssue] = field(default_factory=list)
    deleted: list[PodRef] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def sorted(self) -> DrainResult:
        """Evictions finish in any order; reports read better in a stable one."""
        self.evicted.sort()
        self.deleted.sort()
        self.skipped.sort(key=lambda issue: issue.pod)
        self.failed.sort(key=lambda issue: issue.pod)
        return self

    def as_dict(self) -> dict[str, Any]:
        def issues(items: list[PodIssue]) -> list[dict[str, str]]:
            return [{"pod": str(i.pod), "reason": i.reason} for i in items]

        return {
            "node": self.node,
            "ok": self.ok,
            "evicted": [str(p) for p in self.evicted],
            "deleted": [str(p) for p in self.deleted],
            "skipped": issues(self.skipped),
            "failed": issues(self.failed),
        }


@dataclass
class _DrainRun:
    client: AsyncClient
    result: DrainResult
    deadline: float
    poll: float
    force: bool

    def remaining(self) -> float:
        return self.deadline - asyncio.get_running_loop().time()


async def drain(
    client: AsyncClient,
    node: str,
    # Not a cancellation deadline (asyncio.timeout): the budget for 429 retries and waiting, after
    # which the drain still reports, and with force deletes, what is left.
    timeout: float = 300.0,  # noqa: ASYNC109
    force: bool = False,
    *,
    poll_interval: float = 1.0,
    concurrency: int = 8,
) -> DrainResult:
    """Cordon and empty a node within `timeout` seconds (see the module doc for the rules).

    Failures of single pods are reported in the result; an unreachable cluster raises.
    """
    validate_node_name(node)
    run = _DrainRun(client, DrainResult(node), asyncio.get_running_loop().time() + timeout, poll_interval, force)
    await cordon(client, node)
    to_evict = _select(run, await _pods_on(client, node))
    accepted = await _evict_all(run, to_evict, max(1, concurrency))
    await _wait_gone(run, accepted)
    if force and run.result.failed:
        await _force_delete(run)
    return run.result.sorted()


async def _pods_on(client: AsyncClient, node: str) -> list[Pod]:
    with api_errors(_what(node)):
        return [p async for p in client.list(Pod, namespace=ALL_NS, fields={"spec.nodeName": node})]


def _ref(pod: Pod) -> PodRef:
    meta = pod.metadata
    return PodRef((meta.namespace if meta else None) or "default", (meta.name if meta else None) or "")


def _uid(pod: Pod) -> str:
    return (pod.metadata.uid if pod.metadata else None) or ""


def _select(run: _DrainRun, pods: list[Pod]) -> list[Pod]:
    """Pods to evict; mirror and DaemonSet pods go to `skipped`, unmanaged ones to `failed` unless forced."""
    chosen = []
    for pod in pods:
        meta = pod.metadata or ObjectMeta()
        owner = next((o for o in meta.ownerReferences or [] if o.controller), None)
        if MIRROR_ANNOTATION in (meta.annotations or {}):
            run.result.skipped.append(PodIssue(_ref(pod), "镜像 Pod (kubelet 管理的静态 Pod)"))
        elif owner is not None and owner.kind == "DaemonSet":
            run.result.skipped.append(PodIssue(_ref(pod), f"由 DaemonSet {owner.name} 管理"))
        elif owner is None and not run.force and not _finished(pod):
            run.result.failed.append(PodIssue(_ref(pod), UNMANAGED_POD))
        else:
            chosen.append(pod)
    return chosen


def _finished(pod: Pod) -> bool:
    """A pod that ran to its end loses nothing by going, controller or not (kubectl lets it go too)."""
    return (pod.status.phase if pod.status else None) in ("Succeeded", "Failed")


async def _evict_all(run: _DrainRun, pods: list[Pod], concurrency: int) -> dict[PodRef, str]:
    """Evict in parallel (bounded); returns the pods whose eviction was accepted, with their UIDs."""
    limit = asyncio.Semaphore(concurrency)

    async def one(pod: Pod) -> bool:
        async with limit:
            return await _evict(run, pod)

    try:
        # A TaskGroup cancels the other evictions as soon as one hits a fatal error (cluster gone).
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(pod)) for pod in pods]
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None
    return {_ref(pod): _uid(pod) for pod, task in zip(pods, tasks, strict=True) if task.result()}


async def _evict(run: _DrainRun, pod: Pod) -> bool:
    """True once the eviction is accepted (or the pod is already gone); 429s are retried until the deadline."""
    ref = _ref(pod)
    eviction = PodEviction(metadata=ObjectMeta(name=ref.name, namespace=ref.namespace))
    while True:
        try:
            await run.client.create(eviction, name=ref.name, namespace=ref.namespace)
            return True
        except ApiError as exc:
            if exc.status.code == 404:
                return True
            if exc.status.code != 429 or run.remaining() <= run.poll:
                run.result.failed.append(PodIssue(ref, _eviction_failure(exc)))
                return False
        except httpx2.HTTPError as exc:
            raise translate_error(exc, f"Pod {ref}") from exc
        # A disruption budget (or API throttling) said "not now": it may allow it once other pods move.
        await asyncio.sleep(run.poll)


def _eviction_failure(exc: ApiError) -> str:
    status = exc.status
    causes = [c.message for c in ((status.details.causes if status.details else None) or []) if c.message]
    text = "; ".join([str(status.message or status.reason or status.code), *causes])
    if status.code == 429:
        return f"驱逐被中断预算 (PodDisruptionBudget) 阻止直至超时: {text}"
    return f"驱逐被拒绝 ({status.code}): {text}"


async def _wait_gone(run: _DrainRun, accepted: dict[PodRef, str]) -> None:
    """Wait until evicted pods have left the node; a same-name pod with another UID is a replacement."""
    pending = dict(accepted)
    while pending:
        present = {_ref(pod): _uid(pod) for pod in await _pods_on(run.client, run.result.node)}
        for ref in [r for r, uid in pending.items() if present.get(r) != uid]:
            run.result.evicted.append(ref)
            del pending[ref]
        if not pending or run.remaining() <= 0:
            break
        await asyncio.sleep(min(run.poll, run.remaining()))
    for ref in sorted(pending):
        run.result.failed.append(PodIssue(ref, "已接受驱逐,但到超时 Pod 仍未终止"))


async def _force_delete(run: _DrainRun) -> None:
    """With force, whatever could not be evicted is deleted at once (grace period 0)."""
    still_failed = []
    for issue in run.result.failed:
        try:
            await run.client.delete(Pod, issue.pod.name, namespace=issue.pod.namespace, grace_period=0)
        except ApiError as exc:
            if exc.status.code != 404:
                still_failed.append(PodIssue(issue.pod, f"{issue.reason}; 强制删除失败: {exc.status.message}"))
                continue
        except httpx2.HTTPError as exc:
            raise translate_error(exc, f"Pod {issue.pod}") from exc
        run.result.deleted.append(issue.pod)
    run.result.failed = still_failed
