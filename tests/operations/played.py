"""A test registry for the generic operation engine: kinds of timed, logged steps played on simulated machines
(`kboss.sites.simulated.machines`: faults, effects, durations), with no catalog behind them.

The engine's tests (crash, resume, retries, leases, cancellation) need steps that take time, can fail or hang
and record what they did, not the cluster plan's database rows; the product's simulated centers run the real
plan (`kboss.clusters.plan`) on the same machines, which `tests/api` and `tests/clusters` cover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from kboss.operations.steps import OperationInfo, Registry, StepContext, StepDef, StepFailed, StepOutcome
from kboss.sites.simulated.machines import Effect, EffectStore, SimulatedFault, SimulatedMachines

BACKEND = "simulated"


@dataclass(frozen=True)
class PlayedStep:
    name: str
    seconds: float  # how long it takes on a real machine
    per_node: bool
    once: bool = True  # False: converges (acts every time), like a drain


KIND_STEPS: dict[str, tuple[PlayedStep, ...]] = {
    "create_cluster": (
        PlayedStep("preflight", 5, True), PlayedStep("container_runtime", 40, True),
        PlayedStep("kubernetes_packages", 60, True), PlayedStep("kubeadm_init", 90, False),
        PlayedStep("network_plugin", 30, False), PlayedStep("wait_ready", 40, False),
        PlayedStep("fetch_credentials", 3, False),
    ),
    "join_worker": (
        PlayedStep("preflight", 5, True), PlayedStep("container_runtime", 40, True),
        PlayedStep("kubernetes_packages", 60, True), PlayedStep("join_command", 3, False),
        PlayedStep("kubeadm_join", 45, True), PlayedStep("wait_node_ready", 30, True),
    ),
    "remove_worker": (
        PlayedStep("drain", 30, True, once=False), PlayedStep("delete_node", 3, True),
        PlayedStep("reset_machine", 20, True), PlayedStep("release_device", 1, True),
    ),
    "remove_cluster": (
        PlayedStep("remove_workers", 30, False), PlayedStep("reset_master", 20, False),
        PlayedStep("release_devices", 1, False), PlayedStep("delete_records", 1, False),
    ),
    "drain_node": (PlayedStep("cordon", 1, False, once=False), PlayedStep("evict", 20, False, once=False)),
}  # fmt: skip


def _masters(op: OperationInfo) -> Sequence[str]:
    return op.device_ids[:1]


class PlayedSite(SimulatedMachines):
    """`timeouts` by step name; other steps get `max(min_timeout, 20 × their scaled duration)`."""

    def __init__(
        self,
        scale: float = 1.0,
        effects: EffectStore | None = None,
        *,
        min_timeout: float = 5.0,
        timeouts: dict[str, float] | None = None,
    ) -> None:
        super().__init__(scale, effects)
        self.min_timeout, self.timeouts = min_timeout, dict(timeouts or {})

    def registry(self, registry: Registry | None = None, no_resume: frozenset[str] = frozenset()) -> Registry:
        registry = registry or Registry()
        for kind, steps in KIND_STEPS.items():
            defs = [self._step_def(kind, s) for s in steps]
            registry.register(kind, defs, backend=BACKEND, resume_after_crash=kind not in no_resume)
        return registry

    def _step_def(self, kind: str, step: PlayedStep) -> StepDef:
        timeout = self.timeouts.get(step.name, max(self.min_timeout, step.seconds * self.scale * 20))
        nodes = _masters if kind == "create_cluster" and step.per_node else None

        async def run(ctx: StepContext) -> StepOutcome:
            target = ctx.operation.cluster_id or ctx.operation.id
            effect = Effect(target, step.name, ctx.node or "", ctx.operation.id, ctx.attempt)
            try:
                acted = await self.play(effect, ctx.log, once=step.once, seconds=step.seconds)
            except SimulatedFault as fault:
                raise StepFailed(fault.message) from None
            return StepOutcome(result={"simulated": True, "changed": acted}, skipped=not acted)

        return StepDef(step.name, run, timeout, per_node=step.per_node, nodes=nodes)
