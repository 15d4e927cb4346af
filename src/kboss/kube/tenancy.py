"""One customer's share of a cluster: the namespace `<clusterid>-<orgid>` and what fences it in, built as data.

`tenant_objects` returns, in apply order, the Namespace, the ServiceAccount, the ResourceQuota `kboss-quota`, the
LimitRange `kboss-limits` and the NetworkPolicy `kboss-isolation`; `tenant_refs` what to delete; `pod_cidrs` the
pod networks the nodes report, which the NetworkPolicy needs. Apply them with `field_manager=FIELD_MANAGER`
(`kboss-tenancy`), not the instances' `kboss`: `kboss.kube.manifests` applies the same Namespace and
ServiceAccount with fewer fields, and server-side apply removes whatever a manager stops applying — under one
manager an instance's apply would strip the tenant label, Pod Security labels and `automountServiceAccountToken`.

- **Namespace.** Labelled `kboss.io/tenant: <orgid>` (what the NetworkPolicies of other tenants key on) and
  with Pod Security `baseline` enforced (no privileged pods, host namespaces, host paths or added capabilities),
  `restricted` only warned about (the images kboss runs, Ubuntu with sshd or MySQL, start as root).
- **ServiceAccount.** No RoleBinding names it and its token is not mounted: instances have no business with the
  cluster's API.
- **ResourceQuota.** Exactly what the customer holds: requests and limits of cpu and memory, PVC storage, GPU
  cards, pods and PVCs; zeros mean nothing may run. Re-applied on every order, renewal and deletion.
- **LimitRange.** A quota on cpu and memory makes the API server refuse any pod whose containers do not state
  them; the defaults (`DEFAULT_CPU_MILLICORES`, `DEFAULT_MEMORY_BYTES`, request = limit) let such a container
  in, small enough not to matter. kboss's own pods state their resources (request = limit), so the defaults
  never apply to them.
- **NetworkPolicy.** Ingress to every pod of the namespace is allowed from (1) pods of the same namespace, (2)
  pods of namespaces *without* the tenant label — the system's: DNS, ingress controllers, monitoring; tenants
  have no API rights to label one — and (3)
  `ipBlock 0.0.0.0/0` (and `::/0` when the cluster has IPv6 pod networks) *except the pod CIDRs*.

  Why (3) and why the except list: a NodePort connection from outside the cluster reaches the pod after
  kube-proxy has SNATed it (externalTrafficPolicy Cluster) to an address of the node, which no pod or
  namespace selector can match; only an ipBlock admits it. But ipBlock is meant for cluster-external
  addresses, and CNIs such as Calico match pod addresses against it too: `0.0.0.0/0` alone would admit every
  other tenant's pods. Excepting the pod CIDRs admits the world and the nodes while refusing other tenants'
  pod addresses (which, without a namespace selector matching them, nothing else admits).

  Limits of that reasoning, for whoever runs a cluster: the policy must be re-applied when a node with a new
  pod CIDR joins (until then pods on it are admitted from that CIDR); a CNI that SNATs forwarded NodePort
  traffic to an address *inside* the pod CIDRs (flannel's `flannel.1`/`cni0` addresses, Calico's tunnel
  address under IPIP/VXLAN) has that traffic refused unless the Service keeps the client address
  (externalTrafficPolicy Local); and a NetworkPolicy is only as good as the CNI enforcing it — flannel alone
  enforces none. Another tenant's pod can still reach a NodePort through a node address, as anyone outside
  can: a NodePort is public by design.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kboss.errors import InvalidParameter
from kboss.kube.capacity import GPU_RESOURCE
from kboss.kube.instance_spec import LABEL_MANAGED_BY, MANAGED_BY, Manifest
from kboss.kube.labels import is_dns1123_label, serviceaccount_name, validate_label_value
from kboss.kube.quantity import format_bytes, format_millicores

__all__ = [
    "DEFAULT_CPU_MILLICORES",
    "DEFAULT_MEMORY_BYTES",
    "FIELD_MANAGER",
    "LABEL_TENANT",
    "LIMITS_NAME",
    "POLICY_NAME",
    "QUOTA_NAME",
    "TenantQuota",
    "pod_cidrs",
    "tenant_objects",
    "tenant_refs",
]

FIELD_MANAGER = "kboss-tenancy"
LABEL_TENANT = "kboss.io/tenant"
ANNOTATION_TENANT = "kboss.io/tenant-id"  # the org id verbatim: a label value cannot start or end with - or _
QUOTA_NAME, LIMITS_NAME, POLICY_NAME = "kboss-quota", "kboss-limits", "kboss-isolation"
# A container that states no resources gets a tenth of a core and 128 MiB, request = limit: enough for a
# sidecar or a debugging shell, too little to matter against the quota, and Guaranteed like kboss's own pods.
DEFAULT_CPU_MILLICORES = 100
DEFAULT_MEMORY_BYTES = 128 * 2**20
POD_SECURITY = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/warn-version": "latest",
}
_EVERYWHERE = {4: ipaddress.ip_network("0.0.0.0/0"), 6: ipaddress.ip_network("::/0")}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TenantQuota:
    """What a customer holds in one cluster; every field ≥ 0, and all zeros means nothing may run."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    storage_bytes: int = 0  # PVC storage (`requests.storage`)
    gpus: int = 0  # `requests.nvidia.com/gpu`
    pods: int = 0
    pvcs: int = 0

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidParameter(name, f"应为非负整数,收到 {value!r}")

    def hard(self) -> dict[str, str]:
        """`spec.hard`, in the canonical forms the API server would write back (so re-applying is a no-op)."""
        cpu, memory = format_millicores(self.cpu_millicores), format_bytes(self.memory_bytes)
        return {
            "requests.cpu": cpu,
            "limits.cpu": cpu,
            "requests.memory": memory,
            "limits.memory": memory,
            "requests.storage": format_bytes(self.storage_bytes),
            f"requests.{GPU_RESOURCE}": str(self.gpus),
            "pods": str(self.pods),
            "persistentvolumeclaims": str(self.pvcs),
        }


