"""Server-side apply and delete of lists of plain manifests, and parsing of multi-document YAML.

Objects are sent as the dicts they are (not round-tripped through typed models, which would drop fields
the models do not know and reject values before the API server could explain what is wrong); lightkube's
resource registry only tells where each kind lives (group, version, plural, namespaced or not). Kinds it
does not know are looked up among the cluster's CustomResourceDefinitions once per call.

Order matters for a first apply: a Namespace before what lives in it, ServiceAccounts, Secrets and claims
before the workloads that use them, workloads before their Service and Ingress. Deletion goes the other
way round, and an object that is already gone counts as deleted.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import yaml
from lightkube import ApiError, AsyncClient
from lightkube.core import resource as lk_resource
from lightkube.core.exceptions import LoadResourceError
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import async_load_in_cluster_generic_resources
from lightkube.types import CascadeType, PatchType

from kboss import messages
from kboss.errors import InvalidParameter, KbossError
from kboss.kube.client import api_errors

FIELD_MANAGER = "kboss"
MAX_YAML_BYTES = 3 * 1024 * 1024  # etcd refuses objects over ~1.5 MiB; a few of them fit

APPLY_RANK: dict[str, int] = {
    "CustomResourceDefinition": 0,
    "Namespace": 1,
    "ResourceQuota": 2,
    "LimitRange": 2,
    "PriorityClass": 2,
    "StorageClass": 2,
    "ServiceAccount": 3,
    "Secret": 3,
    "ConfigMap": 3,
    "PersistentVolume": 3,
    "PersistentVolumeClaim": 4,
    "ClusterRole": 5,
    "Role": 5,
    "ClusterRoleBinding": 6,
    "RoleBinding": 6,
    "Pod": 7,
    "ReplicaSet": 7,
    "Deployment": 7,
    "StatefulSet": 7,
    "DaemonSet": 7,
    "Job": 7,
    "CronJob": 7,
    "PodDisruptionBudget": 8,
    "HorizontalPodAutoscaler": 8,
    "Service": 9,
    "Ingress": 10,
}
_UNKNOWN_RANK = 8
# Written by the server; an apply body carrying them is either refused or a stale precondition.
_SERVER_FIELDS = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
_API_VERSION = re.compile(r"(?:[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?/)?v[0-9]+(?:(?:alpha|beta)[0-9]+)?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")

Action = Literal["applied", "deleted", "absent"]


class _HasToDict(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


Manifest = Mapping[str, Any] | _HasToDict


@dataclass(frozen=True)
class ObjectResult:
    """One object applied or deleted; `resource_version` is the server's after an apply."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    action: Action
    resource_version: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


@dataclass(frozen=True)
class _Prepared:
    resource: Any  # a lightkube resource class
    body: dict[str, Any]
    namespace: str | None

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    def result(self, action: Action, resource_version: str | None = None) -> ObjectResult:
        api_version = str(self.body["apiVersion"])
        return ObjectResult(api_version, self.kind, self.name, self.namespace, action, resource_version)


# ---------------------------------------------------------------------------------------------
# Apply / delete


async def apply_objects(
    client: AsyncClient,
    objects: Iterable[Manifest],
    *,
    field_manager: str = FIELD_MANAGER,
    namespace: str | None = None,
    force: bool = True,
) -> list[ObjectResult]:
    """Server-side apply every object, in dependency order, taking over conflicting fields (force).

    Namespaced objects without `metadata.namespace` go to `namespace` (else the client's default).
    On a failure, the error's `data` lists what was applied before it.
    """
    prepared = await _prepare_all(client, objects, namespace, for_delete=False)
    done: list[ObjectResult] = []
    for item in sorted(prepared, key=lambda p: APPLY_RANK.get(p.kind, _UNKNOWN_RANK)):
        try:
            with api_errors(str(item.result("applied")), not_found=False):
                obj = await client.patch(
                    item.resource,
                    item.name,
                    item.body,
                    namespace=item.namespace,
                    patch_type=PatchType.APPLY,
                    field_manager=field_manager,
                    force=force,
                )
        except KbossError as err:
            err.data = {"applied": [str(r) for r in done], "failed": str(item.result("applied"))}
            raise
        done.append(item.result("applied", _resource_version(obj)))
    return done


async def delete_objects(
    client: AsyncClient, objects: Iterable[Manifest], *, namespace: str | None = None
) -> list[ObjectResult]:
    """Delete every object in reverse dependency order; one already gone is reported `absent`."""
    prepared = await _prepare_all(client, objects, namespace, for_delete=True)
    done: list[ObjectResult] = []
    # The exact reverse of the apply order (sorted(reverse=True) would keep equal ranks in input order).
    ordered = sorted(prepared, key=lambda p: APPLY_RANK.get(p.kind, _UNKNOWN_RANK))[::-1]
    for item in ordered:
        if item.resource is None:  # the kind's CRD is not installed: nothing of it can exist
            done.append(item.result("absent"))
            continue
        done.append(item.result("deleted" if await _delete_one(client, item) else "absent"))
    return done


