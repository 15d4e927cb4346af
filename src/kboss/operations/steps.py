"""What a step is and what it may use: StepDef, StepOutcome, StepContext, the registry of kinds.

A step observes the machine, acts only if needed, then verifies its end condition, so running it twice is
safe: after a crash the engine re-runs the step that was interrupted. Steps write no operation state; they
return a StepOutcome or raise (StepFailed for an expected failure with a clear message).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kboss.crypto import SecretBox
from kboss.db.models import Center, Cluster, Device
from kboss.db.models_ops import Operation, OperationStep
from kboss.errors import KbossError
from kboss.operations.logs import StepLog
from kboss.redaction import Redactor


class StepFailed(KbossError):
    """A step's expected failure; its message becomes the step's error and the operation's last error."""

    code = "step_failed"
    http_status = 502
    default_message = "步骤执行失败"


@dataclass(frozen=True)
class StepOutcome:
    """`result` is stored on the step row and readable by later steps: never put a secret in it."""

    result: dict[str, Any] = field(default_factory=dict)
    skipped: bool = False  # the end condition already held: nothing was done


@dataclass(frozen=True)
class OperationInfo:
    """A read-only snapshot of the operation a step works for."""

    id: str
    orgid: str
    kind: str
    backend: str
    cluster_id: str | None
    device_ids: tuple[str, ...]
    params: dict[str, Any]
    attempt: int
    requested_by: str

    @classmethod
    def of(cls, op: Operation) -> OperationInfo:
        return cls(
            op.id,
            op.orgid,
            op.kind,
            op.backend,
            op.cluster_id,
            tuple(op.device_ids),
            dict(op.params),
            op.attempt,
            op.requested_by,
        )


@dataclass(frozen=True)
class OpEnv:
    """What steps need besides the database. Subclass it (frozen) to add e.g. a site-agent client factory."""

    box: SecretBox


E = TypeVar("E", bound=OpEnv)
NodeSelector = Callable[[OperationInfo], Sequence[str]]


@dataclass(frozen=True)
class DeviceAccess:
    id: str
    name: str
    cpcid: str
    ip: str
    port: int
    user: str
    password: str
    ssh_key: str


@dataclass(frozen=True)
class CenterAccess:
    id: str
    pcapi_url: str
    api_user: str
    api_password: str
    simulated: bool


class StepContext:
    """Handed to a step: its operation, its node, the database, the environment, and its log."""

    def __init__(
        self,
        operation: OperationInfo,
        step: str,
        node: str | None,
        attempt: int,
        sessions: async_sessionmaker[AsyncSession],
        env: OpEnv,
        output: StepLog,
        mask: Redactor,
    ) -> None:
        self.operation, self.step, self.node, self.attempt = operation, step, node, attempt
        self.sessions, self.env = sessions, env
        self._output, self._mask = output, mask

    def log(self, line: str) -> None:
        """Append a line to the step's output (redacted, stored within a second, kept as a bounded tail)."""
        self._output.write(line)

    def redacted(self, text: str) -> str:
        """`text` with every secret registered for this step masked (for messages stored outside the output)."""
        return self._mask(text)

    def secret(self, value: str) -> str:
        """Register a value that must never appear in the output, and return it."""
        self._mask.add(value)
        return value

    def env_as(self, kind: type[E]) -> E:
        if not isinstance(self.env, kind):
            raise TypeError(f"step {self.step} needs a {kind.__name__}, the worker has a {type(self.env).__name__}")
        return self.env

    async def result_of(self, step: str, node: str = "") -> dict[str, Any] | None:
        """The stored result of an earlier step of this operation (None when it has not succeeded)."""
        async with self.sessions() as session:
            row = await session.scalar(
                select(OperationStep.result).where(
                    OperationStep.operation_id == self.operation.id,
                    OperationStep.name == step,
                    OperationStep.node == node,
                    OperationStep.state.in_(("succeeded", "skipped")),
                )
            )
        return dict(row) if row is not None else None

    async def device(self, device_id: str | None = None) -> DeviceAccess:
        """A device of the operation's org with its SSH secrets decrypted (and masked in the output)."""
        wanted = device_id or self.node
        async with self.sessions() as session:
            dev = await session.scalar(select(Device).where(Device.id == wanted, Device.orgid == self.operation.orgid))
        if dev is None:
            raise StepFailed(f"设备不存在: {wanted}")
        box = self.env.box
        password = self.secret(box.open(dev.adminpwd)) if dev.adminpwd else ""
        key = self.secret(box.open(dev.ssh_key)) if dev.ssh_key else ""
        return DeviceAccess(dev.id, dev.name, dev.cpcid, dev.ip, dev.sshport, dev.adminuser, password, key)

    async def center(self, center_id: str) -> CenterAccess:
        async with self.sessions() as session:
            row = await session.scalar(
                select(Center).where(Center.id == center_id, Center.orgid == self.operation.orgid)
            )
        if row is None:
            raise StepFailed(f"算力中心不存在: {center_id}")
        password = self.secret(self.env.box.open(row.api_pwd))
        return CenterAccess(row.id, row.pcapi_url, row.api_user, password, row.simulated)

    async def cluster(self) -> Cluster | None:
        if not self.operation.cluster_id:
            return None
        async with self.sessions() as session:
            return await session.scalar(
                select(Cluster).where(Cluster.id == self.operation.cluster_id, Cluster.orgid == self.operation.orgid)
            )


StepFn = Callable[[StepContext], Awaitable[StepOutcome]]


@dataclass(frozen=True)
class StepDef:
    """One named step. `per_node` runs it once per device of the operation (or per `nodes(op)`), in parallel."""

    name: str
    run: StepFn
    timeout_seconds: float
    per_node: bool = False
    nodes: NodeSelector | None = None
    retries: int = 0  # extra attempts within one run, for transient failures (a dropped connection)
    retry_delay: float = 1.0

    def targets(self, op: OperationInfo) -> list[str]:
        if not self.per_node:
            return [""]
        return list(self.nodes(op) if self.nodes else op.device_ids)


@dataclass(frozen=True)
class KindDef:
    kind: str
    steps: tuple[StepDef, ...]
    # False: an operation of this kind interrupted by a crash is failed (with a clear reason) instead of resumed.
    resume_after_crash: bool = True


class Registry:
    """(backend, kind) → ordered steps. A worker only claims operations its registry can run."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str], KindDef] = {}

    def register(
        self, kind: str, steps: Sequence[StepDef], *, backend: str = "agent", resume_after_crash: bool = True
    ) -> None:
        names = [s.name for s in steps]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate step names in {kind}: {names}")
        self._kinds[(backend, kind)] = KindDef(kind, tuple(steps), resume_after_crash)

    def get(self, backend: str, kind: str) -> KindDef | None:
        return self._kinds.get((backend, kind))

    def handled(self) -> list[tuple[str, str]]:
        return sorted(self._kinds)
