"""Running steps over SSH: output streamed line by line, secrets masked, status read from the last line.

    steps = plan_master(params)
    async with connect(target, known_hosts=store, options=options) as ssh:
        outcome = await run_plan(ssh, steps, params, on_event=print)
    outcome.secrets["join_command"], outcome.secrets["kubeconfig"]

Every line a script prints goes through the SSH adapter's redaction (account password, join token),
then through `mask_secrets` (bootstrap tokens, certificate keys and key data that kubeadm prints on
its own), before it reaches a callback, a StepResult or an error. `kboss-secret:` lines never do: they
are decoded into `StepResult.secrets`, which only the result fields of an answer carry.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from kboss.agent.provision.params import ProvisionParams
from kboss.agent.provision.steps import Step
from kboss.errors import KbossError
from kboss.redaction import JOIN_TOKEN, MASK, Redactor, redact_shapes
from kboss.ssh import SshClient

log = logging.getLogger("kboss.provision")

Status = Literal["changed", "unchanged", "skipped", "failed"]
OUTPUT_LIMIT = 64 * 1024  # characters of output kept per step (the tail); the stream saw all of it
ERROR_TAIL = 2000

_STATUSES: dict[str, Status] = {"changed": "changed", "unchanged": "unchanged", "skipped": "skipped"}
_STATUS_LINE = re.compile(r"kboss-step: (changed|unchanged|skipped)(?: (.*))?")
_SECRET_LINE = re.compile(r"kboss-secret: ([a-z_]+) ([A-Za-z0-9+/=]*)")
_SECRET_VALUE = re.compile(r"(kboss-secret: [a-z_]+ )\S+")


def mask_secrets(text: str) -> str:
    """Mask secrets recognisable by their shape, whoever printed them (`kboss.redaction.redact_shapes`), and the
    values our own scripts hand back on `kboss-secret:` lines."""
    return redact_shapes(_SECRET_VALUE.sub(r"\1" + MASK, text))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class StepResult:
    name: str
    status: Status
    output: str
    started: dt.datetime
    finished: dt.datetime
    error: str | None = None
    reason: str | None = None  # why a step was skipped
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def seconds(self) -> float:
        return round((self.finished - self.started).total_seconds(), 3)

    def summary(self) -> dict[str, Any]:
        """Everything but output and secrets: what progress events and failure answers carry."""
        return {
            "name": self.name,
            "status": self.status,
            "reason": self.reason,
            "error": self.error,
            "started": self.started.isoformat(),
            "finished": self.finished.isoformat(),
            "seconds": self.seconds,
        }

    def as_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        data = {**self.summary(), "output": self.output}
        if include_secrets and self.secrets:
            data["secrets"] = dict(self.secrets)
        return data


class _Capture:
    """Consumes a step's output lines: masks them, keeps the tail, finds status, error and secrets."""

    def __init__(self, redact: Redactor, on_line: Callable[[str], None] | None) -> None:
        self.redact = redact
        self._on_line = on_line
        self._lines: collections.deque[str] = collections.deque()
        self._size = 0
        self.status: tuple[Status, str | None] | None = None
        self.error_line: str | None = None
        self.secrets: dict[str, str] = {}

    def clean(self, text: str) -> str:
        return mask_secrets(self.redact(text))

    def feed(self, raw: str) -> None:
        secret = _SECRET_LINE.fullmatch(raw.strip())
        if secret:
            self._keep_secret(secret.group(1), secret.group(2))
            return
        line = self.clean(raw)
        status = _STATUS_LINE.fullmatch(line.strip())
        # Only the very last line counts: anything printed after a status line voids it.
        self.status = (_STATUSES[status.group(1)], status.group(2)) if status else None
        if line.startswith("kboss-error: "):
            self.error_line = line.removeprefix("kboss-error: ")
        self._remember(line)
        if self._on_line is not None:
            self._on_line(line)

    def _keep_secret(self, key: str, encoded: str) -> None:
        try:
            value = base64.b64decode(encoded, validate=True).decode().strip()
        except (binascii.Error, UnicodeDecodeError):
            value = ""
        self.secrets[key] = value
        # A token the machine made up is masked from now on like the known ones. Not the whole value:
        # the redactor would also mask each line of a kubeconfig, such as "apiVersion: v1", everywhere.
        self.redact = self.redact.with_secrets(_tokens_in(value))

    def _remember(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line) + 1
        while self._size > OUTPUT_LIMIT and len(self._lines) > 1:
            self._size -= len(self._lines.popleft()) + 1

    @property
    def output(self) -> str:
        return "\n".join(self._lines)

    def tail(self) -> str:
        return self.output[-ERROR_TAIL:]