async def _delete_one(client: AsyncClient, item: _Prepared) -> bool:
    with api_errors(str(item.result("deleted")), not_found=False):
        try:
            # Background propagation: the garbage collector removes ReplicaSets, Pods... as kubectl does.
            await client.delete(item.resource, item.name, namespace=item.namespace, cascade=CascadeType.BACKGROUND)
        except ApiError as exc:
            if exc.status.code == 404:
                return False
            raise
    return True


def _resource_version(obj: Any) -> str | None:
    meta = getattr(obj, "metadata", None)
    return getattr(meta, "resourceVersion", None) if meta is not None else None


# ---------------------------------------------------------------------------------------------
# Preparation: validate the shape, find the resource, fix the namespace


async def _prepare_all(
    client: AsyncClient, objects: Iterable[Manifest], namespace: str | None, *, for_delete: bool
) -> list[_Prepared]:
    bodies = [_plain(obj, index) for index, obj in enumerate(objects, start=1)]
    resources = [_resource_for(b["apiVersion"], b["kind"]) for b in bodies]
    if any(r is None for r in resources):
        await _load_crds(client)
        resources = [r or _resource_for(b["apiVersion"], b["kind"]) for r, b in zip(resources, bodies, strict=True)]
    prepared = []
    for body, resource in zip(bodies, resources, strict=True):
        if resource is None and not for_delete:
            raise InvalidParameter("manifests", f"集群不认识 {body['apiVersion']} 的 {body['kind']} 类型")
        prepared.append(_with_namespace(body, resource, namespace or str(client.namespace)))
    return prepared


def _plain(obj: Manifest, index: int) -> dict[str, Any]:
    """A deep copy as a plain dict, checked for what any manifest needs, minus server-written fields."""
    body = copy.deepcopy(dict(obj)) if isinstance(obj, Mapping) else obj.to_dict()
    problem = _shape_problem(body)
    if problem:
        raise InvalidParameter("manifests", f"第 {index} 个对象: {problem}")
    meta = body["metadata"]
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    body.pop("status", None)
    return body


def _shape_problem(body: Mapping[str, Any]) -> str | None:
    """What keeps `body` from being a manifest at all, or None."""
    api_version, kind, meta = body.get("apiVersion"), body.get("kind"), body.get("metadata")
    if not isinstance(api_version, str) or not _API_VERSION.fullmatch(api_version):
        return f"apiVersion {api_version!r} 无效"
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        return f"kind {kind!r} 无效"
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        return f"{kind} 缺少 metadata.name"
    return None


def _resource_for(api_version: str, kind: str) -> Any:
    try:
        return resource_registry.load(api_version, kind)
    except (LoadResourceError, ImportError, ValueError):
        return None


async def _load_crds(client: AsyncClient) -> None:
    """Register the cluster's CRDs as generic resources; without permission to list them, kinds stay unknown."""
    try:
        with api_errors():
            await async_load_in_cluster_generic_resources(client)
    except KbossError as err:
        if getattr(err, "status_code", None) not in (401, 403, 404):
            raise


def _with_namespace(body: dict[str, Any], resource: Any, default_ns: str) -> _Prepared:
    meta = body["metadata"]
    if resource is None or not issubclass(resource, lk_resource.NamespacedResource):
        # Cluster-scoped (Namespace, Node, ClusterRole...): a namespace in the body is meaningless.
        meta.pop("namespace", None)
        return _Prepared(resource, body, None)
    meta["namespace"] = meta.get("namespace") or default_ns
    return _Prepared(resource, body, str(meta["namespace"]))


# ---------------------------------------------------------------------------------------------
# YAML


def parse_manifests(text: str, *, param: str = "yaml") -> list[dict[str, Any]]:
    """Multi-document YAML → plain dicts; empty documents are skipped and `*List` kinds flattened."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParameter(param, "YAML 内容为空")
    if len(text.encode()) > MAX_YAML_BYTES:
        raise InvalidParameter(param, f"YAML 超过 {MAX_YAML_BYTES // (1024 * 1024)} MiB")
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        # The position only: the parser's own words quote the text (`undefined alias '…'`), a Secret's data too.
        raise InvalidParameter(param, messages.yaml_problem(exc)) from None
    objects: list[dict[str, Any]] = []
    for index, doc in enumerate(documents, start=1):
        objects.extend(_document_objects(doc, index, param))
    if not objects:
        raise InvalidParameter(param, "YAML 中没有任何对象")
    return objects


def _document_objects(doc: Any, index: int, param: str) -> list[dict[str, Any]]:
    if doc is None:
        return []
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if isinstance(kind, str) and kind.endswith("List") and isinstance(doc.get("items"), list):
        where = [f"第 {index} 个文档的第 {n} 项" for n in range(1, len(doc["items"]) + 1)]
        return [_checked(item, at, param) for item, at in zip(doc["items"], where, strict=True)]
    return [_checked(doc, f"第 {index} 个文档", param)]


def _checked(doc: Any, where: str, param: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise InvalidParameter(param, f"{where}不是对象 (应为 YAML 映射)")
    problem = _shape_problem(doc)
    if problem:
        raise InvalidParameter(param, f"{where}: {problem}")
    return doc
