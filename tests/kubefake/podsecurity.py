"""The PodSecurity admission plugin, `enforce` only and for the `baseline` checks a pod is most likely to trip:
host namespaces, privileged containers, added capabilities, hostPath volumes and host ports (`restricted` is
treated as baseline; warnings and audit annotations are not produced). Wording as kube-apiserver 1.24:

    pods "p" is forbidden: violates PodSecurity "baseline:latest": host namespaces (hostNetwork=true),
    privileged (container "c" must not set securityContext.privileged=true)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.kubefake.errors import ApiStatusError
from tests.kubefake.resources import ResourceType

ENFORCE = "pod-security.kubernetes.io/enforce"
# What baseline lets a container add (the container runtime's default set).
_ALLOWED_CAPABILITIES = {
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
}


def admit(rt: ResourceType, pod: Mapping[str, Any], namespace: Mapping[str, Any] | None) -> None:
    """Refuse a new pod that breaks its namespace's enforced level (403 Forbidden)."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE)
    if rt.kind != "Pod" or level not in ("baseline", "restricted"):
        return
    problems = list(_baseline(pod.get("spec") or {}))
    if problems:
        version = labels.get(f"{ENFORCE}-version", "latest")
        name = str(pod["metadata"].get("name", ""))
        message = f'pods "{name}" is forbidden: violates PodSecurity "{level}:{version}": {", ".join(problems)}'
        raise ApiStatusError(403, "Forbidden", message, {"name": name, "kind": "pods"})


def _baseline(spec: Mapping[str, Any]) -> Iterator[str]:
    hosts = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    if hosts:
        yield f"host namespaces ({', '.join(hosts)})"
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    privileged = [c["name"] for c in containers if ((c.get("securityContext") or {}).get("privileged"))]
    if privileged:
        yield f"privileged ({_containers(privileged)} must not set securityContext.privileged=true)"
    added = {
        cap
        for c in containers
        for cap in ((c.get("securityContext") or {}).get("capabilities") or {}).get("add") or []
        if cap not in _ALLOWED_CAPABILITIES
    }
    if added:
        yield f"non-default capabilities (capabilities {', '.join(sorted(added))} must not be added)"
    paths = [v["name"] for v in spec.get("volumes") or [] if "hostPath" in v]
    if paths:
        yield f"hostPath volumes ({'volume' if len(paths) == 1 else 'volumes'} {', '.join(map(_quoted, paths))})"
    ports = sorted({p["hostPort"] for c in containers for p in c.get("ports") or [] if p.get("hostPort")})
    if ports:
        yield f"hostPort ({'port' if len(ports) == 1 else 'ports'} {', '.join(map(str, ports))} must not be set)"


def _containers(names: list[str]) -> str:
    return f"container {_quoted(names[0])}" if len(names) == 1 else f"containers {', '.join(map(_quoted, names))}"


def _quoted(text: str) -> str:
    return f'"{text}"'