def _tokens_in(text: str) -> list[str]:
    return JOIN_TOKEN.findall(text)


def _outcome(
    name: str, capture: _Capture, exit_status: int | None, failure: str | None
) -> tuple[Status, str | None, str | None]:
    """(status, skip reason, error) of a finished step."""
    tail = f"\n输出末尾:\n{capture.tail()}" if capture.output else ""
    if failure is not None:
        return "failed", None, f"步骤 {name} 失败: {failure}{tail}"
    if exit_status != 0:
        why = capture.error_line or "脚本以非零状态退出"
        return "failed", None, f"步骤 {name} 失败 (退出码 {exit_status}): {why}{tail}"
    if capture.status is None:
        return "failed", None, f"步骤 {name} 失败: 脚本未以 kboss-step 状态行结束 (no status line){tail}"
    return capture.status[0], capture.status[1], None


async def run_step(
    ssh: SshClient, step: Step, params: ProvisionParams, on_line: Callable[[str], None] | None = None
) -> StepResult:
    """Run one step on the machine; a failed step is a result with status "failed", not an exception."""
    started = _now()
    secrets = params.secrets()
    capture = _Capture(Redactor(secrets), on_line)
    exit_status: int | None = None
    failure: str | None = None
    try:
        exit_status = await _stream(ssh, step, params, capture, secrets)
    except KbossError as exc:  # connection lost, timeout: the step failed, the caller decides what next
        # A CommandTimeout appends the stream's own output tail; the error gets ours (same text) below.
        failure = capture.clean(exc.message.split("; 输出末尾: ", 1)[0])
    status, reason, error = _outcome(step.name, capture, exit_status, failure)
    result = StepResult(step.name, status, capture.output, started, _now(), error, reason, capture.secrets)
    log.info("step %s on %s: %s in %.1fs", step.name, ssh.target.host, status, result.seconds)
    return result


async def _stream(ssh: SshClient, step: Step, params: ProvisionParams, capture: _Capture, secrets: list[str]) -> int:
    stream = ssh.stream(
        step.command(params),
        input=step.stdin(params),
        sudo=True,
        timeout=step.timeout_for(params),
        secrets=secrets,
        # A fixed name: the command line carries the parameters, and names end up in logs and errors.
        name=f"provision step {step.name}",
    )
    async with stream as lines:
        async for line in lines:
            capture.feed(line)
    assert stream.result is not None
    return stream.result.exit_status


# What `run_plan` reports as it goes, in this order for each step: started, its output lines, finished.
@dataclass(frozen=True)
class StepStarted:
    """Step `index` (counted from 1) of the `total` planned is about to run."""

    step: str
    index: int
    total: int


@dataclass(frozen=True)
class OutputLine:
    """One line the running step printed, already redacted and masked (`mask_secrets`)."""

    step: str
    line: str


@dataclass(frozen=True)
class StepFinished:
    """The step ended; its result carries the status and any secrets it yielded."""

    result: StepResult


Event = StepStarted | OutputLine | StepFinished


@dataclass
class PlanResult:
    results: list[StepResult]
    planned: list[str]

    @property
    def ok(self) -> bool:
        return len(self.results) == len(self.planned) and all(r.ok for r in self.results)

    @property
    def failed(self) -> StepResult | None:
        return next((r for r in self.results if not r.ok), None)

    @property
    def secrets(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for result in self.results:
            merged.update(result.secrets)
        return merged

    @property
    def error(self) -> str | None:
        if self.failed is not None:
            return self.failed.error
        if not self.ok:
            return f"在步骤 {self.planned[len(self.results)]} 之前停止 (stopped: the caller went away)"
        return None

    def summary(self) -> list[dict[str, Any]]:
        return [r.summary() for r in self.results]


def _line_relay(emit: Callable[[Event], None], step: str) -> Callable[[str], None]:
    return lambda line: emit(OutputLine(step, line))


async def run_plan(
    ssh: SshClient,
    steps: Iterable[Step],
    params: ProvisionParams,
    on_event: Callable[[Event], None] | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> PlanResult:
    """Run the steps in order; stop at the first failure, or before the next step once `stop` is set."""
    planned = list(steps)
    outcome = PlanResult([], [step.name for step in planned])
    emit: Callable[[Event], None] = on_event or (lambda event: None)
    for index, step in enumerate(planned, 1):
        if stop is not None and stop.is_set():
            break
        emit(StepStarted(step.name, index, len(planned)))
        result = await run_step(ssh, step, params, _line_relay(emit, step.name))
        outcome.results.append(result)
        emit(StepFinished(result))
        if not result.ok:
            break
    return outcome
