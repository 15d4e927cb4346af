"""The steps of each cluster operation, declared once with their timeouts, and registered for both backends.

A center served by a site agent and a simulated center run the same steps, in the same order, with the same
timeouts: only the site object differs (`kboss.clusters.site_access.open_site`). Provisioning steps take the
plan's own time (`kboss.wire.plan`, which the agent serves) plus `MARGIN` for HTTP, SSH and queueing.

Tests that make a step hang pass `Timeouts` with overrides, so as not to wait for a real deadline; the policy
applies alike to both backends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from kboss.clusters import build, nodes, ops, records
from kboss.clusters import drain as drains
from kboss.operations.steps import OperationInfo, Registry, StepDef, StepFn
from kboss.wire.plan import BY_NAME, MASTER, RESET, WORKER, PlannedStep

MARGIN = 120.0  # on top of a site's own timeout for a call: HTTP, SSH connection, queueing
CALL_SECONDS = 60.0  # a short call to the site (the plan), or a catalog step
BACKENDS = (ops.AGENT, ops.SIMULATED)


@dataclass(frozen=True)
class Timeouts:
    """The timeout of a step: the declared one, or a test's override of it (by step name)."""

    overrides: Mapping[str, float] = field(default_factory=dict)

    def apply(self, step: StepDef) -> StepDef:
        seconds = self.overrides.get(step.name)
        return replace(step, timeout_seconds=seconds) if seconds is not None else step


def _first(op: OperationInfo) -> Sequence[str]:
    return op.device_ids[:1]


def _master(op: OperationInfo) -> Sequence[str]:
    master = str(op.params.get("master") or "")
    return [master] if master else []


def _workers(op: OperationInfo) -> Sequence[str]:
    return [d for d in op.device_ids if d not in _master(op)]


def _provisioning(planned: PlannedStep, run: StepFn | None = None, extra: float = 0.0) -> StepDef:
    seconds = planned.longest + MARGIN + extra
    return StepDef(planned.name, run or build.provision_step(planned.name), seconds, per_node=True, nodes=_first)


def _build(steps: Sequence[PlannedStep], last: PlannedStep, run_last: StepFn, extra: float) -> list[StepDef]:
    """The plan step, the plan's steps, and the last one that makes the device a member."""
    plan = StepDef("plan", build.plan_step, CALL_SECONDS + MARGIN, per_node=True, nodes=_first)
    body = [_provisioning(step) for step in steps if step is not last]
    return [plan, *body, _provisioning(last, run_last, extra)]


def cluster_kinds() -> dict[str, list[StepDef]]:
    """Every kind's steps with their declared timeouts."""
    fetch = BY_NAME["fetch_credentials"]
    reset = RESET.seconds + MARGIN
    # Joining first fetches a fresh join command from the master: that step's time, and its margin, come on top.
    join = _build(WORKER, BY_NAME["kubeadm_join"], build.kubeadm_join, fetch.seconds + MARGIN)
    return {
        ops.CREATE: [ops.reserving(s, "master") for s in _build(MASTER, fetch, build.fetch_credentials, 0.0)],
        ops.JOIN: [ops.reserving(s, "worker") for s in join],
        # The evict step's timeout is the longest drain one may ask for; the wait asked for bounds a run.
        ops.DRAIN: [
            StepDef("cordon", nodes.cordon_step, CALL_SECONDS + MARGIN),
            StepDef("evict", nodes.evict_step, drains.MAX_DRAIN_SECONDS + MARGIN),
        ],
        ops.REMOVE_WORKER: [
            StepDef("find_node", nodes.find_node, 120 + MARGIN, per_node=True),
            StepDef("drain", nodes.drain, drains.DRAIN_SECONDS + MARGIN, per_node=True),
            StepDef("delete_node", nodes.delete_node, drains.DRAIN_SECONDS + MARGIN, per_node=True),
            StepDef("reset_machine", nodes.reset_machine, reset, per_node=True),
            StepDef("release_device", nodes.release_step, CALL_SECONDS, per_node=True),
        ],
        ops.REMOVE_CLUSTER: [
            StepDef("check_instances", records.check_instances, CALL_SECONDS),
            StepDef("reset_workers", nodes.reset_machine, reset, per_node=True, nodes=_workers),
            StepDef("reset_master", nodes.reset_machine, reset, per_node=True, nodes=_master),
            StepDef("release_devices", nodes.release_step, CALL_SECONDS),
            StepDef("delete_records", records.delete_cluster_records, CALL_SECONDS),
        ],
    }


def register_cluster_kinds(
    registry: Registry, timeouts: Timeouts | None = None, no_resume: frozenset[str] = frozenset()
) -> Registry:
    """Every kind on both backends; kinds in `no_resume` are failed, not resumed, after a crash."""
    policy = timeouts or Timeouts()
    for kind, steps in cluster_kinds().items():
        for backend in BACKENDS:
            resume = kind not in no_resume
            registry.register(kind, [policy.apply(s) for s in steps], backend=backend, resume_after_crash=resume)
    return registry
