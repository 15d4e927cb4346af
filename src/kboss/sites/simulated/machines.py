"""The machines of simulated centers: a provisioning step or a reset takes the time it takes on a real machine
(scaled), logs as it goes, can be told to fail or hang, and records what it did.

The simulated site (`kboss.sites.simulated.site`) runs the platform's real plan (`kboss.wire.plan`) on these
machines: the same step names, in the same order, called the same way as on a site agent. Like the agent's
scripts, a step looks first whether its effect is already there (the effect record is the machine's state) and
acts only if not, so a step re-run after a crash or a retry acts once. The record lives in memory, or in a
JSON-lines file that several processes share (a worker killed mid-step, then another one).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Protocol

from kboss.errors import UpstreamError

FaultMode = Literal["fail", "hang", "hang_after", "pause"]
OnLine = Callable[[str], None]

# How long each step takes on a healthy machine, in seconds (a build ≈ 4.5 min, a join ≈ 3 min); a step's
# timeout is the plan's, far longer. Node calls (a drain) take the time of their cluster work.
PLAYED_SECONDS: dict[str, float] = {
    "preflight": 5, "container_runtime": 40, "kubernetes_packages": 60, "images": 30, "gpu_runtime": 20,
    "kubeadm_init": 90, "network_plugin": 30, "gpu_device_plugin": 10, "wait_ready": 40, "fetch_credentials": 3,
    "kubeadm_join": 45, "reset": 20, "probe": 1, "cordon": 1, "drain": 20, "delete_node": 3,
}  # fmt: skip


class SimulatedFault(UpstreamError, code="simulated_fault", message="模拟故障"):
    """A failure a test or a demo asked the simulated machines for."""


@dataclass(frozen=True)
class Effect:
    target: str  # the cluster the step worked for
    step: str
    node: str  # the machine (device id), or the Kubernetes node of a node call
    operation_id: str = ""
    attempt: int = 0

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


class SimulatedMachines:
    """`scale` multiplies every duration (1.0 = realistic, 0.001 for tests); `ticks`: log lines per phase."""

    def __init__(self, scale: float = 1.0, effects: EffectStore | None = None, *, ticks: int = 3) -> None:
        self.scale, self.ticks = scale, ticks
        self.effects: EffectStore = effects or MemoryEffects()
        self.faults: list[Fault] = []
        self._paused: list[str] = []

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

    def paused(self, step: str) -> bool:
        """Whether a step is waiting at a `pause` now."""
        return step in self._paused

    def count(self, step: str, node: str | None = None, target: str | None = None) -> int:
        """How many times a step acted (on a node, for a target; None matches any)."""
        return sum(
            1 for e in self.effects.all() if e.step == step and node in (None, e.node) and target in (None, e.target)
        )

    async def play(self, effect: Effect, on_line: OnLine, *, once: bool = True, seconds: float | None = None) -> bool:
        """Play one step on a machine: True when it acted, False when it found its effect already there. A step
        that converges rather than being done once for good (a drain) passes `once=False` and acts every time.
        It takes `seconds` (scaled), by default the step's `PLAYED_SECONDS`."""
        played = PLAYED_SECONDS.get(effect.step, 1.0) if seconds is None else seconds
        step, where = effect.step, effect.node or "cluster"
        fault = await self._fault(effect, on_line)
        if once and any(e.key == effect.key for e in self.effects.all()):
            on_line(f"{step}: already done on {where}, verified")
            return False
        await self._work(effect, played, on_line, "acting")
        self.effects.record(effect)
        if fault == "hang_after":
            on_line(f"{step}: simulated hang after acting")
            await asyncio.Event().wait()
        await self._work(effect, played, on_line, "verifying")
        return True

    async def _fault(self, effect: Effect, on_line: OnLine) -> FaultMode | None:
        taken = self._take_fault(effect.step, effect.node)
        if taken is None:
            return None
        if taken.gate:
            on_line(f"{effect.step}: paused")
            self._paused.append(effect.step)
            try:
                await taken.gate.wait()
            finally:
                self._paused.remove(effect.step)
        if taken.mode == "fail":
            on_line(f"{effect.step}: simulated failure")
            raise SimulatedFault(f"模拟故障: {effect.step} 在 {effect.node or '集群'} 上失败")
        if taken.mode == "hang":
            on_line(f"{effect.step}: simulated hang")
            await asyncio.Event().wait()
        return taken.mode

    def _take_fault(self, step: str, node: str) -> Fault | None:
        for fault in self.faults:
            if fault.step == step and fault.node in (None, node) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    async def _work(self, effect: Effect, seconds: float, on_line: OnLine, what: str) -> None:
        pause = seconds * self.scale / 2 / self.ticks
        for tick in range(1, self.ticks + 1):
            on_line(f"{effect.step}: {what} {tick}/{self.ticks} on {effect.node or 'cluster'}")
            await asyncio.sleep(pause)


# The machines of every simulated center of this process, at real speed (`kboss serve --demo` sets the scale).
DEMO_MACHINES = SimulatedMachines()


def simulated_credentials(address: str) -> tuple[str, str]:
    """A join command and kubeconfig of the right shape for a simulated cluster (nothing answers there)."""
    token = f"{secrets.token_hex(3)}.{secrets.token_hex(8)}"
    join = f"kubeadm join {address}:6443 --token {token} --discovery-token-ca-cert-hash sha256:{secrets.token_hex(32)}"
    kubeconfig = (
        "# 模拟集群 (simulated): no API server answers at this address\napiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: simulated\n  cluster: {{server: 'https://{address}:6443'}}\n"
        "contexts:\n- name: simulated\n  context: {cluster: simulated, user: admin}\ncurrent-context: simulated\n"
        f"users:\n- name: admin\n  user: {{token: {secrets.token_hex(16)}}}\n"
    )
    return join, kubeconfig