def tenant_objects(namespace: str, orgid: str, quota: TenantQuota, pod_cidrs: Sequence[str]) -> list[Manifest]:
    """The tenant's Namespace, ServiceAccount, ResourceQuota, LimitRange and NetworkPolicy, in apply order.

    `pod_cidrs` are the cluster's pod networks (`pod_cidrs(nodes)`, or the CNI's pools); without any, the
    isolation policy cannot be written and InvalidParameter says so rather than admitting everyone.
    """
    if not is_dns1123_label(namespace):
        raise InvalidParameter("namespace", f"{namespace!r} 不是合法的 Kubernetes 命名空间名")
    return [
        _namespace(namespace, orgid),
        _object("v1", "ServiceAccount", _meta(serviceaccount_name(namespace), namespace))
        | {"automountServiceAccountToken": False},
        _object("v1", "ResourceQuota", _meta(QUOTA_NAME, namespace), {"hard": quota.hard()}),
        _object("v1", "LimitRange", _meta(LIMITS_NAME, namespace), _limits()),
        _object("networking.k8s.io/v1", "NetworkPolicy", _meta(POLICY_NAME, namespace), _isolation(pod_cidrs)),
    ]


def tenant_refs(namespace: str) -> list[Manifest]:
    """What `kboss.kube.apply.delete_objects` takes to remove the tenant, in delete order. Deleting the
    Namespace deletes everything in it — the customer's instances in that cluster included."""
    kinds = [
        ("networking.k8s.io/v1", "NetworkPolicy", POLICY_NAME),
        ("v1", "LimitRange", LIMITS_NAME),
        ("v1", "ResourceQuota", QUOTA_NAME),
        ("v1", "ServiceAccount", serviceaccount_name(namespace)),
    ]
    refs = [_object(api, kind, {"name": name, "namespace": namespace}) for api, kind, name in kinds]
    return [*refs, _object("v1", "Namespace", {"name": namespace})]


def pod_cidrs(nodes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct pod CIDRs of Node objects as the API returns them (`spec.podCIDRs`, or the older single
    `spec.podCIDR`), normalised, in the order first seen. Nodes without one (CNIs with their own IPAM, such as
    Calico's, may leave them unset) contribute nothing."""
    seen: dict[str, None] = {}
    for node in nodes:
        spec = node.get("spec") or {}
        for text in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            seen[str(_network(text, "spec.podCIDRs"))] = None
    return list(seen)


def _object(api_version: str, kind: str, metadata: Manifest, spec: Manifest | None = None) -> Manifest:
    obj: Manifest = {"apiVersion": api_version, "kind": kind, "metadata": metadata}
    return obj if spec is None else {**obj, "spec": spec}


def _meta(name: str, namespace: str) -> Manifest:
    return {"name": name, "namespace": namespace, "labels": {LABEL_MANAGED_BY: MANAGED_BY}}


def _namespace(namespace: str, orgid: str) -> Manifest:
    # Ids may start or end with - or _ (kboss.ids), which a label value may not: trimmed in the label, kept
    # whole in the annotation. The label's value is informative; isolation keys on the label's presence.
    value = orgid.strip("-_")
    if not value:
        raise InvalidParameter("orgid", "组织 id 不能为空")
    labels = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_TENANT: validate_label_value(value, "orgid"), **POD_SECURITY}
    return _object("v1", "Namespace", {"name": namespace, "labels": labels, "annotations": {ANNOTATION_TENANT: orgid}})


def _limits() -> Manifest:
    amounts = {"cpu": format_millicores(DEFAULT_CPU_MILLICORES), "memory": format_bytes(DEFAULT_MEMORY_BYTES)}
    return {"limits": [{"type": "Container", "default": amounts, "defaultRequest": dict(amounts)}]}


def _isolation(cidrs: Sequence[str]) -> Manifest:
    outside = {"matchExpressions": [{"key": LABEL_TENANT, "operator": "DoesNotExist"}]}
    peers: list[Manifest] = [{"podSelector": {}}, {"namespaceSelector": outside}]
    peers += [{"ipBlock": block} for block in _ip_blocks(cidrs)]
    return {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": peers}]}


def _ip_blocks(cidrs: Sequence[str]) -> list[Manifest]:
    """`0.0.0.0/0` except the IPv4 pod CIDRs, and `::/0` except the IPv6 ones when there are any; adjacent
    per-node ranges merged (a node's /24 each), which keeps the list short on big clusters."""
    if isinstance(cidrs, str) or not cidrs:
        raise InvalidParameter("pod_cidrs", "不知道集群的 Pod 网段,无法隔离租户")
    networks = [_network(text, "pod_cidrs") for text in cidrs]
    blocks: list[Manifest] = []
    for version, everything in _EVERYWHERE.items():
        mine: list[Any] = [n for n in networks if n.version == version]
        if mine:
            merged = [str(n) for n in ipaddress.collapse_addresses(mine)]
            blocks.append({"cidr": str(everything), "except": merged})
    return blocks


def _network(text: Any, param: str) -> Network:
    """A CIDR (host bits cleared); a whole address family is refused: it would except everything."""
    try:
        network = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        raise InvalidParameter(param, f"{str(text)[:60]!r} 不是合法的 CIDR") from None
    if network.prefixlen == 0:
        raise InvalidParameter(param, f"{network} 覆盖了整个地址空间,不可能是 Pod 网段")
    return network
