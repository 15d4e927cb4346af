"""A simulated site backend for the operation engine: steps that take realistic time, log, can be told to
fail or hang, and record every side effect they have.

It is selected explicitly (operations with backend "simulated"); nothing falls back to it. Its steps are
idempotent the way real ones must be: a step first looks whether its effect is already there (the
"machine" state is the effect record) and only acts if not, so a step re-run after a crash acts once.
The effect record lives in memory, or in a JSON-lines file so that several processes share it.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from kboss.operations.steps import OperationInfo, Registry, StepContext, StepDef, StepFailed, StepOutcome

BACKEND = "simulated"
FaultMode = Literal["fail", "hang", "hang_after", "pause"]


@dataclass(frozen=True)
class SimStep:
    name: str
    seconds: float  # how long it takes on a real machine
    per_node: bool
    # An effect done once for good (a package installed) is skipped when recorded; a converging one (a drain:
    # pods may have come back, or a blocker gone) acts every time, and its domain step decides what is left.
    once: bool = True


def _masters(op: OperationInfo) -> Sequence[str]:
    return op.device_ids[:1]


# Durations are what a kubeadm build over SSH takes on a healthy site (create ≈ 4.5 min, join ≈ 3 min).
KIND_STEPS: dict[str, tuple[SimStep, ...]] = {
    "create_cluster": (
        SimStep("preflight", 5, True),
        SimStep("container_runtime", 40, True),
        SimStep("kubernetes_packages", 60, True),
        SimStep("kubeadm_init", 90, False),
        SimStep("network_plugin", 30, False),
        SimStep("wait_ready", 40, False),
        SimStep("fetch_credentials", 3, False),
    ),
    "join_worker": (
        SimStep("preflight", 5, True),
        SimStep("container_runtime", 40, True),
        SimStep("kubernetes_packages", 60, True),
        SimStep("join_command", 3, False),
        SimStep("kubeadm_join", 45, True),
        SimStep("wait_node_ready", 30, True),
    ),
    "remove_worker": (
        SimStep("drain", 30, True, once=False),
        SimStep("delete_node", 3, True),
        SimStep("reset_machine", 20, True),
        SimStep("release_device", 1, True),
    ),
    "remove_cluster": (
        SimStep("remove_workers", 30, False),
        SimStep("reset_master", 20, False),
        SimStep("release_devices", 1, False),
        SimStep("delete_records", 1, False),
    ),
    "drain_node": (
        SimStep("cordon", 1, False, once=False),
        SimStep("evict", 20, False, once=False),
    ),
}


@dataclass(frozen=True)
class Effect:
    target: str  # the cluster (or, before there is one, the operation)
    step: str
    node: str
    operation_id: str
    attempt: int

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.target, self.step, self.node)


class EffectStore(Protocol):
    def all(self) -> list[Effect]: ...
    def record(self, effect: Effect) -> None: ...


class MemoryEffects:
    def __init__(self) -> None:
        self._effects: list[Effect] = []

    def all(self) -> list[Effect]:
        return list(self._effects)

    def record(self, effect: Effect) -> None:
        self._effects.append(effect)


class FileEffects:
    """One JSON line per effect; a single O_APPEND write per line, so processes may share the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def all(self) -> list[Effect]:
        if not self.path.exists():
            return []
        return [Effect(**json.loads(line)) for line in self.path.read_text().splitlines() if line.strip()]

    def record(self, effect: Effect) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(asdict(effect)) + "\n").encode())
        finally:
            os.close(fd)


@dataclass
class Fault:
    step: str
    node: str | None
    mode: FaultMode
    times: int
    gate: asyncio.Event | None = None


