"""What kube-apiserver refuses: bad names and labels, schema violations, immutable fields, taken node ports.

Schema checks use `kubernetes_validate` (the published OpenAPI schemas, strict: unknown fields are errors).
The real server answers type errors and unknown fields with 400 before validation; the fake folds them
into its 422 `Invalid` answer, which is what a client has to handle either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import kubernetes_validate

from tests.kubefake import quota
from tests.kubefake.errors import ApiStatusError, invalid
from tests.kubefake.resources import ResourceType

SCHEMA_VERSION = "1.28"
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
_DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
_LABEL_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    f"'{_DNS_SUBDOMAIN}')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    f"'{_DNS_LABEL}')"
)
_DNS1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation "
    f"is '{_DNS1035}')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    f"validation is '({_LABEL_NAME})?')"
)
# Kinds whose names are DNS labels (DNS-1035 for Services); all others are subdomains.
_NAME_RULES = {"Namespace": (_DNS_LABEL, 63, _LABEL_MSG), "Service": (_DNS1035, 63, _DNS1035_MSG)}
NODE_PORT_RANGE = range(30000, 32768)


def check_object(rt: ResourceType, obj: Mapping[str, Any]) -> None:
    """Everything checkable on the object alone; raises the 422 `Invalid` the API would send."""
    name = str(obj.get("metadata", {}).get("name", ""))
    # Like the API server, every cause at once: the name, the labels and what the schema finds.
    causes = list(_name_causes(rt, name)) + list(_label_causes(obj.get("metadata", {}).get("labels") or {}))
    causes += _required_causes(rt, obj) or _schema_causes(obj) or quota.limit_causes(rt, obj)
    if causes:
        raise invalid(rt, name, causes)


def _name_causes(rt: ResourceType, name: str) -> Iterable[tuple[str, str]]:
    pattern, limit, message = _NAME_RULES.get(rt.kind, (_DNS_SUBDOMAIN, 253, _SUBDOMAIN_MSG))
    if not name:
        yield "metadata.name", "Required value: name or generateName is required"
    elif len(name) > limit:
        yield "metadata.name", f'Invalid value: "{name}": must be no more than {limit} characters'
    elif not re.fullmatch(pattern, name):
        yield "metadata.name", f'Invalid value: "{name}": {message}'


def _label_causes(labels: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    for key, value in labels.items():
        prefix, _, short = str(key).rpartition("/")
        bad_prefix = prefix and (len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix))
        if bad_prefix or len(short) > 63 or not re.fullmatch(_LABEL_NAME, short):
            yield "metadata.labels", f'Invalid value: "{key}": name part must consist of alphanumeric characters'
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(f"({_LABEL_NAME})?", value):
            yield "metadata.labels", f'Invalid value: "{value}": {_LABEL_VALUE_MSG}'


def _required_causes(rt: ResourceType, obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Rules the OpenAPI schema does not state (kubernetes-validate passes them): a pod has a container."""
    if rt.kind == "Pod" and not (obj.get("spec") or {}).get("containers"):
        return [("spec.containers", "Required value")]
    return []


def _schema_causes(obj: Mapping[str, Any]) -> list[tuple[str, str]]:
    try:
        kubernetes_validate.validate(dict(obj), SCHEMA_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        # The API writes field paths as spec.containers[0].image.
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path).lstrip(".")
        return [(field, f"Invalid value: {exc.message}")]
    except kubernetes_validate.SchemaNotFoundError as exc:
        return [("", exc.message)]
    return []


# ---------------------------------------------------------------------------------------------
# Updates

_WORKLOAD_SELECTOR = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# StatefulSet spec fields that may change (apps/validation: ValidateStatefulSetUpdate).
_STATEFULSET_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def check_update(rt: ResourceType, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """Immutable fields kboss is likely to trip over when re-applying an instance."""
    name = str(new.get("metadata", {}).get("name", ""))
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    causes = []
    if rt.kind in _WORKLOAD_SELECTOR and old_spec.get("selector") != new_spec.get("selector"):
        causes.append(("spec.selector", f"Invalid value: {new_spec.get('selector')}: field is immutable"))
    if rt.kind == "Job" and old_spec.get("template") != new_spec.get("template"):
        causes.append(("spec.template", "Invalid value: field is immutable"))
    fixed = _STATEFULSET_MUTABLE
    if rt.kind == "StatefulSet" and _without(old_spec, fixed) != _without(new_spec, fixed):
        causes.append(
            (
                "spec",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                "'minReadySeconds' are forbidden",
            )
        )
    if rt.kind == "PersistentVolumeClaim" and _without(old_spec, {"resources"}) != _without(new_spec, {"resources"}):
        causes.append(("spec", "Forbidden: spec is immutable after creation except resources.requests"))
    if rt.kind == "Pod" and _pod_fixed(old_spec) != _pod_fixed(new_spec):
        causes.append(("spec", "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"))
    if causes:
        raise invalid(rt, name, causes)


def _without(spec: Mapping[str, Any], keys: set[str]) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k not in keys}


def _pod_fixed(spec: Mapping[str, Any]) -> Any:
    containers = [{k: v for k, v in c.items() if k != "image"} for c in spec.get("containers") or []]
    return _without(spec, {"containers", "activeDeadlineSeconds", "tolerations"}) | {"containers": containers}


def check_node_ports(rt: ResourceType, svc: Mapping[str, Any], taken: Mapping[int, str]) -> None:
    """NodePorts must be in range and free; `taken` maps port → the Service (ns/name) holding it."""
    name = str(svc.get("metadata", {}).get("name", ""))
    me = f"{svc.get('metadata', {}).get('namespace')}/{name}"
    causes = []
    for index, port in enumerate((svc.get("spec") or {}).get("ports") or []):
        node_port = port.get("nodePort")
        if not node_port:
            continue
        where = f"spec.ports[{index}].nodePort"
        if node_port not in NODE_PORT_RANGE:
            causes.append(
                (
                    where,
                    f"Invalid value: {node_port}: provided port is not in the valid range. "
                    "The range of valid ports is 30000-32767",
                )
            )
        elif taken.get(node_port, me) != me:
            causes.append((where, f"Invalid value: {node_port}: provided port is already allocated"))
    if causes:
        raise invalid(rt, name, causes)


def require(condition: bool, error: ApiStatusError) -> None:
    if not condition:
        raise error
