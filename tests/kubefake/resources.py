"""The resource types the fake serves, and URL path → (type, namespace, name, subresource)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: how the API names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        """`Deployment.apps`, `Pod`: how validation messages name the kind."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "Namespace", False),
    ResourceType("", "v1", "nodes", "Node", False),
    ResourceType("", "v1", "pods", "Pod", True),
    ResourceType("", "v1", "services", "Service", True),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", True),
    ResourceType("", "v1", "secrets", "Secret", True),
    ResourceType("", "v1", "configmaps", "ConfigMap", True),
    ResourceType("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True),
    ResourceType("", "v1", "resourcequotas", "ResourceQuota", True),
    ResourceType("", "v1", "limitranges", "LimitRange", True),
    ResourceType("apps", "v1", "deployments", "Deployment", True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", True),
    ResourceType("apps", "v1", "daemonsets", "DaemonSet", True),
    ResourceType("apps", "v1", "replicasets", "ReplicaSet", True),
    ResourceType("batch", "v1", "jobs", "Job", True),
    ResourceType("batch", "v1", "cronjobs", "CronJob", True),
    ResourceType("networking.k8s.io", "v1", "ingresses", "Ingress", True),
    ResourceType("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True),
    ResourceType("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
)
_BY_PATH = {(t.group, t.version, t.plural): t for t in TYPES}
_BY_KIND = {t.kind: t for t in TYPES}
_BY_PLURAL = {(t.group, t.plural): t for t in TYPES}
_SUBRESOURCES = {"status", "eviction", "finalize"}


def by_kind(kind: str) -> ResourceType:
    return _BY_KIND[kind]


def by_key(key: tuple[str, str, str, str]) -> ResourceType:
    """The type of a stored object's key (group, plural, namespace, name)."""
    return _BY_PLURAL[key[:2]]


@dataclass(frozen=True)
class Target:
    """What a request path addresses; `namespace` None on a namespaced type means all namespaces."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def parse_path(path: str) -> Target | None:
    """`/api/v1/namespaces/ns/pods/x/eviction` → Target; None for paths that serve no known resource."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    # /namespaces/{ns}/{plural}... unless it is /namespaces/{name}/{status|finalize}.
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in _SUBRESOURCES:
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = _BY_PATH.get((group, version, rest[0]))
    if rt is None or (namespace is not None and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if sub is not None and sub not in _SUBRESOURCES:
        return None
    return Target(rt, namespace, name, sub)
