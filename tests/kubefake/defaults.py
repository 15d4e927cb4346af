"""What the API server fills in on create/update for the kinds kboss writes (a small subset of defaulting)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.kubefake.resources import ResourceType

NODE_PORT_FIRST = 30000
NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def on_create(rt: ResourceType, obj: dict[str, Any], ports_taken: set[int], cluster_ip: str) -> None:
    meta = obj["metadata"]
    if rt.kind == "Namespace":
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif rt.kind == "Pod":
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
    elif rt.kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        if spec["type"] != "ExternalName":
            spec.setdefault("clusterIP", cluster_ip)
            spec.setdefault("clusterIPs", [spec["clusterIP"]])
        _default_ports(spec, {}, ports_taken)
    elif rt.kind == "PersistentVolumeClaim":
        obj["status"] = {"phase": "Pending"}
    elif rt.kind == "Node":
        # The TaintNodesByCondition admission plugin: a node is not ready until its kubelet reports so.
        taints = obj.setdefault("spec", {}).setdefault("taints", [])
        if not any(t.get("key") == NOT_READY_TAINT["key"] and t.get("effect") == "NoSchedule" for t in taints):
            taints.append(dict(NOT_READY_TAINT))
    if rt.group:  # workloads and other controller-driven kinds track spec changes
        meta["generation"] = 1


def on_update(rt: ResourceType, old: Mapping[str, Any], new: dict[str, Any], ports_taken: set[int]) -> None:
    """Keep what the server allocated when an update does not mention it (clusterIP, node ports)."""
    if rt.kind != "Service":
        return
    old_spec, spec = old.get("spec") or {}, new.setdefault("spec", {})
    spec.setdefault("type", old_spec.get("type", "ClusterIP"))
    for key in ("clusterIP", "clusterIPs"):
        if key in old_spec:
            spec.setdefault(key, old_spec[key])
    previous = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort") for p in old_spec.get("ports") or []}
    _default_ports(spec, previous, ports_taken)


def _default_ports(spec: dict[str, Any], previous: Mapping[Any, Any], ports_taken: set[int]) -> None:
    wants_node_port = spec.get("type") in ("NodePort", "LoadBalancer")
    free = _free_ports(ports_taken)
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
        if wants_node_port and not port.get("nodePort"):
            port["nodePort"] = previous.get((port.get("port"), port["protocol"])) or next(free)


def _free_ports(taken: set[int]) -> Iterator[int]:
    port = NODE_PORT_FIRST
    while True:
        if port not in taken:
            taken.add(port)
            yield port
        port += 1


def _qos_class(pod: Mapping[str, Any]) -> str:
    containers = (pod.get("spec") or {}).get("containers") or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(
        r.get("limits") and all(r.get("requests", r["limits"]).get(k) == v for k, v in r["limits"].items())
        for r in resources
    )
    return "Guaranteed" if guaranteed else "Burstable"
