"""The fake's storage: objects by (group, plural, namespace, name), one resourceVersion counter like etcd's
revision, field owners for server-side apply, garbage collection of dependents and of namespace contents.

Every public method takes the lock: HTTP requests (server thread) and seeding (test thread) interleave.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.kubefake import defaults, podsecurity, quota, ssa, validation
from tests.kubefake.errors import (
    ApiStatusError,
    already_exists,
    bad_request,
    conflict,
    namespace_not_found,
    not_found,
    status_body,
)
from tests.kubefake.resources import ResourceType, by_key, by_kind
from tests.kubefake.selectors import fields_match, labels_match, parse_field_selector
from tests.kubefake.watch import Change, Changes

Key = tuple[str, str, str, str]  # group, plural, namespace ("" if cluster-scoped), name


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self._objects: dict[Key, dict[str, Any]] = {}
            self._owners: dict[Key, ssa.Owners] = {}
            self._removals: dict[Key, float] = {}  # pods in graceful deletion → monotonic removal time
            self._rv = 1000
            self._ips = 0
            self.changes = Changes()  # what watches replay
            # Seconds a deleted pod stays (with deletionTimestamp) before it disappears; 0 = at once.
            self.pod_deletion_delay = 0.0

    # -- keys, stamps ------------------------------------------------------------------------------

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> Key:
        return (rt.group, rt.plural, (namespace or "") if rt.namespaced else "", name)

    def _bump(self) -> str:
        self._rv += 1
        return str(self._rv)

    @property
    def revision(self) -> int:
        """The newest resourceVersion (etcd's revision)."""
        return self._rv

    def _changed(self, rt: ResourceType, key: Key, kind: str, old: dict[str, Any] | None = None) -> None:
        """Record a change for watches, the object rendered as it is now."""
        obj = self._render(rt, key)
        self.changes.record(Change(self._rv, kind, key, obj, old))

    def _render(self, rt: ResourceType, key: Key) -> dict[str, Any]:
        obj = copy.deepcopy(self._objects[key])
        obj = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        owners = self._owners.get(key)
        if owners:
            obj["metadata"]["managedFields"] = ssa.managed_fields(owners, rt.api_version)
        return obj

    # -- direct access (seeding and inspection: no validation) -----------------------------------------

    def put(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object as given (status included), filling uid, timestamps and resourceVersion."""
        with self.lock:
            stored = copy.deepcopy(dict(obj))
            meta = stored.setdefault("metadata", {})
            if rt.namespaced:
                meta.setdefault("namespace", "default")
                self._ensure_namespace(meta["namespace"])
            else:
                meta.pop("namespace", None)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", rfc3339())
            meta["resourceVersion"] = self._bump()
            key = self.key(rt, meta.get("namespace"), meta["name"])
            old = self._render(rt, key) if key in self._objects else None
            self._objects[key] = {k: v for k, v in stored.items() if k not in ("apiVersion", "kind")}
            self._changed(rt, key, "ADDED" if old is None else "MODIFIED", old)
            return self._render(rt, key)

    def _ensure_namespace(self, namespace: str) -> None:
        ns_type = by_kind("Namespace")
        if self.key(ns_type, None, namespace) not in self._objects:
            self.put(ns_type, {"metadata": {"name": namespace}, "status": {"phase": "Active"}})

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        with self.lock:
            self._purge()
            key = self.key(rt, namespace, name)
            return self._render(rt, key) if key in self._objects else None

    def items(self, rt: ResourceType, namespace: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            self._purge()
            keys = sorted(k for k in self._objects if k[:2] == (rt.group, rt.plural))
            return [self._render(rt, k) for k in keys if namespace is None or k[2] == namespace]

    # -- reads -----------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        found = self.find(rt, namespace, name)
        if found is None:
            raise not_found(rt, name)
        return found

    def list(self, rt: ResourceType, namespace: str | None, params: Mapping[str, str]) -> dict[str, Any]:
        fields = parse_field_selector(rt, params.get("fieldSelector"))
        with self.lock:
            matching = [
                obj
                for obj in self.items(rt, namespace)
                if labels_match(params.get("labelSelector"), obj["metadata"].get("labels"))
                and fields_match(fields, obj)
            ]
            meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        start = int(params.get("continue") or 0)
        limit = int(params.get("limit") or 0) or len(matching)
        page = matching[start : start + limit]
        if start + limit < len(matching):  # opaque to clients; here simply the next offset
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(matching) - start - limit
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": page}

    # -- writes ----------------------------------------------------------------------------------------

    def create(self, rt: ResourceType, namespace: str | None, body: Any, manager: str) -> dict[str, Any]:
        obj = self._incoming(rt, namespace, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        with self.lock:
            self._purge()
            if rt.namespaced:
                self._require_namespace(meta["namespace"])
            key = self.key(rt, meta.get("namespace"), str(meta.get("name", "")))
            if key in self._objects:
                raise already_exists(rt, key[3])
            if rt.kind != "Node":  # status is written by controllers (the kubelet registers nodes with one)
                obj.pop("status", None)
            in_namespace = self._lookup(meta.get("namespace"))
            quota.limit_defaults(rt, obj, in_namespace)  # admission: mutating, then validating after validation
            defaults.on_create(rt, obj, self._node_ports(), self._next_ip())
            self._validate(rt, obj)
            podsecurity.admit(rt, obj, self.find(by_kind("Namespace"), None, meta.get("namespace") or ""))
            quota.admit(rt, obj, in_namespace)
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=rfc3339(), resourceVersion=self._bump())
            self._objects[key] = obj
            self._owners[key] = {}
            ssa.take(self._owners[key], manager, "Update", set(ssa.leaves(obj)), rfc3339())
            self._changed(rt, key, "ADDED")
            return self._render(rt, key)

    def replace(self, rt: ResourceType, namespace: str | None, name: str, body: Any, manager: str) -> dict[str, Any]:
        new = self._incoming(rt, namespace, body)
        if new["metadata"].get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        with self.lock:
            key, old = self._existing(rt, namespace, name)
            wanted_rv = new["metadata"].get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            return self._commit(rt, key, new, manager, "Update")

    def merge_patch(
        self, rt: ResourceType, namespace: str | None, name: str, patch: Any, manager: str
    ) -> dict[str, Any]:
        if not isinstance(patch, dict):
            raise bad_request("the patch is not a JSON object")
        with self.lock:
            key, old = self._existing(rt, namespace, name)
            wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise conflict(
                    rt,
                    name,
                    "the object has been modified; please apply your changes to the latest version and try again",
                )
            return self._commit(rt, key, ssa.merge_patch(old, patch), manager, "Update")

    def server_side_apply(
        self, rt: ResourceType, namespace: str | None, name: str, config: Any, manager: str, force: bool
    ) -> tuple[dict[str, Any], bool]:
        """Returns (object, created)."""
        config = self._incoming(rt, namespace, config, require_type=True)
        if config["metadata"].get("name") != name:
            raise bad_request("the name of the object does not match the name on the URL")
        with self.lock:
            self._purge()
            key = self.key(rt, namespace, name)
            if key not in self._objects:
                self.create(rt, namespace, config, manager)
                self._owners[key] = {}
                ssa.take(self._owners[key], manager, "Apply", set(ssa.leaves(config)), rfc3339())
                self._changed(rt, key, "ADDED")
                return self._render(rt, key), True
            owners = self._owners.setdefault(key, {})
            found = ssa.conflicts(owners, manager, self._objects[key], ssa.leaves(config))
            if found and not force:
                raise _apply_conflict(rt, name, found)
            # Ownership changes only if the update is accepted: work on a copy until _commit passes.
            trial = copy.deepcopy(owners)
            merged = ssa.apply(self._objects[key], config, trial, manager, rfc3339())
            self._commit(rt, key, merged, manager, None)
            self._owners[key] = trial
            return self._render(rt, key), False

    def _commit(
        self, rt: ResourceType, key: Key, new: dict[str, Any], manager: str, operation: str | None
    ) -> dict[str, Any]:
        """Validate and store an update; a no-op writes nothing (resourceVersion unchanged)."""
        old = self._objects[key]
        new = copy.deepcopy(new)
        for field in ssa.SERVER_META:
            if field in old["metadata"]:
                new["metadata"][field] = old["metadata"][field]
            elif field != "name":
                new["metadata"].pop(field, None)
        if rt.kind != "Node":  # status belongs to controllers: writes to the main resource ignore it
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]
        defaults.on_update(rt, old, new, self._node_ports(exclude=key))
        validation.check_update(rt, old, new)
        self._validate(rt, new, exclude=key)
        if new == old:
            return self._render(rt, key)
        if operation is not None:
            ssa.take(self._owners.setdefault(key, {}), manager, operation, ssa.changed_leaves(old, new), rfc3339())
        if "generation" in old["metadata"] and old.get("spec") != new.get("spec"):
            new["metadata"]["generation"] = old["metadata"]["generation"] + 1
        before = self._render(rt, key)
        new["metadata"]["resourceVersion"] = self._bump()
        self._objects[key] = new
        self._changed(rt, key, "MODIFIED", before)
        return self._render(rt, key)

    # -- deletes ---------------------------------------------------------------------------------------

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, grace: int | None = None, propagation: str = ""
    ) -> dict[str, Any]:
        with self.lock:
            key, old = self._existing(rt, namespace, name)
            if rt.kind == "Pod" and self._graceful(key, self._objects[key], grace):
                return self._render(rt, key)
            rendered = self._render(rt, key)
            self._remove(key, orphan=propagation == "Orphan")
            if rt.kind == "Namespace":
                for other in [k for k in self._objects if k[2] == name]:
                    self._remove(other, orphan=False)
            if rt.kind == "Pod":
                return rendered
            details = {"name": name, "kind": rt.plural, "uid": old["metadata"]["uid"]}
            return status_body(200, "", "", details | ({"group": rt.group} if rt.group else {}), success=True)

    def _graceful(self, key: Key, pod: dict[str, Any], grace: int | None) -> bool:
        """Graceful pod deletion: mark it (always, as the API server does, even with grace 0) and remove it
        later, as the kubelet would; False when it is to go at once."""
        first = "deletionTimestamp" not in pod["metadata"]
        if first:
            before = self._render(by_kind("Pod"), key)
            seconds = grace if grace is not None else (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            pod["metadata"]["deletionTimestamp"] = rfc3339(datetime.now(UTC) + timedelta(seconds=seconds))
            pod["metadata"]["deletionGracePeriodSeconds"] = seconds
            pod["metadata"]["resourceVersion"] = self._bump()
            self._changed(by_kind("Pod"), key, "MODIFIED", before)
        if grace == 0 or self.pod_deletion_delay <= 0:
            return False
        if first:
            self._removals[key] = time.monotonic() + self.pod_deletion_delay
        return True

    def _remove(self, key: Key, *, orphan: bool) -> None:
        rt = by_key(key)
        last = self._render(rt, key) if key in self._objects else None
        obj = self._objects.pop(key, None)
        self._owners.pop(key, None)
        self._removals.pop(key, None)
        self._bump()
        if last is not None:  # the DELETED event carries the deletion's resourceVersion
            last["metadata"]["resourceVersion"] = str(self._rv)
            self.changes.record(Change(self._rv, "DELETED", key, last, None))
        if obj is None or orphan:
            return
        uid = obj["metadata"]["uid"]
        # The garbage collector: dependents (ownerReferences → this uid) go too, transitively.
        for other, dependent in list(self._objects.items()):
            refs = dependent["metadata"].get("ownerReferences") or []
            if other in self._objects and any(r.get("uid") == uid for r in refs):
                self._remove(other, orphan=False)

    def _purge(self) -> None:
        now = time.monotonic()
        for key in [k for k, due in self._removals.items() if due <= now]:
            self._remove(key, orphan=False)

    # -- helpers ---------------------------------------------------------------------------------------

    def _existing(self, rt: ResourceType, namespace: str | None, name: str) -> tuple[Key, dict[str, Any]]:
        self._purge()
        key = self.key(rt, namespace, name)
        if key not in self._objects:
            raise not_found(rt, name)
        return key, copy.deepcopy(self._objects[key])

    def _lookup(self, namespace: str | None) -> quota.Lookup:
        return lambda kind: self.items(by_kind(kind), namespace)

    def _require_namespace(self, namespace: str) -> None:
        if self.key(by_kind("Namespace"), None, namespace) not in self._objects:
            raise namespace_not_found(namespace)

    def _incoming(
        self, rt: ResourceType, namespace: str | None, body: Any, *, require_type: bool = False
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise bad_request(f'{rt.kind} in version "{rt.version}" cannot be handled: not a JSON object')
        obj = copy.deepcopy(body)
        api_version, kind = obj.pop("apiVersion", None), obj.pop("kind", None)
        if (api_version or require_type) and api_version != rt.api_version:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API "
                f"version ({rt.api_version})"
            )
        if (kind or require_type) and kind != rt.kind:
            raise bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        meta.pop("managedFields", None)
        return obj

    def _validate(self, rt: ResourceType, obj: dict[str, Any], exclude: Key | None = None) -> None:
        validation.check_object(rt, {"apiVersion": rt.api_version, "kind": rt.kind, **obj})
        if rt.kind == "Service":
            validation.check_node_ports(rt, obj, self._port_holders(exclude))

    def _port_holders(self, exclude: Key | None = None) -> dict[int, str]:
        holders = {}
        for key, obj in self._objects.items():
            if key[:2] == ("", "services") and key != exclude:
                for port in (obj.get("spec") or {}).get("ports") or []:
                    if port.get("nodePort"):
                        holders[port["nodePort"]] = f"{key[2]}/{key[3]}"
        return holders

    def _node_ports(self, exclude: Key | None = None) -> set[int]:
        return set(self._port_holders(exclude))

    def _next_ip(self) -> str:
        self._ips += 1
        return f"10.96.{self._ips // 250}.{self._ips % 250 + 1}"


def _apply_conflict(rt: ResourceType, name: str, found: list[str]) -> ApiStatusError:
    count = f"{len(found)} conflict" + ("s" if len(found) > 1 else "")
    error = conflict(rt, name, "")
    error.message = f"Apply failed with {count}: " + "; ".join(found)
    error.details = (error.details or {}) | {
        "causes": [{"reason": "FieldManagerConflict", "message": c, "field": c.split(": ", 1)[1]} for c in found]
    }
    return error
