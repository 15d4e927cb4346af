"""Draining and rescheduling on a simulated cluster, by the rules of `kubectl drain` and the scheduler.

Used by the simulated site client (the node board) and, through it, by the simulated backend's `drain_node`
and `remove_worker` operations, so that a drain started from the console really moves the simulated pods.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import replace
from typing import Any

from kboss.kube.nodes import UNMANAGED_POD
from kboss.sites.simulated.state import SimCluster, SimNode, SimPod, first_fit, pod_ip


def drain(state: SimCluster, node: str, found: list[SimNode], force: bool = False) -> dict[str, Any]:
    """`kubectl drain` on the simulated cluster, reported as the agent reports it: the node is cordoned; DaemonSet
    pods are skipped; a pod no controller owns is not evicted (nothing would recreate it) unless `force`, which
    deletes it; the others are evicted, and their controller starts a replacement on a schedulable node with room
    (Pending when none has). Draining an empty node again reports nothing: it is idempotent."""
    state.cordoned.add(node)
    found = [replace(n, cordoned=True) if n.name == node else n for n in found]
    report: dict[str, Any] = {"node": node, "evicted": [], "deleted": [], "skipped": [], "failed": []}
    for key, pod in sorted(state.pods.items()):
        kind, _, controller = pod.owner
        if pod.node != node:
            continue
        if kind == "DaemonSet":
            report["skipped"].append({"pod": pod.ref, "reason": f"由 DaemonSet {controller} 管理"})
        elif kind == "Pod" and not force:
            report["failed"].append({"pod": pod.ref, "reason": UNMANAGED_POD})
        elif kind == "Pod":
            report["deleted"].append(pod.ref)
            del state.pods[key]
        else:
            report["evicted"].append(pod.ref)
            del state.pods[key]
            _replace(state, found, pod)
    report["ok"] = not report["failed"]
    return report


def _replace(state: SimCluster, found: list[SimNode], gone: SimPod) -> None:
    # A StatefulSet keeps the pod's name; other controllers name the new pod after the same template.
    name = gone.name if gone.owner[0] == "StatefulSet" else f"{gone.name.rsplit('-', 1)[0]}-{secrets.token_hex(3)[:5]}"
    node = first_fit(state, found, gone.product)
    now = dt.datetime.now(dt.UTC)
    state.pods[(gone.namespace, name)] = SimPod(
        gone.namespace, name, gone.owner, node, gone.requests, pod_ip(), now, gone.product
    )


def schedule_pending(state: SimCluster, found: list[SimNode]) -> None:
    """As the scheduler retries pods left Pending."""
    for pod in state.pods.values():
        if not pod.node:
            pod.node = first_fit(state, found, pod.product)
