"""`KubeFake`: the fake cluster's state, its seeding API and the log of requests it received."""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.kubefake import metrics, seed
from tests.kubefake.resources import by_kind
from tests.kubefake.store import Store, rfc3339


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any
    status: int = 0


class KubeFake:
    """A kube-apiserver's state. `token` is the bearer token it accepts; `forbidden_tokens` authenticate but
    are denied everything (403), to test RBAC failures. With `token=None` any caller is let in (mutual TLS)."""

    def __init__(self, token: str | None = "kboss-fake-token", forbidden_tokens: tuple[str, ...] = ()) -> None:
        self.token = token
        self.forbidden_tokens = set(forbidden_tokens)
        self.store = Store()
        self._requests: list[RecordedRequest] = []
        self._requests_lock = threading.Lock()
        self._metrics_lock = threading.Lock()
        self._pod_metrics: dict[tuple[str, str], dict[str, Any]] | None = None
        self.metrics_down = False
        # Watches (`kubefake.watch`): how often a watch that allows them gets a BOOKMARK (the API server: about
        # once a minute), and a counter whose change ends every open watch, as a restarting API server does.
        self.bookmark_seconds = 60.0
        self.watch_generation = 0

    def close_watches(self) -> None:
        """End every open watch (its client must watch again from the last resourceVersion it saw)."""
        self.watch_generation += 1

    def reset(self) -> None:
        """Empty cluster, empty request log, immediate pod deletion, no metrics API."""
        self.store.reset()
        self.clear_requests()
        self.bookmark_seconds = 60.0
        with self._metrics_lock:
            self._pod_metrics = None
            self.metrics_down = False

    # -- request log ---------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._requests_lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._requests_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._requests_lock:
            self._requests.clear()

    def requests_to(self, method: str | None = None, path_contains: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if (method is None or r.method == method) and path_contains in r.path]

    # -- knobs ---------------------------------------------------------------------------------------

    @property
    def pod_deletion_delay(self) -> float:
        return self.store.pod_deletion_delay

    @pod_deletion_delay.setter
    def pod_deletion_delay(self, seconds: float) -> None:
        """Deleted pods linger (Terminating) this long, as while a kubelet stops them."""
        self.store.pod_deletion_delay = seconds

    # -- inspection ----------------------------------------------------------------------------------

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        rt = by_kind(kind)
        return self.store.find(rt, namespace or ("default" if rt.namespaced else None), name)

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.store.items(by_kind(kind), namespace)

    # -- metrics API (metrics-server) ---------------------------------------------------------------------

    def enable_metrics(self) -> None:
        """Serve `metrics.k8s.io/v1beta1` (empty until pods get metrics); without it, the group answers 404."""
        with self._metrics_lock:
            if self._pod_metrics is None:
                self._pod_metrics = {}

    def add_pod_metrics(
        self, name: str, namespace: str = "default", *, containers: Mapping[str, Mapping[str, str]]
    ) -> dict[str, Any]:
        """The usage metrics-server reports for a pod, per container: `{"c0": {"cpu": "250m", "memory": "128Mi"}}`.
        Enables the metrics API. The pod itself is not required to exist, as right after its deletion."""
        obj = metrics.pod_metrics(name, namespace, {c: dict(u) for c, u in containers.items()}, rfc3339())
        with self._metrics_lock:
            if self._pod_metrics is None:
                self._pod_metrics = {}
            self._pod_metrics[(namespace, name)] = obj
        return copy.deepcopy(obj)

    def pod_metrics_snapshot(self) -> dict[tuple[str, str], dict[str, Any]] | None:
        """A copy of the seeded PodMetrics by (namespace, name); None when the metrics API is not enabled."""
        with self._metrics_lock:
            return None if self._pod_metrics is None else copy.deepcopy(self._pod_metrics)

    # -- seeding (no validation: the objects are taken as the cluster's truth) ---------------------------

    def add(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return self.store.put(by_kind(str(obj["kind"])), obj)

    def add_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
        meta = {"name": name, "labels": {"kubernetes.io/metadata.name": name, **(labels or {})}}
        return self.add(
            {
                "kind": "Namespace",
                "metadata": meta,
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            }
        )

    def add_node(self, name: str, **options: Any) -> dict[str, Any]:
        """See `seed.node` for the options (roles, ready, unschedulable, taints, cpu, memory, gpus...)."""
        return self.add(seed.node(name, **options))

    def add_pod(self, name: str, namespace: str = "default", **options: Any) -> dict[str, Any]:
        """See `seed.pod` for the options (state, node, owner, mirror, restarts, labels...)."""
        return self.add(seed.pod(name, namespace, **options))

    def add_pdb(
        self,
        name: str,
        namespace: str,
        match_labels: Mapping[str, str],
        *,
        min_available: int | str | None = None,
        max_unavailable: int | str | None = None,
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {"selector": {"matchLabels": dict(match_labels)}}
        if min_available is not None:
            spec["minAvailable"] = min_available
        if max_unavailable is not None:
            spec["maxUnavailable"] = max_unavailable
        return self.add(
            {"kind": "PodDisruptionBudget", "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        )