class SimulatedSite:
    """`scale` multiplies every duration (1.0 = realistic, 0.001 for tests); `min_timeout` floors step timeouts."""

    def __init__(
        self,
        scale: float = 1.0,
        effects: EffectStore | None = None,
        *,
        min_timeout: float = 5.0,
        timeouts: dict[str, float] | None = None,
        ticks: int = 3,
    ) -> None:
        self.scale, self.min_timeout, self.ticks = scale, min_timeout, ticks
        self.effects: EffectStore = effects or MemoryEffects()
        self.timeouts = dict(timeouts or {})
        self.faults: list[Fault] = []

    def fail(self, step: str, node: str | None = None, times: int = 1) -> None:
        self.faults.append(Fault(step, node, "fail", times))

    def hang(self, step: str, node: str | None = None, times: int = 1) -> None:
        """Hang before acting (a stuck command)."""
        self.faults.append(Fault(step, node, "hang", times))

    def hang_after(self, step: str, node: str | None = None, times: int = 1) -> None:
        """Hang after acting, before verifying: the worst moment for a crash."""
        self.faults.append(Fault(step, node, "hang_after", times))

    def pause(self, step: str, node: str | None = None) -> asyncio.Event:
        """The step waits, before acting, until the returned event is set (to look at a run midway)."""
        gate = asyncio.Event()
        self.faults.append(Fault(step, node, "pause", 1, gate))
        return gate

    def count(self, step: str, node: str | None = None, target: str | None = None) -> int:
        """How many times a step acted (on a node, for a target; None matches any)."""
        return sum(
            1 for e in self.effects.all() if e.step == step and node in (None, e.node) and target in (None, e.target)
        )

    def registry(self, registry: Registry | None = None, no_resume: frozenset[str] = frozenset()) -> Registry:
        """Every kind on the "simulated" backend; kinds in `no_resume` are failed, not resumed, after a crash."""
        registry = registry or Registry()
        for kind, steps in KIND_STEPS.items():
            defs = [self._step_def(kind, s) for s in steps]
            registry.register(kind, defs, backend=BACKEND, resume_after_crash=kind not in no_resume)
        return registry

    def _step_def(self, kind: str, step: SimStep) -> StepDef:
        timeout = self.timeouts.get(step.name, max(self.min_timeout, step.seconds * self.scale * 20))
        nodes = _masters if kind == "create_cluster" and step.per_node else None

        async def run(ctx: StepContext) -> StepOutcome:
            return await self._play(step, ctx)

        return StepDef(step.name, run, timeout, per_node=step.per_node, nodes=nodes)

    def _take_fault(self, step: str, node: str) -> Fault | None:
        for fault in self.faults:
            if fault.step == step and fault.node in (None, node) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    async def _play(self, step: SimStep, ctx: StepContext) -> StepOutcome:
        node = ctx.node or ""
        target = ctx.operation.cluster_id or ctx.operation.id
        taken = self._take_fault(step.name, node)
        fault = taken.mode if taken else None
        if taken and taken.gate:
            ctx.log(f"{step.name}: paused")
            await taken.gate.wait()
        if fault == "fail":
            ctx.log(f"{step.name}: simulated failure")
            raise StepFailed(f"模拟故障: {step.name} 在 {node or '集群'} 上失败")
        if fault == "hang":
            ctx.log(f"{step.name}: simulated hang")
            await asyncio.Event().wait()
        if step.once and any(e.key == (target, step.name, node) for e in self.effects.all()):
            ctx.log(f"{step.name}: already done on {node or 'cluster'}, verified")
            return StepOutcome(result={"simulated": True, "changed": False}, skipped=True)
        await self._work(step, ctx, "acting")
        self.effects.record(Effect(target, step.name, node, ctx.operation.id, ctx.attempt))
        if fault == "hang_after":
            ctx.log(f"{step.name}: simulated hang after acting")
            await asyncio.Event().wait()
        await self._work(step, ctx, "verifying")
        return StepOutcome(result={"simulated": True, "changed": True})

    async def _work(self, step: SimStep, ctx: StepContext, what: str) -> None:
        pause = step.seconds * self.scale / 2 / self.ticks
        for tick in range(1, self.ticks + 1):
            ctx.log(f"{step.name}: {what} {tick}/{self.ticks} on {ctx.node or 'cluster'}")
            await asyncio.sleep(pause)
